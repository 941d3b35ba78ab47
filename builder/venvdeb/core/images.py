"""mmdebstrap tarballs and trees, made once and cached by what they hold.

One maker for the kinds venvdeb uses: the sbuild chroot (``buildd`` variant,
debhelper and dh-virtualenv preinstalled), the install test's clean system
(``minbase``), both tarballs, and the sdist build chroot (``minbase`` with
Python's build tools and the config's ``sdist_build_dependencies``), a tree that
every sdist build enters read-only at once. The name carries a digest of the
variant, mirror and package list, so a new list makes a new image; builds
running at once make it once (a lock). A package apt cannot install is an
``ImageError`` naming it.
"""
from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

from venvdeb.core import runner
from venvdeb.core.errors import VenvdebError

#: apt's words for a package it cannot install (mmdebstrap passes them on)
_UNAVAILABLE = re.compile(r"E: (?:Unable to locate package |Package '?)([a-z0-9][a-z0-9+.-]+)")


class ImageError(VenvdebError):
    """mmdebstrap could not make an image (by the packages apt refused)."""

    def __init__(self, message: str, *, packages: tuple[str, ...] = (), hint: str | None = None,
                 log: Path | None = None) -> None:
        super().__init__(message, hint=hint, log=log)
        self.packages = packages


def _mmdebstrap(argv: list[str], log: Path, what: str) -> None:
    result = runner.run(argv, log=log, heartbeat=30, what=what, check=False)
    if result.returncode != 0:
        refused = tuple(dict.fromkeys(_UNAVAILABLE.findall(result.output)))
        raise ImageError(
            f"{what} failed" + (f": apt cannot install {', '.join(refused)}" if refused else ""),
            packages=refused, log=log,
            hint="check the package names for the distribution" if refused
            else "read the log for apt's error (mirror reachable?)")


def tarball(variant: str, distribution: str, architecture: str, mirror: str, cache: Path,
            log: Path, *, packages: Sequence[str] = (), refresh: bool = False,
            what: str = "mmdebstrap") -> Path:
    wanted = tuple(sorted(set(packages)))
    if variant == "minbase":
        digest = hashlib.sha256(" ".join(("minbase", mirror, *wanted)).encode()).hexdigest()[:8]
        path = cache / f"{distribution}-{architecture}-minbase-{digest}.tar"
    else:  # the sbuild tarball's name, as before the two makers were one
        digest = hashlib.sha256(" ".join((mirror, *wanted)).encode()).hexdigest()[:8]
        path = cache / f"{distribution}-{architecture}-{digest}.tar"
    if path.exists() and not refresh:
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists() and not refresh:
            return path
        partial = cache / f"partial-{path.name}"  # mmdebstrap picks the format by suffix
        partial.unlink(missing_ok=True)
        argv = ["mmdebstrap", f"--variant={variant}", f"--architectures={architecture}"]
        if wanted:
            argv.append(f"--include={','.join(wanted)}")
        _mmdebstrap([*argv, distribution, str(partial), mirror], log, what)
        partial.replace(path)
    return path


#: Where a confined command's scratch directory is bound in a tree.
SCRATCH = "/build"


def tree(distribution: str, architecture: str, mirror: str, cache: Path, log: Path, *,
         packages: Sequence[str], what: str = "mmdebstrap") -> Path:
    """A ``minbase`` tree holding ``packages`` (with an empty ``SCRATCH`` to bind a
    scratch directory on), made once into ``cache``; never changed after: every
    user binds it read-only (``mounts.View(read_only=True)``)."""
    wanted = tuple(sorted(set(packages)))
    digest = hashlib.sha256(" ".join(("tree", mirror, *wanted)).encode()).hexdigest()[:8]
    path = cache / f"{distribution}-{architecture}-tree-{digest}"
    if (path / SCRATCH.lstrip("/")).is_dir():
        return path
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{path.name}.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / SCRATCH.lstrip("/")).is_dir():
            return path
        partial = cache / f"partial-{path.name}"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(path, ignore_errors=True)  # left half-made by a crash: made again
        argv = ["mmdebstrap", "--variant=minbase", f"--architectures={architecture}",
                "--include=" + ",".join(wanted)]
        _mmdebstrap([*argv, distribution, str(partial), mirror], log, what)
        partial.chmod(0o755)
        partial.replace(path)
        (path / SCRATCH.lstrip("/")).mkdir(mode=0o755)  # last: marks the tree complete
    return path
