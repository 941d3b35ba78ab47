"""Where upstream code runs: an unprivileged system user, no network.

What executes code we did not write on the build host itself (pip-compile's
metadata preparation, closures, ``debian/rules`` of the local builder) goes
through ``confine``; sdist builds and install tests run in chroots of their
own, in user namespaces (``venvdeb.core.mounts``). As root ``confine`` is::

    unshare --net --pid --fork --kill-child -- setpriv --reuid=U --regid=G --clear-groups \
        --no-new-privs --inh-caps=-all --bounding-set=-all -- ARGV...

so the code runs as ``venvdeb-sandbox`` (a system user that owns nothing but
its scratch directory), in a network namespace with only a loopback that is
down (connecting anywhere fails with ENETUNREACH), unable to regain privileges
through setuid programs, in a PID namespace of its own (what it leaves running dies
with it). It cannot read the signing key (``keys/`` is 0700
root), write to /root or to the workdir, and sees only what is world-readable.
Not root (a developer's account): the caller is unprivileged already, and the
network is cut in a user namespace.

A sandboxed step works in a ``scratch`` directory that the sandbox user owns;
the caller copies inputs in and results out, and checks what comes out.
"""
from __future__ import annotations

import os
import pwd
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import runner
from venvdeb.core.errors import VenvdebError
from venvdeb.core.files import link_or_copy
from venvdeb.core.progress import say

USER = "venvdeb-sandbox"
#: How bin/setup (and the venvdeb package's postinst) create the user.
CREATE_USER = ("adduser", "--quiet", "--system", "--group", "--no-create-home", "--home", "/nonexistent",
               "--shell", "/usr/sbin/nologin", "--gecos", "venvdeb sandbox for upstream code",
               USER)


class SandboxUnavailable(VenvdebError):
    """The unprivileged user that upstream code runs as does not exist."""


class SandboxOutputError(VenvdebError):
    """A confined command left no usable output (missing, a link, not a regular file)."""


def read_output(path: Path, what: str) -> str:
    """The text a confined command wrote to ``path`` in its scratch directory, read
    as root: a regular file only, never through a symbolic link, never blocking
    on a FIFO it may have left instead."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise SandboxOutputError(f"{what} left no readable {path.name}: {exc.strerror}") \
            from None
    with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SandboxOutputError(f"{what} left {path.name} as something other than a "
                                     f"regular file: refused")
        return handle.read()


@dataclass(frozen=True)
class Identity:
    uid: int
    gid: int


def identity() -> Identity | None:
    """The sandbox user's ids as root; ``None`` when not root (already unprivileged)."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        entry = _create_user()
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise SandboxUnavailable(f"the sandbox user '{USER}' has uid or gid 0",
                                 hint=f"deluser {USER}, then run bin/setup")
    return Identity(entry.pw_uid, entry.pw_gid)


def _create_user() -> pwd.struct_passwd:
    """The sandbox user, created on first use as root (a worker that installed the
    venvdeb package with apt has no bin/setup)."""
    if shutil.which("adduser") is not None:
        say(f"sandbox: creating the system user '{USER}' that upstream code runs as")
        runner.run(list(CREATE_USER), log=Path(os.devnull), check=False, what="adduser")
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        raise SandboxUnavailable(
            f"the system user '{USER}', which runs upstream code, does not exist",
            hint=f"run bin/setup, or: {' '.join(CREATE_USER)}") from None


def confine(argv: Sequence[str | os.PathLike[str]], *, network: bool = False) -> tuple[str, ...]:
    """``argv`` wrapped to run as the sandbox user, with the network cut unless
    ``network`` (fetching from the index, never while running upstream code)."""
    args = tuple(os.fspath(a) for a in argv)
    who = identity()
    # --pid --fork: the command is PID 1 of its own PID namespace, so every process it
    # leaves behind (a daemon, a double fork) dies with it instead of living on as the
    # sandbox user beside the next builds
    if who is None:
        return args if network else ("unshare", "--user", "--map-current-user", "--net",
                                     "--pid", "--fork", "--kill-child", "--", *args)
    unshare = ("unshare", *(() if network else ("--net",)), "--pid", "--fork", "--kill-child",
               "--")
    return (*unshare, "setpriv", f"--reuid={who.uid}", f"--regid={who.gid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--", *args)


def unreachable(path: Path) -> Path | None:
    """The first directory on the way to ``path`` (a file:// index, say) that the
    sandbox user cannot pass or read; ``None`` when it can read ``path``."""
    if identity() is None:
        return None
    path = path.resolve()
    for step in reversed(path.parents):
        if not os.stat(step).st_mode & stat.S_IXOTH:
            return step
    mode = os.stat(path).st_mode
    needed = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return None if mode & needed == needed else path


@contextmanager
def scratch(prefix: str, base: Path | None = None,
            owner: Identity | None = None) -> Iterator[Path]:
    """A directory the sandbox user (or ``owner``) owns (0700), removed afterwards;
    ``base`` (default: the system temp dir) must be traversable by that user."""
    path = Path(tempfile.mkdtemp(prefix=f"venvdeb-{prefix}-", dir=base))
    try:
        who = owner or identity()
        if who is not None:
            os.chown(path, who.uid, who.gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def lend(source: Path, dest: Path) -> None:
    """``dest`` for the sandbox user to read, never to change: a hard link to
    ``source`` (root keeps owning it) where ``source`` is world-readable, else a
    world-readable copy (a daemon's umask 077, buildbot's, made it private)."""
    if source.stat().st_mode & 0o004:
        link_or_copy(source, dest)
    else:
        shutil.copyfile(source, dest)
        dest.chmod(0o644)


def readable_dir(path: Path) -> Path:
    """``path`` made (root's, 0755 whatever the umask) for the sandbox user to read."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755)
    return path


def give(path: Path, owner: Identity | None = None) -> None:
    """Hand ``path`` (a tree copied into a scratch directory) to the sandbox user
    (or ``owner``); never follows a symbolic link."""
    who = owner or identity()
    if who is None:
        return
    for root, dirs, files in os.walk(path):
        for name in (*dirs, *files):
            os.chown(os.path.join(root, name), who.uid, who.gid, follow_symlinks=False)
    os.chown(path, who.uid, who.gid, follow_symlinks=False)
