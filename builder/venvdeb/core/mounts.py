"""A private view of the file system for one command: ``python3 -m venvdeb.core.mounts``.

What a command sees is data (``View``): bind mounts (read-only unless said
otherwise) and, for an install-test chroot, the tree it runs in. ``View.wrap``
puts a command inside new namespaces::

    unshare --mount [--pid --ipc --uts] [--net] --fork --kill-child -- \\
        PYTHON -I -m venvdeb.core.mounts VIEW-AS-JSON -- COMMAND...

and this module's ``main``, running as root in those namespaces before
anything else, makes the mounts with mount(2) itself (no shell: no value of
the view is ever parsed by one), enters the chroot if there is one, and execs
the command. The mounts are private to the namespace and vanish with it.

A chroot gets a private /proc (its own PID namespace; /proc/sys and the other
kernel knobs read-only), a /dev holding only null, zero, full, random,
urandom, tty, a private devpts and a tmpfs /dev/shm (no disk devices: root in
the chroot cannot read the host's disks, where the signing key lives), and
root there keeps only ``CHROOT_CAPABILITIES`` (what dpkg, apt, adduser and
maintainer scripts need; not CAP_SYS_ADMIN, CAP_SYS_CHROOT, CAP_MKNOD,
CAP_DAC_READ_SEARCH, CAP_SYS_PTRACE, CAP_SYS_MODULE, CAP_NET_ADMIN...), so it
can neither mount, nor leave the chroot, nor reach the host's processes.

A chroot with ``userns=True`` (the install tests' nodes) is entered by root
mapped to a subordinate uid: the binds are made as real root in a first mount
namespace, then ``unshare --user --map-users=auto --setuid 0`` makes root in the
chroot the first id of root's range in /etc/subuid (``SUBORDINATE``). That
root owns the tree (``own``) and nothing on the host: escaped from the chroot,
it could only touch what is world-writable; it reads a bound directory only
where its mode lets anyone read it.

A shared tree (``read_only=True``: the sdist build chroot, made once and used by
every build at once) is bound onto itself read-only, with private tmpfs on /tmp
and /var/tmp. The command can then run as an unprivileged ``user`` (uid, gid:
no groups, no new privileges, no capabilities) in ``cwd``; in a ``userns``
view those ids are the namespace's (``user=(1000, 1000)`` is host uid
100000 + 1000 with root's range at 100000).
"""
from __future__ import annotations

import ctypes
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core.errors import VenvdebError

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
#: What root keeps in an install-test chroot (capability numbers of
#: linux/capability.h): chown, dac_override, fowner, fsetid, kill, setgid,
#: setuid, setpcap, net_bind_service, audit_write, setfcap. Docker's default
#: set without mknod, net_raw and sys_chroot.
CHROOT_CAPABILITIES = frozenset({0, 1, 3, 4, 5, 6, 7, 8, 10, 29, 31})
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
#: Kernel knobs under /proc that root in a chroot must not write.
PROC_READ_ONLY = ("sys", "sysrq-trigger", "irq", "bus", "fs")


@dataclass(frozen=True)
class Bind:
    source: Path
    target: str  # absolute, inside the view (inside the chroot if there is one)
    writable: bool = False


class SubordinateIdsMissing(VenvdebError):
    """root has no subordinate ids to map a chroot's root to."""


@dataclass(frozen=True)
class View:
    binds: tuple[Bind, ...] = ()
    root: Path | None = None  # a chroot: private /proc, minimal /dev, bounded capabilities
    #: root in the chroot keeps only CHROOT_CAPABILITIES; False only where the chroot
    #: must make namespaces of its own (a venvdeb worker tried inside one, in a test)
    bounded: bool = True
    #: the chroot is shared: bound onto itself read-only, with private /tmp and /var/tmp
    read_only: bool = False
    #: run as this (uid, gid) after entering the chroot: no groups, no new privileges
    user: tuple[int, int] | None = None
    #: the working directory inside the view
    cwd: str | None = None
    #: root in the chroot is a subordinate uid of root's (binds made before, as root)
    userns: bool = False
    #: cgroup directories (delegated to the mapped ids) the command joins before its
    #: cgroup namespace is made: a booted node's systemd manages its units there
    cgroups: tuple[Path, ...] = ()

    def wrap(self, argv: Sequence[str | os.PathLike[str]], *, network: bool = False
             ) -> tuple[str, ...]:
        """``argv`` run in this view, in its own mount namespace; the network cut
        (a loopback only) unless ``network``."""
        spaces = ["--mount"]
        if self.root is not None:
            spaces += ["--pid", "--ipc", "--uts"]
        if not network:
            spaces.append("--net")
        if self.cgroups:
            spaces.append("--cgroup")
        spec: dict[str, object] = {
            "root": None if self.root is None else str(self.root), "bounded": self.bounded,
            "read_only": self.read_only, "user": None if self.user is None else list(self.user),
            "cwd": self.cwd, "binds": [[str(b.source), b.target, b.writable] for b in self.binds]}
        helper = (sys.executable, "-I", "-m", "venvdeb.core.mounts")
        command = tuple(os.fspath(a) for a in argv)
        if self.userns and self.root is not None:
            # 1: as real root (it reaches every source, the shared tree in root's
            # cache): the binds, and a shared tree made read-only with private /tmp;
            # 2: in a user namespace whose root is a subordinate id: the rest
            binds = {"root": spec["root"], "binds": spec["binds"], "read_only": self.read_only,
                     "cgroups": [str(c) for c in self.cgroups], "only_binds": True}
            inner = ("unshare", "--user", "--map-users=auto", "--map-groups=auto", "--setuid",
                     "0", "--setgid", "0", *spaces, "--fork", "--kill-child", "--",
                     # the tree as the working directory stage 1 leaves: mapped root
                     # may not pass its parents (root's cache is 0700)
                     *helper, json.dumps({**spec, "root": ".", "binds": [], "read_only": False}),
                     "--", *command)
            return ("unshare", "--mount", "--", *helper, json.dumps(binds), "--", *inner)
        # not root (a developer's account, an unprivileged worker): binds need a user
        # namespace of the caller's own, its root being the caller and nobody else
        # (--map-root-user maps that one id; no subordinate ids are involved)
        user = () if os.geteuid() == 0 else ("--user", "--map-root-user")
        return ("unshare", *user, *spaces, "--fork", "--kill-child", "--",
                *helper, json.dumps(spec), "--", *command)


SUBORDINATE_TABLES = ("/etc/subuid", "/etc/subgid")


def subordinate(tables: tuple[str, str] = SUBORDINATE_TABLES) -> tuple[int, int]:
    """The first uid and gid of root's ranges in /etc/subuid and /etc/subgid: root
    of a ``userns`` chroot (``unshare --map-users=auto`` maps the first range)."""
    found = []
    for table in tables:
        try:
            lines = Path(table).read_text().splitlines()
        except OSError:
            lines = []
        starts = [int(f[1]) for f in (line.split(":") for line in lines)
                  if len(f) == 3 and f[0] in ("root", "0") and f[1].isdigit()
                  and f[2].isdigit() and int(f[2]) >= 65536]
        if not starts:
            raise SubordinateIdsMissing(
                f"{table} gives root no range of 65536 ids: install-test chroots map their "
                f"root to one", hint=f"run bin/setup, or: echo root:100000:65536 >> {table}")
        found.append(starts[0])
    return found[0], found[1]


def own(path: Path) -> None:
    """``path`` (made by real root in a ``userns`` chroot) handed to root there."""
    uid, gid = subordinate()
    os.chown(path, uid, gid, follow_symlinks=False)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p)


def _mount(source: str | None, target: Path, fstype: str | None, flags: int,
           data: str | None = None) -> None:
    if _libc.mount(None if source is None else source.encode(), os.fsencode(target),
                   None if fstype is None else fstype.encode(), flags,
                   None if data is None else data.encode()) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source or fstype} on {target}: {os.strerror(err)}")


def _bind(source: Path, target: Path, *, writable: bool) -> None:
    _mount(str(source), target, None, MS_BIND)
    if not writable:
        kept = os.statvfs(target).f_flag & (MS_NOSUID | MS_NODEV | MS_NOEXEC)
        _mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | kept)


def _inside(root: Path | None, path: str) -> Path:
    return Path(path) if root is None else root / path.lstrip("/")


def _dev(root: Path) -> None:
    dev = root / "dev"
    _mount("tmpfs", dev, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k")
    for name in DEVICES:
        (dev / name).touch()
        _bind(Path("/dev") / name, dev / name, writable=True)
    (dev / "pts").mkdir()
    _mount("devpts", dev / "pts", "devpts", MS_NOSUID | MS_NOEXEC,
           "newinstance,ptmxmode=0666,mode=0620")
    (dev / "ptmx").symlink_to("pts/ptmx")
    (dev / "shm").mkdir(mode=0o1777)
    _mount("tmpfs", dev / "shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    for i, name in enumerate(("stdin", "stdout", "stderr")):
        (dev / name).symlink_to(f"/proc/self/fd/{i}")
    (dev / "fd").symlink_to("/proc/self/fd")


def _proc(root: Path) -> None:
    proc = root / "proc"
    _mount("proc", proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for knob in PROC_READ_ONLY:
        if (proc / knob).exists():
            _bind(proc / knob, proc / knob, writable=False)


def _bound_capabilities(keep: frozenset[int] = CHROOT_CAPABILITIES) -> None:
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    prctl = _libc.prctl
    for cap in range(last + 1):
        if cap not in keep and prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"dropping capability {cap}: {os.strerror(err)}")


def _drop_to(uid: int, gid: int) -> None:
    """Become ``uid``:``gid`` for good: no supplementary groups, no capabilities
    (a non-root uid keeps none without ambient ones), no new privileges."""
    if uid == 0 or gid == 0:
        raise OSError(1, "refusing to 'drop' to uid or gid 0")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setting no_new_privs: {os.strerror(err)}")


def enter(view: View, argv: Sequence[str], *, only_binds: bool = False) -> None:
    """Make ``view`` in the current (new) mount namespace and exec ``argv``
    (``only_binds``: the binds, then ``argv``, which enters the rest)."""
    root = view.root
    if root is not None and view.read_only:
        _bind(root, root, writable=False)
        for tmp in ("tmp", "var/tmp"):
            _mount("tmpfs", root / tmp, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777")
    if only_binds:
        for b in view.binds:
            _bind(b.source, _inside(root, b.target), writable=b.writable)
        for cgroup in view.cgroups:  # joined here, before the cgroup namespace is made
            (cgroup / "cgroup.procs").write_text(f"{os.getpid()}\n")
        if root is not None:
            os.chdir(root)
        os.execvp(argv[0], list(argv))
    for b in view.binds:
        _bind(b.source, _inside(root, b.target), writable=b.writable)
    if root is not None:
        _proc(root)
        _dev(root)
        os.chroot(root)
        os.chdir("/")
        if view.user is not None:  # nothing to keep for a command that is not root
            _bound_capabilities(frozenset())
        elif view.bounded:
            _bound_capabilities()
    if view.user is not None:
        _drop_to(*view.user)
    if view.cwd is not None:
        os.chdir(view.cwd)
    os.execvp(argv[0], list(argv))


def main(args: Sequence[str]) -> int:
    if len(args) < 3 or args[1] != "--":
        sys.stderr.write("usage: python3 -m venvdeb.core.mounts VIEW-JSON -- COMMAND...\n")
        return 2
    spec = json.loads(args[0])
    user = spec.get("user")
    view = View(tuple(Bind(Path(s), t, bool(w)) for s, t, w in spec["binds"]),
                None if spec["root"] is None else Path(spec["root"]), bool(spec.get("bounded", True)),
                bool(spec.get("read_only")), None if user is None else (int(user[0]), int(user[1])),
                spec.get("cwd"), cgroups=tuple(Path(c) for c in spec.get("cgroups", ())))
    try:
        enter(view, args[2:], only_binds=bool(spec.get("only_binds")))
    except OSError as exc:
        sys.stderr.write(f"venvdeb-error: setting up the private view failed: {exc}\n")
        return 125
    return 0  # not reached: enter execs


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
