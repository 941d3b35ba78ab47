"""``venvdeb build``: binary packages from a source package.

Two builders: ``local`` (dpkg-buildpackage on the host, as the unprivileged
sandbox user, network cut) and ``sbuild`` (a clean chroot from an mmdebstrap
tarball, the requirements package given as an extra package, no network).
lintian is the QA layer's (venvdeb.qa.lintian).

The local builder installs nothing on the host. Each build gets a private
mount namespace (``venvdeb.core.mounts``) in which its requirements package's
wheels, unpacked from that build's own .deb, are a read-only bind mount where
the package would install them, and dpkg's status file is a read-only copy
that lists the package as installed (so dpkg-checkbuilddeps passes). Two
builds, of two workdirs or releases, each see their own wheels. Root sets the
view up, then ``venvdeb.core.sandbox`` drops to the sandbox user for
``dpkg-source -x`` and ``dpkg-buildpackage`` (no root needed: the venv packages
say Rules-Requires-Root: no; dpkg-buildpackage uses fakeroot for a package that
does not) in a scratch directory it owns; root copies the results (regular
files only) back.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from debian.deb822 import Deb822, Dsc
from debian.debfile import DebFile

from venvdeb.core import host, images, mounts, runner, sandbox
from venvdeb.core.config import Distribution
from venvdeb.core.errors import CommandFailed, ConfigError, VenvdebError
from venvdeb.core.files import copy_out

Builder = Literal["local", "sbuild"]
BUILDERS: tuple[Builder, ...] = ("local", "sbuild")


def choose(requested: Builder | None, distribution: Distribution) -> Builder:
    """The builder for ``distribution``: as asked, else ``local`` for the host's own
    distribution and ``sbuild`` (a chroot of it) for any other. The local builder
    builds with the host's dh-virtualenv and interpreter: never for another."""
    if requested is None:
        return "local" if host.native(distribution) else "sbuild"
    if requested == "local" and not host.native(distribution):
        raise ConfigError(
            f"the local builder builds for this host's distribution ({host.codename() or '?'}, "
            f"Python {host.running_python()}) only, not for "
            f"{distribution.name} (Python {distribution.python_version})",
            hint="use --builder sbuild (a clean chroot of it), or leave --builder out")
    return requested


class BuildFailed(VenvdebError):
    """A package build failed: names the stage and the log."""


@dataclass(frozen=True)
class BuildResult:
    debs: tuple[Path, ...]
    changes: Path


@dataclass(frozen=True)
class BuildDependency:
    """A package a local build depends on, which the host does not install: the build
    sees the directory ``shows`` of ``deb`` (read-only, at the same path) and dpkg's
    status says the package is installed."""

    deb: Path
    shows: str


BUILD = ("dpkg-buildpackage", "-b", "-us", "-uc", "--no-sign")
DPKG_STATUS = Path("/var/lib/dpkg/status")
#: What the local builder copies back from the sandbox's scratch directory.
OUTPUTS = (".deb", ".ddeb", ".changes", ".buildinfo")


def dependency_view(depends: Sequence[BuildDependency], into: Path, log: Path) -> mounts.View:
    """What a build that needs ``depends`` sees: each unpacked (``dpkg-deb -x``) into
    ``into`` and bound read-only at its ``shows`` path, and a copy of dpkg's status
    file (written into ``into``) that lists each as installed. The empty mount points
    are made on the host if missing (nothing is installed there), by root; another
    user binds in a user namespace of its own, onto mount points that exist."""
    if not depends:
        return mounts.View()
    into.mkdir(parents=True, exist_ok=True)
    binds: list[mounts.Bind] = []
    stanzas: dict[str, str] = {}
    for dep in depends:
        control = DebFile(str(dep.deb)).debcontrol()
        unpacked = into / control["Package"]
        runner.run(["dpkg-deb", "-x", dep.deb, unpacked], log=log,
                   what=f"dpkg-deb -x {dep.deb.name}")
        shown = unpacked / dep.shows.lstrip("/")
        if not shown.is_dir():
            raise BuildFailed(f"{dep.deb} has nothing under {dep.shows}",
                              hint="rebuild it with 'venvdeb reqdeb --force'")
        _mountpoint(Path(dep.shows))
        binds.append(mounts.Bind(shown, dep.shows))
        control["Status"] = "install ok installed"
        stanzas[control["Package"]] = control.dump()
    status = into / "dpkg-status"
    with DPKG_STATUS.open(encoding="utf-8") as host, status.open("w", encoding="utf-8") as out:
        for paragraph in Deb822.iter_paragraphs(host):
            if paragraph.get("Package") not in stanzas:
                out.write(paragraph.dump() + "\n")
        out.write("\n".join(stanzas.values()))
    status.chmod(0o644)
    binds.append(mounts.Bind(status, str(DPKG_STATUS)))
    return mounts.View(tuple(binds))


def _explain(error: CommandFailed, log: Path, stage: str) -> BuildFailed:
    text = log.read_text(errors="replace")
    ours = re.findall(r"^venvdeb-error: (.+)$", text, re.M)
    if ours:
        return BuildFailed(ours[-1], hint=f"stage {stage}", log=log)
    pip = re.findall(r"^ERROR: (.+)$", text, re.M)
    detail = f": {pip[-1]}" if pip else ""
    return BuildFailed(f"{stage} failed{detail}", hint=error.hint, log=log)


def _mountpoint(path: Path) -> None:
    """``path`` and the parents it lacks, 0755 whatever the umask (a buildbot
    worker's is 077): the sandbox user must pass through them. Only root makes them."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    if missing and os.geteuid() != 0:
        raise BuildFailed(f"the local builder shows the build its requirements package at "
                          f"{path}, which does not exist, and only root may make it",
                          hint=f"as root, once: install -d -m 755 {path} (bin/setup and the "
                               f"venvdeb package do), or use --builder sbuild")
    for step in reversed(missing):
        step.mkdir()
        step.chmod(0o755)


def build_local(dsc: Path, out_dir: Path, log: Path, *, source_date_epoch: int,
                work_name: str = "tmp-build",
                depends: Sequence[BuildDependency] = ()) -> BuildResult:
    """``dpkg-source -x`` and ``dpkg-buildpackage -b`` as the sandbox user, network
    cut, seeing ``depends`` (``dependency_view``); the results land in
    ``out_dir/work_name``."""
    work = out_dir / work_name
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    view = dependency_view(depends, work / "depends", log)
    try:
        with sandbox.scratch("build") as scratch:
            _build_in(scratch, dsc, view, log, source_date_epoch)
            for produced in sorted(scratch.iterdir()):
                if (produced.suffix in OUTPUTS and produced.is_file()
                        and not produced.is_symlink()):
                    copy_out(produced, work / produced.name)
    finally:
        shutil.rmtree(work / "depends", ignore_errors=True)
    return _collect(work, out_dir)


def _build_in(scratch: Path, dsc: Path, view: mounts.View, log: Path,
              source_date_epoch: int) -> None:
    for name in (dsc.name, *(f["name"] for f in Dsc(dsc.read_text())["Files"])):
        shutil.copyfile(dsc.parent / name, scratch / name)
    sandbox.give(scratch)
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(source_date_epoch),
                                     "DEB_BUILD_OPTIONS": "nocheck", "HOME": str(scratch),
                                     "TMPDIR": str(scratch)})
    runner.run(sandbox.confine(["dpkg-source", "--no-check", "-x", dsc.name, "src"]),
               cwd=scratch, log=log, env=env, what="dpkg-source -x (sandbox user)")
    build = sandbox.confine(BUILD)
    try:
        runner.run(view.wrap(build) if view.binds else build, cwd=scratch / "src", env=env,
                   log=log, heartbeat=30, what="dpkg-buildpackage (sandbox user, offline)")
    except CommandFailed as exc:
        raise _explain(exc, log, "dpkg-buildpackage") from None


def buildpackage(tree: Path, env: dict[str, str], log: Path) -> None:
    """``dpkg-buildpackage -b`` in ``tree``, which the sandbox user owns, as that user
    with the network cut: the requirements package's build."""
    runner.run(sandbox.confine(BUILD), cwd=tree, env=env, log=log, heartbeat=30,
               what="dpkg-buildpackage (sandbox user, offline)")


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


