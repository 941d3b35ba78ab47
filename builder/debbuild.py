"""``venvdeb build``: binary packages from a source package.

Two builders: ``local`` (dpkg-buildpackage on the host, inside ``unshare -n``,
the requirements package installed as its build dependency) and ``sbuild``
(a clean chroot from an mmdebstrap tarball, the requirements package given
as an extra package, no network). Both end with lintian.
"""
from __future__ import annotations

import fcntl
import hashlib
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from debian.deb822 import Changes
from debian.debfile import DebFile

from builder import command
from builder.errors import CommandFailed, LintianFailed, VenvdebError

Builder = Literal["local", "sbuild"]
#: Tags about uploads to Debian's own archive, which ours is not: its suite
#: names (bookworm-2026.1...) and its ITP bugs for new packages.
SUPPRESSED_TAGS = "bad-distribution-in-changes-file,initial-upload-closes-no-bugs"
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
        result = command.run(["dpkg-query", "-W", "-f", "${Version} ${db:Status-Status}",
                              package], log=log, check=False)
        if result.returncode == 0 and result.output.strip() == f"{version} installed":
            return False
        command.run(["dpkg", "-i", str(deb)], log=log, what=f"dpkg -i {deb.name}")
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
    env = command.clean_environment({"SOURCE_DATE_EPOCH": str(source_date_epoch),
                                     "DEB_BUILD_OPTIONS": "nocheck"})
    command.run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], log=log, env=env,
                what="dpkg-source -x")
    try:
        command.run(["unshare", "-n", "--", "dpkg-buildpackage", "-b", "-us", "-uc", "--no-sign"],
                    cwd=tree, env=env, log=log, heartbeat=30,
                    what="dpkg-buildpackage (offline, unshare -n)")
    except CommandFailed as exc:
        raise _explain(exc, log, "dpkg-buildpackage") from None
    return _collect(work, out_dir)


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
    packages = tuple(sorted({*CHROOT_PACKAGES, *extra}))
    digest = hashlib.sha256(" ".join((mirror, *packages)).encode()).hexdigest()[:8]
    tarball = cache / f"{distribution}-{architecture}-{digest}.tar"
    if tarball.exists() and not refresh:
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / f"{tarball.name}.lock").open("a") as lock:  # builds at once make it once
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists() and not refresh:
            return tarball
        partial = cache / f"partial-{tarball.name}"  # mmdebstrap picks the format by suffix
        partial.unlink(missing_ok=True)
        command.run(["mmdebstrap", "--variant=buildd", f"--architectures={architecture}",
                     f"--include={','.join(packages)}", distribution, str(partial), mirror],
                    log=log, heartbeat=30, what="mmdebstrap (sbuild chroot)")
        partial.replace(tarball)
    return tarball


def build_sbuild(dsc: Path, out_dir: Path, log: Path, *, tarball: Path, distribution: str,
                 architecture: str, extra_packages: tuple[Path, ...],
                 work_name: str = "tmp-build") -> BuildResult:
    """Build in a clean chroot: ``sbuild --chroot-mode=unshare``, no network."""
    work = out_dir / work_name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    env = command.clean_environment({"HOME": str(work), "DEB_BUILD_OPTIONS": "nocheck"})
    argv = ["sbuild", "--chroot-mode=unshare", f"--chroot={tarball}", f"--dist={distribution}",
            f"--arch={architecture}", "--arch-all", "--no-run-lintian", "--no-run-piuparts",
            "--no-run-autopkgtest", "--no-apt-update", "--no-apt-upgrade",
            "--no-apt-distupgrade", f"--build-dir={work}", "--nolog"]
    argv += [f"--extra-package={p}" for p in extra_packages]
    try:
        command.run([*argv, str(dsc)], cwd=work, env=env, log=log, heartbeat=30,
                    what="sbuild (clean chroot, no network)")
    except CommandFailed as exc:
        raise _explain(exc, log, "sbuild") from None
    return _collect(work, out_dir)


def _collect(work: Path, out_dir: Path) -> BuildResult:
    [changes] = work.glob("*.changes")
    debs = sorted(work.glob("*.deb"))
    return BuildResult(tuple(debs), changes)


#: bookworm's lintian (2.116) calls any .deb with zstd members malformed, though
#: dpkg, apt and reprepro of bookworm handle them; dpkg-deb -I proves each one
#: readable instead, and the install test installs them.
ZSTD_TAG = "malformed-deb-archive"


def _zstd_debs(changes: Path, log: Path) -> list[Path]:
    with changes.open() as handle:
        names = [f["name"] for f in Changes(handle).get("Files", [])
                 if f["name"].endswith(".deb")]
    debs = [changes.parent / n for n in names if (changes.parent / n).exists()]
    out = []
    for deb in debs:
        members = command.run(["ar", "t", str(deb)], log=log, what="ar t").output.split()
        if "data.tar.zst" in members:
            command.run(["dpkg-deb", "-I", str(deb)], log=log, what=f"dpkg-deb -I {deb.name}")
            out.append(deb)
    return out


def lintian(changes: Path, log: Path) -> None:
    suppressed = SUPPRESSED_TAGS + (f",{ZSTD_TAG}" if _zstd_debs(changes, log) else "")
    result = command.run(
        ["lintian", "--fail-on", "error,warning", "--suppress-tags",
         suppressed, "--tag-display-limit", "0", str(changes)],
        log=log, check=False, what="lintian", heartbeat=30)
    if result.returncode != 0:
        tags = [line for line in result.output.splitlines() if line[:2] in ("E:", "W:")]
        raise LintianFailed(
            f"lintian rejected {changes.name}: {len(tags)} error/warning tags, first: "
            f"{tags[0] if tags else result.output.strip()[-200:]}",
            hint="fix the packaging, or add an override with its reason", log=log)


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


