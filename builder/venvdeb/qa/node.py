"""A booted node: systemd as PID 1 in a chroot, so that units really start.

The node is a ``minbase`` tree with systemd (``NODE_PACKAGES``), unpacked by
root mapped to a subordinate id like every test chroot (``chroot.session``),
then booted in its own user, mount, PID, IPC, UTS, network and cgroup
namespaces (``venvdeb.core.mounts``)::

    systemd --system    (PID 1 of the node, uid 0 there, root's first subordinate id here)

in a cgroup subtree made for it and delegated to the mapped ids (systemd puts
its units there; one subtree per node, so nodes do not meet). It has a
loopback of its own and no other network: what it installs must be in its
tree, or fetched before it boots (``chroot.Chroot.run`` with the network).
Commands run in it through ``nsenter``; ``poweroff`` sends systemd its
power-off signal and waits for it to stop. The units a container cannot run
(kernel debug file systems, logind, e2scrub) are masked before it boots, so
that a healthy node says ``running``.
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import mounts, runner
from venvdeb.core.errors import InstallTestFailed
from venvdeb.qa import chroot

#: What a node's tree holds beyond ``minbase``.
#: adduser and netbase: every standard Debian system has them (priority important);
#: pulled in by our packages, neither leaves cleanly on trixie: dbus depends on "adduser
#: | systemd-sysusers" and keeps an adduser that came later; netbase's postinst writes
#: /etc/hosts, which its postrm removes only when it is the default of one hostname
NODE_PACKAGES = ("systemd", "systemd-sysv", "dbus", "iproute2", "adduser", "netbase")
#: Units that cannot work in a container: masked, as systemd-nspawn users do.
MASKED = ("sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-kernel-config.mount",
          "e2scrub_reap.service", "systemd-logind.service", "getty@.service",
          "console-getty.service")
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: systemd's signal for "power off" (SIGRTMIN+4)
POWEROFF = "SIGRTMIN+4"


def cgroup_hierarchies(root: Path = CGROUP_ROOT) -> tuple[Path, ...]:
    """Where a node's cgroup subtree goes: the unified hierarchy (cgroup v2 alone),
    or, on a hybrid host, systemd's named v1 hierarchy and the unified one."""
    if (root / "cgroup.controllers").exists():
        return (root,)
    return tuple(p for p in (root / "systemd", root / "unified") if p.is_dir())


@dataclass(frozen=True)
class Node:
    box: chroot.Chroot  # the tree, and how to run in it before boot or after poweroff
    pid: int  # the node's systemd, as seen from here
    log: Path
    cgroups: tuple[Path, ...] = ()  # its subtree in each hierarchy, removed at poweroff

    def run(self, argv: Sequence[str], *, what: str | None = None,
            check: bool = True) -> runner.Result:
        """``argv`` as root of the booted node, in all its namespaces."""
        wrapped = ("nsenter", "-t", str(self.pid), "-U", "-m", "-p", "-n", "-i", "-u", "-C",
                   "-r", "-w", "--", *argv)
        env = runner.clean_environment({"HOME": "/root", "TMPDIR": "/tmp",
                                        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        return runner.run(wrapped, log=self.log, env=env, check=check,
                          what=what or f"{argv[0]} (on the booted node)", heartbeat=60)

    def sh(self, script: str, *, what: str, check: bool = True) -> runner.Result:
        return self.run(["/bin/sh", "-ec", script], what=what, check=check)

    def state(self) -> str:
        """``systemctl is-system-running --wait``: running, degraded..."""
        result = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                          what="systemctl is-system-running")
        lines = result.output.strip().splitlines()
        return lines[-1] if lines else "unknown"


def _processes(cgroups: Sequence[Path]) -> list[str]:
    """The PIDs (here) of every process in the node's cgroups. The node's systemd makes
    and removes cgroups meanwhile: one gone during the walk is skipped, not an error."""
    pids = []
    for cgroup in cgroups:
        for directory, _, files in os.walk(cgroup):  # (os.walk skips what vanished)
            if "cgroup.procs" in files:
                try:
                    pids += (Path(directory) / "cgroup.procs").read_text().split()
                except OSError:
                    continue
    return pids


def _node_pid(cgroups: Sequence[Path], deadline: float) -> int:
    """The PID (here) of the process that is PID 1 in the node's namespace."""
    while time.monotonic() < deadline:
        for pid in _processes(cgroups):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            nspid = [f.split() for f in status.splitlines() if f.startswith("NSpid:")]
            if nspid and nspid[0][-1] == "1" and len(nspid[0]) > 2:
                return int(pid)
        time.sleep(0.2)
    raise InstallTestFailed("the booted node's systemd did not start")


def _delegate(name: str) -> tuple[Path, ...]:
    uid, gid = mounts.subordinate()
    made = []
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / name
        path.mkdir()
        made.append(path)
        for entry in (path, *path.iterdir()):
            os.chown(entry, uid, gid)
    if not made:
        raise InstallTestFailed(f"no cgroup hierarchy under {CGROUP_ROOT} to boot a node in")
    return tuple(made)


def _remove(cgroups: Sequence[Path], patience: float = 30.0) -> None:
    """The node's cgroups, deepest first; a cgroup whose last processes are still
    exiting (EBUSY) is tried again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    for cgroup in cgroups:
        found = [Path(d) for d, _, _ in os.walk(cgroup)]
        for directory in sorted(found, key=lambda p: len(p.parts), reverse=True):
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise
                    for pid in _processes((directory,)):
                        with contextlib.suppress(OSError):
                            os.kill(int(pid), signal.SIGKILL)
                    time.sleep(0.2)


def mask(box: chroot.Chroot, units: Sequence[str] = MASKED) -> None:
    """Mask ``units`` in the tree (links to /dev/null in /etc/systemd/system)."""
    uid, gid = mounts.subordinate()
    directory = box.path("/etc/systemd/system")
    for unit in units:
        link = directory / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
        os.chown(link, uid, gid, follow_symlinks=False)


@contextmanager
def booted(box: chroot.Chroot, log: Path, *, timeout: float = 120) -> Iterator[Node]:
    """``box`` booted with systemd as PID 1 until the block ends, then powered off."""
    mask(box)
    box.remove("/usr/sbin/policy-rc.d")  # a booted node starts what packages enable
    cgroups = _delegate(f"venvdeb-node-{secrets.token_hex(4)}")
    # the tree bound onto itself first: a mount point, as systemd needs its root to be
    # to make the mount namespaces of units with PrivateTmp=, ProtectSystem=... (else
    # "Failed to set up mount namespacing", status 226/NAMESPACE: mariadb.service)
    view = mounts.View((chroot.Bind(box.root, "/", writable=True), *box.binds), box.root,
                       bounded=False, userns=True, cgroups=cgroups)
    command = view.wrap(["/usr/bin/env", "-i", "container=venvdeb-node", "/lib/systemd/systemd",
                         "--system", "--unit=multi-user.target"])
    outcome: list[BaseException] = []

    def boot() -> None:
        try:
            runner.run(command, log=log, check=False, what="systemd (the booted node)")
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            outcome.append(exc)

    thread = threading.Thread(target=boot, name="venvdeb-node", daemon=True)
    thread.start()
    pid = 0
    try:
        deadline = time.monotonic() + timeout
        pid = _node_pid(cgroups, deadline)
        the_node = Node(box, pid, log, cgroups)
        while the_node.run(["test", "-S", "/run/systemd/private"], check=False,
                           what="systemd's socket").returncode != 0:
            if time.monotonic() > deadline or not thread.is_alive():
                raise InstallTestFailed("the booted node's systemd never opened its socket",
                                        log=log)
            time.sleep(0.2)
        yield the_node
    finally:
        if pid:
            runner.run(["kill", "-s", POWEROFF, str(pid)], log=log, check=False,
                       what="power off the node")
        thread.join(timeout)
        if thread.is_alive():  # it did not stop: every process of the node goes
            for pid_left in _processes(cgroups):
                runner.run(["kill", "-9", pid_left], log=log, check=False, what="kill")
            thread.join(30)
        _remove(cgroups)
