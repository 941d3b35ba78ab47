"""``venvdeb build``: binary packages from a source package.

Two builders: ``local`` (dpkg-buildpackage on the host, inside ``unshare -n``,
the requirements package installed as its build dependency) and ``sbuild``
(a clean chroot from an mmdebstrap tarball, the requirements package given
as an extra package, no network). lintian is the QA layer's (venvdeb.qa.lintian).
"""
from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from debian.debfile import DebFile

from venvdeb.core import images, runner
from venvdeb.core.errors import CommandFailed, VenvdebError

Builder = Literal["local", "sbuild"]
BUILDERS: tuple[Builder, ...] = ("local", "sbuild")


class BuildFailed(VenvdebError):
    """A package build failed: names the stage and the log."""


@dataclass(frozen=True)
class BuildResult:
    debs: tuple[Path, ...]
    changes: Path


HOST_LOCK = Path("/run/lock/venvdeb-host-packages.lock")


def ensure_installed(package: str, version: str, deb: Path, log: Path) -> bool:
    """Install ``deb`` on the host unless ``package`` is there at ``version``; builds
    running at once (buildbot workers on one host) take turns."""
    HOST_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with HOST_LOCK.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        result = runner.run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}",
                              package], log=log, check=False)
        if result.returncode == 0 and result.output.strip() == f"{version} installed":
            return False
        runner.run(["dpkg", "-i", str(deb)], log=log, what=f"dpkg -i {deb.name}")
        return True


def _explain(error: CommandFailed, log: Path, stage: str) -> BuildFailed:
    text = log.read_text(errors="replace")
    ours = re.findall(r"^venvdeb-error: (.+)$", text, re.M)
    if ours:
        return BuildFailed(ours[-1], hint=f"stage {stage}", log=log)
    pip = re.findall(r"^ERROR: (.+)$", text, re.M)
    detail = f": {pip[-1]}" if pip else ""
    return BuildFailed(f"{stage} failed{detail}", hint=error.hint, log=log)


def build_local(dsc: Path, out_dir: Path, log: Path, *, source_date_epoch: int,
                work_name: str = "tmp-build") -> BuildResult:
    work = out_dir / work_name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    tree = work / "src"
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(source_date_epoch),
                                     "DEB_BUILD_OPTIONS": "nocheck"})
    runner.run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], log=log, env=env,
                what="dpkg-source -x")
    try:
        buildpackage(tree, env, log)
    except CommandFailed as exc:
        raise _explain(exc, log, "dpkg-buildpackage") from None
    return _collect(work, out_dir)


def buildpackage(tree: Path, env: dict[str, str], log: Path) -> None:
    """``dpkg-buildpackage -b`` in ``tree`` with the network cut (``unshare -n``)."""
    runner.run(["unshare", "-n", "--", "dpkg-buildpackage", "-b", "-us", "-uc", "--no-sign"],
               cwd=tree, env=env, log=log, heartbeat=30,
               what="dpkg-buildpackage (offline, unshare -n)")


#: What the sbuild chroot carries beyond the buildd variant, so that a build
#: needs nothing from the network: only the requirements package, given to
#: sbuild as an extra package.
CHROOT_PACKAGES = ("debhelper", "dh-virtualenv", "python3-venv", "python3-dev", "fakeroot")


def chroot_tarball(distribution: str, architecture: str, mirror: str, cache: Path, log: Path,
                   *, extra: tuple[str, ...] = (), refresh: bool = False) -> Path:
    """The mmdebstrap tarball sbuild builds in; made on first use, then cached.

    ``extra``: the Debian build dependencies of sdist-built wheels (pipeline.toml),
    preinstalled so that no build needs the network; the tarball's name carries
    a digest of what it holds, so a new list makes a new tarball."""
    return images.tarball("buildd", distribution, architecture, mirror, cache, log,
                          packages=(*CHROOT_PACKAGES, *extra), refresh=refresh,
                          what="mmdebstrap (sbuild chroot)")


def build_sbuild(dsc: Path, out_dir: Path, log: Path, *, tarball: Path, distribution: str,
                 architecture: str, extra_packages: tuple[Path, ...],
                 work_name: str = "tmp-build") -> BuildResult:
    """Build in a clean chroot: ``sbuild --chroot-mode=unshare``, no network."""
    work = out_dir / work_name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = runner.clean_environment({"HOME": str(work), "DEB_BUILD_OPTIONS": "nocheck"})
    argv = ["sbuild", "--chroot-mode=unshare", f"--chroot={tarball}", f"--dist={distribution}",
            f"--arch={architecture}", "--arch-all", "--no-run-lintian", "--no-run-piuparts",
            "--no-run-autopkgtest", "--no-apt-update", "--no-apt-upgrade",
            "--no-apt-distupgrade", f"--build-dir={work}", "--nolog"]
    argv += [f"--extra-package={p}" for p in extra_packages]
    try:
        runner.run([*argv, str(dsc)], cwd=work, env=env, log=log, heartbeat=30,
                    what="sbuild (clean chroot, no network)")
    except CommandFailed as exc:
        raise _explain(exc, log, "sbuild") from None
    return _collect(work, out_dir)


def _collect(work: Path, out_dir: Path) -> BuildResult:
    [changes] = work.glob("*.changes")
    debs = sorted(work.glob("*.deb"))
    return BuildResult(tuple(debs), changes)


def publish_outputs(result: BuildResult, out_dir: Path) -> tuple[Path, ...]:
    """Move the build's files next to the source package; the .debs last."""
    work = result.changes.parent
    for produced in sorted(work.glob("*.buildinfo")) + [result.changes]:
        produced.replace(out_dir / produced.name)
    debs = []
    for deb in result.debs:
        deb.replace(out_dir / deb.name)
        debs.append(out_dir / deb.name)
    shutil.rmtree(work)
    return tuple(debs)


def differences(a: Path, b: Path) -> list[str]:
    """Which members of two .debs differ (content, mode, owner, mtime, link)."""
    out = []
    for part in ("control", "data"):
        left, right = _members(a, part), _members(b, part)
        for name in sorted(set(left) | set(right)):
            if left.get(name) != right.get(name):
                out.append(f"{part}:{name}")
    return out


def _members(deb: Path, part: str) -> dict[str, tuple[object, ...]]:
    debfile = DebFile(str(deb))
    archive = debfile.control if part == "control" else debfile.data
    tar = archive.tgz()
    members: dict[str, tuple[object, ...]] = {}
    for m in tar.getmembers():
        digest = ""
        if m.isfile():
            handle = tar.extractfile(m)
            digest = hashlib.sha256(handle.read() if handle else b"").hexdigest()
        members[str(m.name)] = (m.type, m.mode, m.uid, m.gid, m.mtime, str(m.linkname), digest)
    return members


