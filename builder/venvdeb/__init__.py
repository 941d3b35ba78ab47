"""venvdeb: OpenStack services as virtualenvs inside Debian packages.

The import name is ``venvdeb``; its source root in the checkout is ``builder/``.
Sub-packages, bottom up (import-linter keeps the order; see pyproject.toml):
``core`` (config, errors, runner, workdir, ledgers, versions, render), ``python``
(lock, index, wheelhouse, sdists, closures, upstream), then ``debian``, ``qa`` and
``archive`` side by side, ``stages`` (one module per command, peers), and on top
``pipeline``, ``buildbot`` and ``cli``.
"""
from __future__ import annotations

import hashlib
import sys
from functools import cache
from pathlib import Path

__version__ = "0.2.0"
__all__ = ["__version__", "code_digest"]

_HERE = Path(__file__).resolve().parent
# The venvdeb Debian package brings pip-tools, pip, build, click and packaging
# at the versions the checkout's .venv pins (Debian lacks or predates them):
# they come first for the tool and for the ``python3 -m venvdeb.python.*``
# helpers it runs. A checkout has no such directory.
_VENDOR = _HERE / "_vendor"
if _VENDOR.is_dir() and str(_VENDOR) not in sys.path:
    sys.path.insert(0, str(_VENDOR))

from venvdeb.core.layout import data_root  # noqa: E402  (after the vendored path)


@cache
def code_digest() -> str:
    """A digest of venvdeb's own code and the templates it renders packages from (every
    .py of this package, vendored tools excluded; every file of debian-templates/, in
    the checkout or in /usr/share/venvdeb): a buildbot master and its workers must
    have the same one, or they would make different packages from the same inputs."""
    h = hashlib.sha256()
    for path in sorted(_HERE.rglob("*.py")):
        rel = path.relative_to(_HERE)
        if rel.parts[0] == "_vendor" or "__pycache__" in rel.parts:
            continue
        h.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    templates = data_root() / "debian-templates"
    for path in sorted(p for p in templates.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(templates)
        h.update(b"debian-templates/" + rel.as_posix().encode() + b"\0" + path.read_bytes()
                 + b"\0")
    return h.hexdigest()[:12]
