"""mmdebstrap tarballs, made once and cached by what they hold.

One maker for both kinds venvdeb uses: the sbuild chroot (``buildd`` variant,
debhelper and dh-virtualenv preinstalled) and the install test's clean system
(``minbase``). The name carries a digest of the variant, mirror and package list,
so a new list makes a new tarball; builds running at once make it once (a lock).
"""
from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Sequence
from pathlib import Path

from venvdeb.core import runner


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
        runner.run([*argv, distribution, str(partial), mirror], log=log, heartbeat=30, what=what)
        partial.replace(path)
    return path
