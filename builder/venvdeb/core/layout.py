"""Where venvdeb's own data lives: its source tree, or /usr/share/venvdeb.

From a checkout (``.venv/bin/venvdeb``) the templates, the requirement files,
the bundled config and the buildbot master sit beside ``builder/`` (the source
root of the ``venvdeb`` package). The ``venvdeb`` Debian package
(venvdeb.debian.tool_package) installs them under ``/usr/share/venvdeb`` instead.
"""
from __future__ import annotations

from pathlib import Path

#: builder/venvdeb/core/layout.py -> the checkout
SOURCE_TREE = Path(__file__).resolve().parents[3]
INSTALLED = Path("/usr/share/venvdeb")


def data_root() -> Path:
    return SOURCE_TREE if (SOURCE_TREE / "debian-templates").is_dir() else INSTALLED
