"""Render ``debian/`` from ``debian-templates/<kind>/`` (Jinja2, no logic there).

The changelog is not a template: python-debian writes it.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from debian.changelog import Changelog

from venvdeb.core import layout

TEMPLATES = layout.data_root() / "debian-templates"
EXECUTABLE = frozenset({"rules"})


def _environment(base: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(base)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    env.filters["sh"] = shell_word
    env.filters["systemd"] = systemd_word
    env.filters["systemd_text"] = systemd_text
    return env


def shell_word(value: object) -> str:
    """``value`` as one word of a POSIX shell (maintainer scripts, make recipes):
    quoted unless it is plain. The config's allowlists keep ``$`` out, which make
    would expand before the shell sees the quotes."""
    return shlex.quote(str(value))


_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_./=:,@+-]+")


def systemd_word(value: object) -> str:
    """``value`` as one word of a unit's ``ExecStart=`` (systemd.service(5),
    "Command lines"): ``%`` and ``$`` doubled (no specifier or variable is
    expanded), double-quoted with C escapes unless plain."""
    text = str(value).replace("%", "%%").replace("$", "$$")
    if _SYSTEMD_PLAIN.fullmatch(text):
        return text
    escaped = "".join(_C_ESCAPES.get(ch, ch) if ch in _C_ESCAPES or ch.isprintable()
                      else f"\\x{ord(ch):02x}" for ch in text)
    return f'"{escaped}"'


_C_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}


def systemd_text(value: object) -> str:
    """Free text of a unit setting (``Description=``): one line, ``%`` doubled."""
    return " ".join(str(value).split()).replace("%", "%%")


def render_file(kind: str, name: str, context: Mapping[str, Any], *,
                templates: Path = TEMPLATES) -> str:
    """One template of the set, e.g. ``package/postinst.j2`` rendered per package."""
    return _environment(templates / kind).get_template(name).render(**context)


def render_tree(kind: str, context: Mapping[str, Any], *,
                templates: Path = TEMPLATES) -> dict[str, str]:
    """Relative path -> text for every top-level file of the template set (pure).

    Templates under ``package/`` and ``unit/`` are rendered per item by the
    caller with ``render_file``; README files are documentation.
    """
    base = templates / kind
    env = _environment(base)
    out: dict[str, str] = {}
    for path in sorted(base.rglob("*")):
        if not path.is_file() or path.name == "README.md" or "__pycache__" in path.parts:
            continue
        rel = path.relative_to(base).as_posix()
        if rel.split("/")[0] in ("package", "unit"):
            continue
        if rel.endswith(".j2"):
            out[rel[:-3]] = env.get_template(rel).render(**context)
        else:
            out[rel] = path.read_text()
    return out


def changelog(source: str, version: str, distribution: str, changes: list[str],
              maintainer: str, date: str) -> str:
    log = Changelog()
    log.new_block(package=source, version=version, distributions=distribution,
                  urgency="medium", author=maintainer, date=date)
    log.add_change("")
    for change in changes:
        # never inside a name: fixture-native, 0.1.0 -> 0.2.0 stay whole on a line
        lines = textwrap.wrap(change, width=76, break_on_hyphens=False)
        log.add_change(f"  * {lines[0]}")
        for line in lines[1:]:
            log.add_change(f"    {line}")
    log.add_change("")
    return str(log)


def write_tree(files: Mapping[str, str], dest: Path) -> None:
    """Write ``files`` under ``dest`` (replacing it); ``rules`` is executable."""
    if dest.exists():
        shutil.rmtree(dest)
    for rel, text in files.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.chmod(path, 0o755 if path.name in EXECUTABLE else 0o644)
