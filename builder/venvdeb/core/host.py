"""The build host's own distribution: what venvdeb can run natively here.

A distribution is the host's when its codename is the host's (``/etc/os-release``)
and its ``python_version`` is the interpreter venvdeb runs on; for any other
(trixie on a bookworm host) every step that depends on the distribution runs in
a chroot of it: sbuild for package builds, a tree of it for lintian.
"""
from __future__ import annotations

import functools
import sys
from pathlib import Path

from venvdeb.core.config import Distribution

OS_RELEASE = Path("/etc/os-release")


@functools.cache
def codename(os_release: Path = OS_RELEASE) -> str:
    """``VERSION_CODENAME`` of ``os_release`` ("" when it has none)."""
    try:
        text = os_release.read_text(encoding="utf-8")
    except OSError:
        return ""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "VERSION_CODENAME":
            return value.strip().strip("\"'")
    return ""


def running_python() -> str:
    """``3.11``: the interpreter venvdeb runs on."""
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def native(distribution: Distribution) -> bool:
    """This host runs ``distribution`` and its interpreter."""
    return distribution.name == codename() and distribution.python_version == running_python()
