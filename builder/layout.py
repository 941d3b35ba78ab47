"""Where venvdeb's own data lives: its source tree, or /usr/share/venvdeb.

From a checkout (``.venv/bin/venvdeb``) the templates, the requirement files,
the bundled config and the buildbot master sit beside ``builder/``. The
``venvdeb`` Debian package (builder.tooldeb) installs them under
``/usr/share/venvdeb`` instead.
"""
from __future__ import annotations

from pathlib import Path

SOURCE_TREE = Path(__file__).resolve().parent.parent
INSTALLED = Path("/usr/share/venvdeb")


def data_root() -> Path:
    return SOURCE_TREE if (SOURCE_TREE / "debian-templates").is_dir() else INSTALLED
