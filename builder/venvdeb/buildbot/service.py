"""``venvdeb buildbot start|stop|status|checkconfig``: the master and the
workers of the settings, on this machine, from the tool's own virtualenv."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from venvdeb.buildbot import users
from venvdeb.buildbot.plan import SETTINGS_ENV, Settings, Worker
from venvdeb.core import layout, runner
from venvdeb.core.errors import CommandFailed, ConfigError
from venvdeb.core.files import write_private
from venvdeb.core.workdir import Workdir

MASTER_CFG = layout.data_root() / "buildbot-master" / "master.cfg"


def _bin(name: str) -> Path:
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise ConfigError(f"{name} is not installed in {path.parent}",
                          hint="run bin/setup (it installs buildbot, buildbot-www and "
                               "buildbot-worker into .venv)")
    return path


def _env(site: Settings) -> dict[str, str]:
    extra = {SETTINGS_ENV: str(site.path)} if site.path else {}
    env = runner.clean_environment(extra)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def log_path(site: Settings) -> Path:
    return site.basedir.parent / "service.log"


def checkconfig(site: Settings) -> str:
    try:
        runner.run([_bin("buildbot"), "checkconfig", MASTER_CFG], log=log_path(site),
                    env=_env(site), cwd=MASTER_CFG.parent, what="buildbot checkconfig")
    except CommandFailed as exc:
        raise ConfigError(f"buildbot checkconfig rejects {MASTER_CFG}: {exc.hint}",
                          log=exc.log) from None
    return f"buildbot: {MASTER_CFG} is good"


def clear_incoming(workdir: Path) -> int:
    """Remove the uploads in the publisher's ``incoming/``: with the master stopped, no
    build of theirs is left to accept them (an interrupted build runs again, into a
    directory of its own). The number removed."""
    incoming = Workdir(workdir).incoming
    stale = sorted(incoming.iterdir()) if incoming.is_dir() else []
    for upload in stale:
        if upload.is_dir() and not upload.is_symlink():
            shutil.rmtree(upload)
        else:
            upload.unlink()
    return len(stale)


def start(site: Settings) -> list[str]:
    checkconfig(site)
    lines_before: list[str] = []
    log = log_path(site)
    env = _env(site)
    if not (site.basedir / "buildbot.tac").exists():
        site.basedir.mkdir(parents=True, exist_ok=True)
        runner.run([_bin("buildbot"), "create-master", "--relocatable", "--config",
                     MASTER_CFG, site.basedir], log=log, env=env, what="buildbot create-master")
    else:
        runner.run([_bin("buildbot"), "upgrade-master", site.basedir], log=log, env=env,
                    what="buildbot upgrade-master")
    # its state.sqlite holds the secret that signs the web UI's session cookies: whoever
    # reads it can make one that says "admin"
    site.basedir.chmod(0o700)
    if not _running(site.basedir):
        cleared = clear_incoming(site.workdir)
        runner.run([_bin("buildbot"), "start", site.basedir], log=log, env=env,
                    what="buildbot start")
        if cleared:
            lines_before.append(f"incoming: removed {cleared} uploads of builds a stopped "
                                f"master did not accept (their builds run again)")
    lines = [*lines_before,
             f"master: running, web UI {site.url} (log: {site.basedir / 'twistd.log'})",
             who_may_log_in(site)]
    for w in site.workers:
        wdir = site.worker_dir(w)
        owner = _owner(w)
        if owner is not None:
            _own_directory(w, owner, wdir)
        # written here, not by 'buildbot-worker create-worker', whose argv (seen by every
        # user in ps, and in our logs) would carry the password
        write_private(wdir / "buildbot.tac", worker_tac(site.pb_address, site.pb_port, w))
        if owner is not None:
            os.chown(wdir / "buildbot.tac", owner.pw_uid, owner.pw_gid, follow_symlinks=False)
        if not _running(wdir):
            start_worker: list[str | Path] = [_bin("buildbot-worker"), "start", wdir]
            runner.run(start_worker if owner is None else _as(owner, start_worker), log=log,
                       env=env if owner is None else {**env, "HOME": str(wdir)},
                       what="buildbot-worker start")
        lines.append(f"worker {w.name}: running in {wdir}"
                     + (f" as {owner.pw_name}" if owner is not None else ""))
    return lines


def _owner(w: Worker) -> pwd.struct_passwd | None:
    """The account worker ``w`` runs as, if it has one of its own."""
    if w.user is None:
        return None
    try:
        entry = pwd.getpwnam(w.user)
    except KeyError:
        raise ConfigError(f"workers: worker {w.name} runs as user {w.user!r}, which does not "
                          f"exist on this machine",
                          hint=f"adduser --system --group --home {w.workdir} {w.user}") from None
    if entry.pw_uid == 0 or entry.pw_gid == 0:
        raise ConfigError(f"workers: worker {w.name}'s user {w.user} has uid or gid 0",
                          hint="give it an unprivileged system user of its own")
    if os.geteuid() != 0:
        raise ConfigError(f"workers: only root can start worker {w.name} as {w.user}",
                          hint="run 'venvdeb buildbot start' as root")
    return entry


def _own_directory(w: Worker, owner: pwd.struct_passwd, wdir: Path) -> None:
    """The worker's workdir (made if missing) must be its user's, and its buildbot
    directory in it too: made as that user, never chowned through a link."""
    assert w.workdir is not None  # (the settings demand one with a user)
    if not w.workdir.exists():
        w.workdir.mkdir(parents=True, mode=0o700)
        os.chown(w.workdir, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    found = w.workdir.lstat()
    if found.st_uid != owner.pw_uid or not w.workdir.is_dir() or w.workdir.is_symlink():
        raise ConfigError(f"workers: worker {w.name}'s workdir {w.workdir} is not a directory "
                          f"of its user {owner.pw_name}",
                          hint=f"chown -R {owner.pw_name}: {w.workdir} (its own copy of the "
                               f"release's lock and wheels, or an empty directory)")
    if not wdir.exists():
        wdir.mkdir(mode=0o700)
        os.chown(wdir, owner.pw_uid, owner.pw_gid, follow_symlinks=False)
    if wdir.is_symlink() or wdir.lstat().st_uid != owner.pw_uid:
        raise ConfigError(f"workers: {wdir} is not a directory of {owner.pw_name}",
                          hint="remove it; 'venvdeb buildbot start' makes it again")


def _as(owner: pwd.struct_passwd, argv: list[str | Path]) -> list[str | Path]:
    """``argv`` run as ``owner``: its uid, gid and groups (setuid helpers kept: sbuild's
    unshare mode maps its subordinate ids with newuidmap)."""
    return ["setpriv", f"--reuid={owner.pw_uid}", f"--regid={owner.pw_gid}", "--init-groups",
            "--", *argv]


def who_may_log_in(site: Settings) -> str:
    known = users.load(site.users)
    if not known:
        return (f"web UI: view only, nobody can log in: no users in {site.users} (add one: "
                f"venvdeb buildbot passwd --user NAME [--admin], password on stdin)")
    admins = sorted(n for n, u in known.items() if users.ADMIN in u.roles)
    return (f"web UI: {len(known)} users from {site.users} may force builds; "
            f"admins (promote, stop, cancel): {', '.join(admins) or 'none'}")


def worker_tac(host: str, port: int, worker: Worker) -> str:
    """A worker's buildbot.tac as ``buildbot-worker create-worker --relocatable`` writes
    it (log rotation, defaults), with the password it gets from the settings."""
    return f"""# Written by venvdeb buildbot start from the buildbot settings: edit those.
import os

from buildbot_worker.bot import Worker
from twisted.application import service
from twisted.python.log import FileLogObserver, ILogObserver
from twisted.python.logfile import LogFile

basedir = os.path.abspath(os.path.dirname(__file__))
# note: this line is matched against to check that this is a worker
# directory; do not edit it.
application = service.Application('buildbot-worker')
logfile = LogFile.fromFullPath(os.path.join(basedir, "twistd.log"), rotateLength=10000000,
                               maxRotatedFiles=10)
application.setComponent(ILogObserver, FileLogObserver(logfile).emit)

s = Worker({host!r}, {port!r}, {worker.name!r}, {worker.password!r}, basedir, 600,
           umask=None, maxdelay=300, numcpus=None, allow_shutdown=None, maxRetries=None,
           protocol='pb', useTls=0, delete_leftover_dirs=0)
s.setServiceParent(application)
"""


def stop(site: Settings) -> list[str]:
    log, env = log_path(site), _env(site)
    lines = []
    for w in site.workers:
        wdir = site.worker_dir(w)
        if _running(wdir):
            runner.run([_bin("buildbot-worker"), "stop", wdir], log=log, env=env,
                        what="buildbot-worker stop")
        lines.append(f"worker {w.name}: stopped")
    if _running(site.basedir):
        runner.run([_bin("buildbot"), "stop", site.basedir], log=log, env=env,
                    what="buildbot stop")
    lines.append("master: stopped")
    return lines


def status(site: Settings) -> list[str]:
    lines = [f"master: {'running' if _running(site.basedir) else 'stopped'} ({site.basedir})"]
    for w in site.workers:
        state = "running" if _running(site.worker_dir(w)) else "stopped"
        lines.append(f"worker {w.name}: {state}")
    try:
        builders = api(site, "builders")["builders"]
        connected = api(site, "workers")["workers"]
        lines.append(f"web UI {site.url}: {len(builders)} builders; workers connected: "
                     + ", ".join(str(w["name"]) for w in connected if w.get("connected_to")))
    except OSError as exc:
        lines.append(f"web UI {site.url}: not answering ({exc})")
    return lines


def api(site: Settings, path: str) -> dict[str, list[dict[str, object]]]:
    with urllib.request.urlopen(f"{site.local_url}api/v2/{path}", timeout=10) as response:
        data: dict[str, list[dict[str, object]]] = json.load(response)
        return data


def _running(basedir: Path) -> bool:
    pid_file = basedir / "twistd.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return True
    except (OSError, ValueError):
        return False


def wait_for_master(site: Settings, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            api(site, "builders")
            return
        except (OSError, urllib.error.URLError):
            time.sleep(0.5)
    raise ConfigError(f"the buildbot master did not answer on {site.local_url} within {timeout:.0f} s",
                      log=site.basedir / "twistd.log")
