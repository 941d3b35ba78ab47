"""Clean systems for install tests: an mmdebstrap tarball, unpacked per test.

The tarball (venvdeb.core.images, ``minbase``) is made once and cached under
``~/.cache/venvdeb/chroot/``. Each test unpacks it into a fresh directory;
commands run in it through ``venvdeb.core.mounts`` (private user, mount, PID,
IPC, UTS and network namespaces, so /proc, /dev and bind mounts vanish with the
command).

apt, dpkg and the packages' maintainer scripts need uid 0 in the chroot
(adduser, chown, dpkg's own database): that root is not the host's. It is the
first id of root's range in /etc/subuid (``mounts.subordinate``), which owns the
unpacked tree (unpacked by that same mapped root, from the tarball on its
standard input) and nothing else on the host; it has no network (only ``apt-get
update`` and downloads get it, never a maintainer script), no disk devices, no
host processes in sight, a bounded capability set (no mount, chroot, mknod,
ptrace), and sees bound directories only as far as their modes let anyone read.
What real root writes into the tree for a test is handed to it (``Chroot.put``).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import mounts, runner
from venvdeb.core.errors import InstallTestFailed
from venvdeb.core.files import link_or_copy

POLICY_RC_D = "#!/bin/sh\n# venvdeb install test: no service is started in a chroot\nexit 101\n"


Bind = mounts.Bind  # source, target inside the chroot, writable (default: read-only)


@dataclass(frozen=True)
class Chroot:
    root: Path
    binds: tuple[Bind, ...]
    log: Path

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def run(self, argv: Sequence[str], *, what: str | None = None, check: bool = True,
            env: dict[str, str] | None = None, network: bool = False,
            bounded: bool = True, on_line: runner.LineCallback | None = None) -> runner.Result:
        """``argv`` in the chroot, as root bounded by ``mounts.CHROOT_CAPABILITIES``
        (unless not ``bounded``), in its own mount, PID, IPC and UTS namespaces; the
        network cut unless ``network`` (fetching packages: maintainer scripts run with
        it cut)."""
        wrapped = mounts.View(self.binds, self.root, bounded, userns=True).wrap(
            argv, network=network)
        # the host's TMPDIR names a directory of the host, not of the chroot
        environment = runner.clean_environment({"HOME": "/root", "TMPDIR": "/tmp",
                                                **(env or {})})
        return runner.run(wrapped, log=self.log, env=environment, check=check,
                          what=what or f"{argv[0]} (in the test chroot)", heartbeat=60,
                          on_line=on_line)

    def put(self, inside: str, text: str, mode: int = 0o644) -> Path:
        """Write ``inside`` (its directories made as needed) for root in the chroot
        to own, whatever the umask; never through a symbolic link that leads out
        of the tree (what ran in the chroot may have left one)."""
        path = self.path(inside)
        for parent in reversed([d for d in path.parents if d.is_relative_to(self.root)]):
            if not parent.exists() and not parent.is_symlink():
                parent.mkdir(mode=0o755)
                mounts.own(parent)
        self._inside_tree(path.parent, inside)
        path.unlink(missing_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(path, mode, follow_symlinks=False)
        mounts.own(path)
        return path

    def remove(self, inside: str) -> None:
        path = self.path(inside)
        self._inside_tree(path.parent, inside)
        path.unlink(missing_ok=True)

    def _inside_tree(self, directory: Path, inside: str) -> None:
        if not Path(os.path.realpath(directory)).is_relative_to(os.path.realpath(self.root)):
            raise InstallTestFailed(f"{inside} in the test chroot leads out of it through a "
                                    f"symbolic link: refused", log=self.log)

    def uid(self, host_uid: int) -> int:
        """A file's owner as root in the chroot sees it (the tree is owned by mapped ids)."""
        return host_uid - mounts.subordinate()[0]

    def gid(self, host_gid: int) -> int:
        return host_gid - mounts.subordinate()[1]

    def sh(self, script: str, *, what: str, check: bool = True, network: bool = False,
           bounded: bool = True) -> runner.Result:
        return self.run(["/bin/sh", "-ec", script], what=what, check=check, network=network,
                        bounded=bounded)


@contextmanager
def session(image: Path, log: Path, binds: Sequence[Bind] = (),
            apt_cache: Path | None = None) -> Iterator[Chroot]:
    """A fresh chroot from ``image``, removed afterwards."""
    uid, gid = mounts.subordinate()
    root = Path(tempfile.mkdtemp(prefix="venvdeb-chroot-", dir=os.environ.get("TMPDIR")))
    try:
        os.chown(root, uid, gid)
        root.chmod(0o755)
        # unpacked by the chroot's own root (a mapped id), so it owns the tree; the
        # tarball is opened here, by real root; /dev is a tmpfs in the chroot anyway
        runner.run(["unshare", "--user", "--map-users=auto", "--map-groups=auto",
                    "--setuid", "0", "--setgid", "0", "--", "tar", "-C", str(root), "-xf", "-",
                    "--exclude=./dev/*"], log=log, what="tar (chroot)", stdin=image)
        box = Chroot(root, tuple(binds), log)
        box.put("/usr/sbin/policy-rc.d", POLICY_RC_D, 0o755)
        if Path("/etc/resolv.conf").exists():
            box.path("/etc/resolv.conf").unlink(missing_ok=True)
            box.put("/etc/resolv.conf", Path("/etc/resolv.conf").read_text())
        all_binds = list(binds)
        archives = root / "var/cache/apt/archives"
        if apt_cache is not None:  # a private copy: concurrent chroots must not share apt's lock
            apt_cache.mkdir(parents=True, exist_ok=True)
            _share(apt_cache, archives)
        for b in all_binds:  # mount points, made for root in the chroot to pass
            target = box.path(b.target)
            missing = [d for d in (target if b.source.is_dir() else target.parent,
                                   *target.parents) if d.is_relative_to(root) and not d.exists()]
            for directory in reversed(missing):
                directory.mkdir(mode=0o755)
                mounts.own(directory)
            if not b.source.is_dir() and not target.exists():
                box.put(b.target, "")
        yield Chroot(root, tuple(all_binds), log)
        if apt_cache is not None:
            _share(archives, apt_cache)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _share(source: Path, dest: Path) -> None:
    """Hard-link (or copy) the .debs ``dest`` lacks; each appears whole or not at all."""
    dest.mkdir(parents=True, exist_ok=True)
    for deb in source.glob("*.deb"):
        target = dest / deb.name
        if target.exists():
            continue
        partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest))  # unique per call
        try:
            link_or_copy(deb, partial / deb.name)
            (partial / deb.name).replace(target)
        finally:
            shutil.rmtree(partial, ignore_errors=True)


#: Paths a package install legitimately changes and a purge need not restore.
EXPECTED_CHANGES = (
    "etc/passwd", "etc/group", "etc/shadow", "etc/gshadow", "etc/passwd-", "etc/group-",
    "etc/shadow-", "etc/gshadow-", "etc/subuid", "etc/subgid", "etc/subuid-", "etc/subgid-",
    "etc/ld.so.cache", "etc/apt/sources.list.d/", "etc/apt/keyrings/", "usr/share/keyrings/",
    "var/lib/dpkg/", "var/lib/apt/", "var/log/", "var/cache/", "var/lib/systemd/deb-systemd-",
    "var/lib/ucf/", "tmp/", "root/", "var/tmp/",
)

_SKIP_TOP = ("proc", "sys", "dev", "run", "tmp")


def snapshot(root: Path, skip: Sequence[str] = ()) -> frozenset[str]:
    """Every path in the chroot, relative, but pseudo filesystems and ``skip``."""
    found = set()
    skipped = {*_SKIP_TOP, *(s.strip("/") for s in skip)}
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        keep = []
        for d in dirnames:
            rel = d if rel_dir == "." else f"{rel_dir}/{d}"
            if rel not in skipped:
                keep.append(d)
                found.add(rel + "/")
        dirnames[:] = keep
        for f in filenames:
            found.add(f if rel_dir == "." else f"{rel_dir}/{f}")
    return frozenset(found)


def leftovers(before: frozenset[str], after: frozenset[str]) -> tuple[str, ...]:
    """Paths present after the purge that were not before, but expected churn."""
    return tuple(sorted(p for p in after - before
                        if not any(p.startswith(e) for e in EXPECTED_CHANGES)))
