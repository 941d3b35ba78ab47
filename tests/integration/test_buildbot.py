"""A real buildbot master and worker on 127.0.0.1, configured from a pipeline
config: checkconfig, and a commit on the fixture upstream's stable branch
becoming a new package in the staging codename. Results read over the REST API.
"""
from __future__ import annotations

import base64
import fcntl
import http.cookiejar
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import RELEASE, ROOT, Project, readable_dir, require_tools
from tests.integration.test_repository_fixture import STAGING, listing
from tests.integration.test_venv_bad_input import git_upstream, with_git
from tests.integration.test_venv_fixture import service_project
from venvdeb.archive import repository

pytestmark = pytest.mark.integration
VENVDEB = Path(sys.executable).parent / "venvdeb"
BUILDER = f"fixture-service-{RELEASE}-bookworm"
OTHER_BUILDER = f"fixture-other-{RELEASE}-bookworm"
OTHER_VENV = f"venv-fixture-other-{RELEASE}"
PROMOTE = f"promote-{RELEASE}-bookworm"
#: the web UI's users (_settings writes them): an admin, and a user who may only force
ADMIN = ("admin", "admin-password-of-the-test")
DEV = ("dev", "dev-password-of-the-test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _settings(tmp_path: Path, project: Project, **extra: object) -> Path:
    path = tmp_path / "settings.toml"
    lines = [f'config = "{project.config}"', f'workdir = "{project.workdir}"',
             f'basedir = "{tmp_path / "bb" / "master"}"', f'venvdeb = "{VENVDEB}"',
             f"web_port = {_free_port()}", f"pb_port = {_free_port()}", 'builder = "local"',
             "poll_interval = 2"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in extra.items()]
    path.touch(0o600)  # the tests add workers, and their passwords
    path.write_text("\n".join(lines) + "\n")
    from venvdeb.buildbot import users
    users.set_user(tmp_path / "users.toml", *ADMIN, (users.ADMIN,))  # the default place
    users.set_user(tmp_path / "users.toml", *DEV, ())
    return path


def _venvdeb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(VENVDEB), *args], capture_output=True, text=True, cwd=ROOT)


def test_checkconfig_passes_on_the_bundled_config() -> None:
    require_tools("git")
    result = _venvdeb("buildbot", "checkconfig")
    assert result.returncode == 0, result.stderr
    assert "master.cfg is good" in result.stdout


def test_checkconfig_rejects_an_unreachable_upstream(project: Project, tmp_path: Path) -> None:
    service_project(project, with_git(f"file://{tmp_path}/nowhere.git"))
    result = _venvdeb("buildbot", "checkconfig", "--settings", str(_settings(tmp_path, project)))
    assert result.returncode != 0
    assert f"projects.fixture-service: upstream file://{tmp_path}/nowhere.git has no branch " \
           f"'stable/{RELEASE}' or cannot be reached" in result.stderr + result.stdout


def test_web_ui_lists_every_builder(tmp_path: Path) -> None:
    """The bundled config's master, its web UI rendered by headless Chromium: without
    logging in (no users file), anyone still sees every builder."""
    require_tools("git", "chromium")
    from venvdeb.buildbot import plan as buildbot_plan
    from venvdeb.core import config
    settings = tmp_path / "settings.toml"
    port = _free_port()
    settings.write_text(f'basedir = "{tmp_path / "master"}"\nweb_port = {port}\n'
                        f'pb_port = {_free_port()}\nworkdir = "{tmp_path / "work"}"\n'
                        f'config = "{ROOT / "pipeline.toml"}"\nvenvdeb = "{VENVDEB}"\n')
    start = _venvdeb("buildbot", "start", "--settings", str(settings))
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        url = f"http://127.0.0.1:{port}/#/builders"
        chromium = ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
                    "--virtual-time-budget=15000", "--window-size=1400,1000"]
        dom = subprocess.run([*chromium, "--dump-dom", url], capture_output=True, text=True,
                             timeout=120).stdout
        shot = tmp_path / "builders.png"
        subprocess.run([*chromium, f"--screenshot={shot}", url], capture_output=True,
                       timeout=120, check=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    finally:
        _venvdeb("buildbot", "stop", "--settings", str(settings))
    site = buildbot_plan.load_settings(settings, ROOT)
    names = [p.name for p in buildbot_plan.plan(config.load(ROOT / "pipeline.toml"), site)]
    assert len(names) == 15  # (2025.1, bookworm), (2026.1, bookworm), (2026.1, trixie)
    missing = [n for n in names if n not in dom]
    assert not missing, f"not on the page: {missing}"
    assert "Anonymous" in dom, "the login bar: the UI knows who may log in"


#: each worker's own unprivileged user (made by the test if missing)
WORKER_USERS = {"local": "venvdeb-test-worker1", "second": "venvdeb-test-worker2"}


@dataclass(frozen=True)
class Running:
    project: Project  # the publisher's (the master's) config and workdir
    settings: Path
    urls: tuple[str, str]  # fixture-service's and fixture-other's upstreams (to push to)
    api: str
    first: Path  # the first worker's workdir, its user's
    second: Path  # the second worker's


@pytest.fixture
def running(project: Project, tmp_path: Path,
            request: pytest.FixtureRequest) -> Iterator[Running]:
    """The master and two workers, each as its own unprivileged user in a workdir of its
    own; fixture-service and fixture-other each follow the stable branch of an
    upstream of their own (where that user may read them)."""
    require_tools("git", "dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare",
                  "mmdebstrap", "reprepro", "gpg", "setpriv", "adduser")
    shared = readable_dir("bb")  # what the second worker's user reads: upstreams, its config
    (shared / "service").mkdir()
    (shared / "other").mkdir()
    bares = git_upstream(shared / "service"), git_upstream(shared / "other")
    # served by git's own daemon on 127.0.0.1, as a forge serves them: read by the master's
    # pollers and both workers (git refuses a local repository another user owns)
    port = _free_port()
    daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                               f"--base-path={shared}", "--listen=127.0.0.1", f"--port={port}",
                               str(shared)], stderr=subprocess.DEVNULL)
    request.addfinalizer(lambda: (daemon.kill(), daemon.wait()))
    url, other_url = (f"git://127.0.0.1:{port}/{name}/upstream.git" for name in ("service",
                                                                                 "other"))
    deadline = time.monotonic() + 30
    while subprocess.run(["git", "ls-remote", url], capture_output=True).returncode:
        assert time.monotonic() < deadline, "git daemon answers"
        time.sleep(0.5)
    service_project(project, with_git(url) + OTHER.replace(
        'user = "fixture"', f'user = "fixture"\nupstream = {{ git = "{other_url}", '
                            f'refs = {{ "{RELEASE}" = "stable/{RELEASE}" }} }}'))
    for stage in ("lock", "wheels", "reqdeb"):
        r = _venvdeb("--config", str(project.config), "--workdir", str(project.workdir), stage,
                     "--release", RELEASE)
        assert r.returncode == 0, r.stderr[-2000:]
    settings = _settings(tmp_path, project)
    # two workers take the builds, each as its own unprivileged user in a workdir of its
    # own without the publisher's key, repository or ledger (its release's lock, wheels
    # and requirements package as the publisher made them), with its own copy of the
    # config; the second runs venvdeb from its own path, as a machine set up by apt would
    # (/usr/bin/venvdeb): a wrapper that leaves a mark
    shutil.copytree(project.root, shared / "checkout", symlinks=True)
    workdirs = {}
    for name, user in WORKER_USERS.items():
        if subprocess.run(["getent", "passwd", user], capture_output=True).returncode:
            subprocess.run(["adduser", "--quiet", "--system", "--group", "--no-create-home",
                            "--home", "/nonexistent", user], check=True)
        workdirs[name] = shared / f"{name}-work"
        shutil.copytree(project.workdir, workdirs[name], symlinks=True,
                        ignore=shutil.ignore_patterns("keys", "repo", "repo.*", "versions.json*",
                                                      "checks.json*", "incoming"))
        subprocess.run(["chown", "-R", f"{user}:{user}", str(workdirs[name])], check=True)
    wrapper = shared / "bin" / "venvdeb"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\ntouch {workdirs['second']}/venvdeb.used\n"
                       f"exec {VENVDEB} \"$@\"\n")
    wrapper.chmod(0o755)
    with settings.open("a") as handle:
        for name, user in WORKER_USERS.items():
            handle.write(f'[[workers]]\nname = "{name}"\npassword = "p-{name}"\n'
                         f'user = "{user}"\nworkdir = "{workdirs[name]}"\n'
                         f'config = "{shared / "checkout" / "pipeline.toml"}"\n'
                         + (f'venvdeb = "{wrapper}"\n' if name == "second" else ""))
    # the user runs the checkout's venvdeb: it passes the directories above it
    private = [d for d in (ROOT, *ROOT.parents) if not d.stat().st_mode & 0o001]
    for directory in private:
        directory.chmod(directory.stat().st_mode | 0o001)
    start = _venvdeb("buildbot", "start", "--settings", str(settings))
    try:
        assert start.returncode == 0, start.stderr[-3000:]
        for name, user in WORKER_USERS.items():
            assert f"worker {name}: running in {workdirs[name] / 'buildbot-worker'} as " \
                   f"{user}" in start.stdout, start.stdout
        web = next(line.split("= ")[1] for line in settings.read_text().splitlines()
                   if line.startswith("web_port"))
        yield Running(project, settings, bares, f"http://127.0.0.1:{web}/api/v2/",
                      workdirs["local"], workdirs["second"])
    finally:
        _venvdeb("buildbot", "stop", "--settings", str(settings))
        for directory in private:
            directory.chmod(directory.stat().st_mode & ~0o001)


def _get(api: str, path: str) -> dict[str, list[dict[str, object]]]:
    with urllib.request.urlopen(api + path, timeout=10) as response:
        data: dict[str, list[dict[str, object]]] = json.load(response)
        return data


def _push_fix(url: str, clone: Path) -> None:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "PATH": "/usr/bin:/bin", "HOME": str(clone.parent)}
    subprocess.run(["git", "clone", "-q", "--branch", f"stable/{RELEASE}", url, str(clone)],
                   check=True, env=env)
    readme = clone / "README.md"
    readme.write_text(readme.read_text() + "\nA second stable fix.\n")
    for args in (["commit", "-q", "-am", "second stable fix"], ["push", "-q", "origin", "HEAD"]):
        subprocess.run(["git", *args], cwd=clone, check=True, env=env, capture_output=True)


def test_stable_pushes_build_on_two_workers_at_once_into_one_staging(
        running: Running, tmp_path: Path) -> None:
    """A push to the stable branch of each of two projects: one build on each worker, at
    the same time. Their uploads wait in incoming/ for the publisher (its repository held
    by another run), which is restarted: the uploads are dropped, nothing is published,
    the builds run again and then land in the publisher's one staging codename with the
    versions its ledger assigned; a clean chroot installs both over HTTP from venvdeb
    serve's nginx. A process with the second worker's name and a wrong password is
    refused."""
    project, settings, urls, api = running.project, running.settings, running.urls, running.api
    _cannot_read_the_publishers_key_or_repository(project.workdir)
    names = {str(b["name"]) for b in _get(api, "builders")["builders"]}
    assert {BUILDER, OTHER_BUILDER, f"requirements-{RELEASE}-bookworm", PROMOTE} <= names
    _both_connected(api)
    _refused_intruder(settings)
    incoming = project.workdir / "incoming"
    lock = repository.Paths(project.workdir / "repo").lock_file
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a+") as held_lock:
        fcntl.flock(held_lock, fcntl.LOCK_EX)  # another run publishing, for a while
        time.sleep(5)  # the pollers' first poll records the branches as they are
        for url, clone in zip(urls, ("service-clone", "other-clone"), strict=True):
            _push_fix(url, tmp_path / clone)
        deadline = time.monotonic() + 900
        while not (incoming.is_dir() and len(list(incoming.iterdir())) == 2):
            assert time.monotonic() < deadline, "both uploads reached incoming/"
            time.sleep(2)
        first = {name: _get(api, f"builders/{name}/builds")["builds"][-1]
                 for name in (BUILDER, OTHER_BUILDER)}
        # both accept steps (each having run its upload's install test first) wait for
        # the repository, and say so
        deadline = time.monotonic() + 600
        while not all("repository: waiting for " in _accept_log(api, build)
                      for build in first.values()):
            assert time.monotonic() < deadline, [_accept_log(api, b) for b in first.values()]
            time.sleep(2)
        master = tmp_path / "bb" / "master"
        stopped = subprocess.run([str(VENVDEB.parent / "buildbot"), "stop", str(master)],
                                 capture_output=True, text=True)
        assert stopped.returncode == 0, stopped.stderr
        start = _venvdeb("buildbot", "start", "--settings", str(settings))
        assert start.returncode == 0, start.stderr[-3000:]
        assert "incoming: removed 2 uploads of builds a stopped master did not accept" \
            in start.stdout, start.stdout
        assert list(incoming.iterdir()) == []
    time.sleep(5)  # an accept left running would now take the repository
    assert not (project.workdir / "repo").exists(), "nothing of the dropped uploads published"
    _both_connected(api)
    builds: dict[str, dict[str, object]] = {}
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and len(builds) < 2:
        for name in (BUILDER, OTHER_BUILDER):
            done = [b for b in _get(api, f"builders/{name}/builds")["builds"]
                    if b.get("complete") and b["buildid"] != first[name]["buildid"]]
            if done:
                builds[name] = done[-1]
        time.sleep(3)
    assert len(builds) == 2, f"both builds ran again within 15 minutes: {sorted(builds)}"
    # the interrupted builds ran on one worker each, at once (both uploads waited together)
    assert first[BUILDER]["workerid"] != first[OTHER_BUILDER]["workerid"], first
    for build in first.values():
        again = _get(api, f"builds/{build['buildid']}")["builds"][0]
        assert again["complete"] and again["results"] in (4, 5, 6), again  # not a success
    for name, build in builds.items():
        steps = _get(api, f"builds/{build['buildid']}/steps")["steps"]
        summary = [(s["name"], s["results"]) for s in steps]
        assert build["results"] == 0, (name, summary)
        assert [step for step, _ in summary][-8:] == [
            "inputs", "version (publisher)", "source package", "build (local)",
            "checks (lintian, install test)", "upload", "upload to the publisher", "accept into staging"]
    one, other = builds[BUILDER], builds[OTHER_BUILDER]
    assert one["workerid"] != other["workerid"], "each worker ran one build again"
    assert (running.second / "venvdeb.used").exists(), \
        "the second worker's build ran venvdeb from the path its settings give"
    # neither worker (not root) ran its build's install test: each left it to the
    # publisher, which ran it at the first accept (before waiting for the repository); the
    # retried build's accept found it passed
    for name in (BUILDER, OTHER_BUILDER):
        steps = _get(api, f"builds/{builds[name]['buildid']}/steps")["steps"]
        said = _step_log(api, next(s for s in steps if s["name"] == "checks (lintian, install test)"))
        assert "lintian passed; install test left to the publisher" in said, (name, said[-2000:])
        accepted = _accept_log(api, first[name]) + _accept_log(api, builds[name])
        assert accepted.count("accept: install test of ") == 1, (name, accepted[-3000:])
    # one publisher: both packages in its one staging codename, each with the first
    # version its ledger assigned for the stable commit; the workers' workdirs have no
    # repository or key, and incoming/ is empty (uploads accepted, then removed)
    repo = project.workdir / "repo"
    held = listing(repo, STAGING)
    for package in ("fixture-service", "fixture-other"):
        assert f"{package} deb 90:1.0.0.post2-0+deb12u1" in held, held
    for workdir in (running.first, running.second):
        assert not (workdir / "repo").exists() and not (workdir / "keys").exists()
    assert list((project.workdir / "incoming").iterdir()) == []
    # whichever worker built it, its source package is in the publisher's pool
    [debian_tar] = repo.glob("pool/main/f/fixture-service/*1.0.0.post2-*.debian.tar.xz")
    changelog = subprocess.run(["tar", "-xJOf", str(debian_tar), "debian/changelog"],
                               capture_output=True, text=True, check=True).stdout
    assert f"Rebuild reason: buildbot {BUILDER} build " in changelog
    assert f"stable/{RELEASE} at " in changelog, changelog
    _both_install_over_http(project, tmp_path)


def _cannot_read_the_publishers_key_or_repository(publisher: Path) -> None:
    import pwd
    for user in WORKER_USERS.values():
        who = pwd.getpwnam(user)
        for path in (publisher / "keys", publisher / "repo.lock", publisher / "state"):
            looked = subprocess.run(["setpriv", f"--reuid={who.pw_uid}",
                                     f"--regid={who.pw_gid}", "--clear-groups", "--", "ls",
                                     str(path)], capture_output=True, text=True)
            assert looked.returncode != 0 and "Permission denied" in looked.stderr, \
                (user, path, looked)


def _accept_log(api: str, build: dict[str, object]) -> str:
    steps = _get(api, f"builds/{build['buildid']}/steps")["steps"]
    return "".join(_step_log(api, s) for s in steps if s["name"] == "accept into staging")


def _step_log(api: str, step: dict[str, object]) -> str:
    logs = _get(api, f"steps/{step['stepid']}/logs")["logs"]
    text = ""
    for log in logs:
        with urllib.request.urlopen(f"{api}logs/{log['logid']}/raw", timeout=10) as r:
            text += r.read().decode()
    return text


def _both_connected(api: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        connected = [w for w in _get(api, "workers")["workers"] if w.get("connected_to")]
        if len(connected) == 2:
            return
        time.sleep(1)
    raise AssertionError("both workers connected")


def _refused_intruder(settings: Path) -> None:
    """An upload travels over the worker's own authenticated connection: a process with
    the second worker's name and a wrong password is refused, so it can take no build."""
    from venvdeb.buildbot import plan as buildbot_plan
    from venvdeb.buildbot import service
    site = buildbot_plan.load_settings(settings, ROOT)
    intruder = settings.parent / "intruder"
    intruder.mkdir()
    (intruder / "buildbot.tac").write_text(service.worker_tac(
        site.pb_address, site.pb_port, buildbot_plan.Worker("second", "not-its-password")))
    # (its start exits 1: it waits for a login that does not come)
    subprocess.run([str(VENVDEB.parent / "buildbot-worker"), "start", str(intruder)],
                   capture_output=True)
    try:
        deadline = time.monotonic() + 30
        log = intruder / "twistd.log"
        while time.monotonic() < deadline and "unauthorized login" not in \
                (log.read_text() if log.exists() else ""):
            time.sleep(1)
        assert "unauthorized login" in log.read_text(), log.read_text()[-2000:]
    finally:
        subprocess.run([str(VENVDEB.parent / "buildbot-worker"), "stop", str(intruder)],
                       capture_output=True)


def _both_install_over_http(project: Project, tmp_path: Path) -> None:
    """The publisher's repository served by venvdeb serve; a clean chroot, sharing the
    host's network, fetches the keyring and both packages from staging over HTTP."""
    # nginx's workers (www-data) pass through pytest's private (0700) directories to the
    # publisher's repository for this check, listing nothing
    private = [d for d in (tmp_path, *tmp_path.parents) if not d.stat().st_mode & 0o001]
    for directory in private:
        directory.chmod(directory.stat().st_mode | 0o001)
    try:
        _install_over_http(project, tmp_path)
    finally:
        for directory in private:
            directory.chmod(directory.stat().st_mode & ~0o001)


def _install_over_http(project: Project, tmp_path: Path) -> None:
    from venvdeb.archive import http
    from venvdeb.core import images
    from venvdeb.core.workdir import shared_cache
    from venvdeb.qa import chroot
    url = f"http://127.0.0.1:{_free_port()}"
    served = _venvdeb("--config", str(project.config), "--workdir", str(project.workdir),
                      "serve", "start", "--listen", url.removeprefix("http://"))
    assert served.returncode == 0, served.stderr[-2000:]
    try:
        keyring = "/etc/apt/keyrings/venvdeb-archive-keyring.gpg"
        script = "\n".join([
            http.keyring_command(url, keyring),
            "cat > /etc/apt/sources.list.d/venvdeb.sources <<'EOF'",
            *repository.sources_entry(url, STAGING, keyring).rstrip("\n").splitlines(), "EOF",
            # fixture-other's command package ships /usr/bin/fixture-manage as
            # fixture-service's does: beside it, its venv package
            "apt-get update", f"apt-get install -y fixture-service {OTHER_VENV}"])
        log = tmp_path / "node.log"
        image = images.tarball("minbase", "bookworm", "amd64", "http://deb.debian.org/debian",
                               shared_cache() / "chroot", log)
        with chroot.session(image, log) as box:  # no bind of the workdir: HTTP only
            result = box.sh(script, what="install from staging over HTTP", check=False,
                            network=True)
            assert result.returncode == 0, result.output[-3000:]
            versions = box.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\n",
                                "fixture-service", OTHER_VENV]).output
            assert versions.split("\n")[:2] == ["fixture-service 90:1.0.0.post2-0+deb12u1",
                                                 f"{OTHER_VENV} 90:1.0.0.post2-0+deb12u1"]
            for command in ("fixture-manage", f"/opt/venvs/fixture-other-{RELEASE}/bin/fixture-manage"):
                assert "1.0.0" in box.run([command, "--version"], check=False).output, command
        access = (project.workdir / "http" / "access.log").read_text()
        for pool in ("f/fixture-service/fixture-service_", f"f/fixture-other/{OTHER_VENV}_"):
            assert f'"GET /pool/main/{pool}' in access, access[-3000:]
    finally:
        _venvdeb("--config", str(project.config), "--workdir", str(project.workdir),
                 "serve", "stop")


OTHER = f"""
[projects.fixture-other]
pypi_name = "fixture-service"
versions = {{ "{RELEASE}" = "1.0.0" }}
requirements = ["fixture-native"]
user = "fixture"

[[projects.fixture-other.packages]]
name = "fixture-other"
description = "fixture service with fixture-native"
commands = ["fixture-manage"]
"""


def _start_connected(settings: Path, poll: float = 1.0) -> str:
    """``venvdeb buildbot start``, then wait for a worker to connect; the REST API's URL."""
    start = _venvdeb("buildbot", "start", "--settings", str(settings))
    assert start.returncode == 0, start.stderr[-3000:]
    port = next(line.split("= ")[1] for line in settings.read_text().splitlines()
                if line.startswith("web_port"))
    api = f"http://127.0.0.1:{port}/api/v2/"
    deadline = time.monotonic() + 60
    while not any(w.get("connected_to") for w in _get(api, "workers")["workers"]):
        assert time.monotonic() < deadline, "the worker connected"
        time.sleep(poll)
    return api


def _login(api: str, user: tuple[str, str] | None) -> urllib.request.OpenerDirector:
    """A client of the web UI: anonymous (None), or logged in as the UI's login link
    does it (HTTP basic auth on /auth/login, then the session cookie)."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    if user is not None:
        basic = base64.b64encode(":".join(user).encode()).decode()
        login = urllib.request.Request(api.replace("api/v2/", "auth/login"),
                                       headers={"Authorization": f"Basic {basic}"})
        with opener.open(login, timeout=10):
            pass
    return opener


def _try_force(api: str, builder: str, scheduler: str = "force",
               user: tuple[str, str] | None | urllib.request.OpenerDirector = ADMIN,
               ) -> tuple[int, dict[str, object]]:
    """The UI's force button, over the REST API's JSON-RPC, as ``user`` (or in a session
    already logged in): (HTTP status, answer)."""
    ids = {str(b["name"]): b["builderid"] for b in _get(api, "builders")["builders"]}
    body = json.dumps({"jsonrpc": "2.0", "method": "force", "id": 1,
                       "params": {"builderid": ids[builder]}}).encode()
    request = urllib.request.Request(f"{api}forceschedulers/{scheduler}", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        client = user if isinstance(user, urllib.request.OpenerDirector) else _login(api, user)
        with client.open(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _force(api: str, builder: str, scheduler: str = "force") -> None:
    status, answer = _try_force(api, builder, scheduler)
    assert status == 200 and "error" not in answer, answer


def _finished(api: str, builder: str, timeout: float = 900, every: float = 3) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        builds = _get(api, f"builders/{builder}/builds")["builds"]
        if builds and builds[-1].get("complete"):
            return builds[-1]
        time.sleep(every)
    raise AssertionError(f"no finished build of {builder} within {timeout:.0f} s")


def _requirements_repo(project: Project, tmp_path: Path) -> tuple[str, Path, dict[str, str]]:
    """A local repository holding the release's requirement files, like
    openstack/requirements' stable branch; returns its URL and a working clone."""
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    work = tmp_path / "requirements-work"
    shutil.copytree(project.requirements, work)
    for args in (["init", "-q", "-b", f"stable/{RELEASE}"], ["add", "-A"],
                 ["commit", "-q", "-m", "release files"]):
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)
    bare = tmp_path / "requirements.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=env)
    subprocess.run(["git", "remote", "add", "origin", str(bare)], cwd=work, env=env, check=True)
    return f"file://{bare}", work, env


def test_a_constraint_change_rebuilds_only_the_affected_project(project: Project,
                                                                 tmp_path: Path) -> None:
    """A commit to the local requirements repository moves fixture-native 0.1.0 -> 0.2.0:
    the requirements package and fixture-other (whose closure holds fixture-native) are
    rebuilt; fixture-service (whose closure does not) is left alone, and the requirements
    build's log says why for each. An advisory on fixture-native 0.1.0 ([audit]): the
    release's audit builder is red before the update, green after it, and fixture-other's
    changelog names the advisory its rebuild fixes."""
    require_tools("dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare", "mmdebstrap",
                  "reprepro", "gpg", "git")
    from tests.integration.test_venv_fixture import BUILD_PINS, SERVICE
    service_project(project, SERVICE + OTHER)
    url, clone, env = _requirements_repo(project, tmp_path)
    project.write(projects=SERVICE + OTHER, extra_pins=BUILD_PINS,
                  release_extra=f'requirements_git = "{url}"\n'
                                f'requirements_branch = "stable/{RELEASE}"')
    export = tmp_path / "osv"
    export.mkdir()
    (export / "PYSEC-2099-2.json").write_text(json.dumps({
        "id": "PYSEC-2099-2", "details": "test record", "affected": [{
            "package": {"ecosystem": "PyPI", "name": "fixture-native"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"},
                                                         {"fixed": "0.2.0"}]}]}]}))
    project.config.write_text(project.config.read_text() +
                              f'\n[audit]\nadvisories = "{export}"\n')
    # (the first builds need no lintian: only the rebuild is uploaded)
    for args in (["requirements"], ["lock"], ["wheels"], ["reqdeb"],
                 ["build", "fixture-service", "--no-lintian"],
                 ["build", "fixture-other", "--no-lintian"]):
        r = _venvdeb("--config", str(project.config), "--workdir", str(project.workdir), *args,
                     "--release", RELEASE)
        assert r.returncode == 0, r.stderr[-2000:]
    before = {p.name for p in project.workdir.glob("releases/*/*/projects/*/*.deb")}
    settings = _settings(tmp_path, project)
    try:
        api = _start_connected(settings)
        audit_builder = f"audit-{RELEASE}-bookworm"
        _force(api, audit_builder)
        red = _finished(api, audit_builder)
        assert red["results"] == 2, red  # FAILURE: the advisory is open
        steps = _get(api, f"builds/{red['buildid']}/steps")["steps"]
        said = _step_log(api, next(s for s in steps if s["name"] == "audit (advisories)"))
        assert "PYSEC-2099-2" in said and "fixture-native" in said, said[-2000:]
        constraints = clone / "upper-constraints.txt"
        constraints.write_text(constraints.read_text().replace("fixture-native===0.1.0",
                                                               "fixture-native===0.2.0"))
        for args in (["commit", "-q", "-am", "fixture-native 0.2.0"],
                     ["push", "-q", "origin", "HEAD"]):
            subprocess.run(["git", *args], cwd=clone, env=env, check=True, capture_output=True)
        req = _finished(api, f"requirements-{RELEASE}-bookworm")
        steps = _get(api, f"builds/{req['buildid']}/steps")["steps"]
        assert req["results"] == 0, [(s["name"], s["results"]) for s in steps]
        affected = next(s for s in steps if s["name"] == "affected projects")
        logs = _get(api, f"steps/{affected['stepid']}/logs")["logs"]
        with urllib.request.urlopen(f"{api}logs/{logs[0]['logid']}/raw", timeout=10) as r:
            text = r.read().decode()
        assert "rebuild fixture-other" in text and "fixture-native 0.1.0 -> 0.2.0" in text, text
        assert "keep fixture-service" in text, text
        other = _finished(api, f"fixture-other-{RELEASE}-bookworm")
        assert other["results"] == 0
        assert _get(api, f"builders/fixture-service-{RELEASE}-bookworm/builds")["builds"] == []
        _force(api, audit_builder)
        green = _finished(api, audit_builder, every=1)
        while green["number"] == red["number"]:
            time.sleep(1)
            green = _finished(api, audit_builder)
        assert green["results"] == 0, green  # the update fixed it
    finally:
        _venvdeb("buildbot", "stop", "--settings", str(settings))
    after = {p.name for p in project.workdir.glob("releases/*/*/projects/*/*.deb")}
    assert {n for n in after - before if n.startswith("fixture-other")}, "fixture-other rebuilt"
    assert not {n for n in after - before if n.startswith(("fixture-service", "venv-fixture-s"))}
    held = listing(project.workdir / "repo", STAGING)
    assert any(line.startswith("fixture-other deb 90:1.0.0-0+deb12u2") for line in held), held
    [debian_tar] = project.workdir.glob(
        f"releases/{RELEASE}/bookworm/projects/fixture-other/*+deb12u2.debian.tar.xz")
    changelog = subprocess.run(["tar", "-xJOf", str(debian_tar), "debian/changelog"],
                               capture_output=True, text=True, check=True).stdout
    reason = " ".join(changelog.split())
    assert (f"(rebuild-{OTHER_BUILDER}); requirements update (requirements-{RELEASE}-bookworm "
            f"build ") in reason, changelog
    assert ("its closure changed: fixture-native 0.1.0 -> 0.2.0; the update fixes "
            "PYSEC-2099-2 in fixture-native 0.1.0") in reason, changelog


def test_checkconfig_rejects_an_unknown_project(project: Project, tmp_path: Path) -> None:
    service_project(project)
    project.config.write_text(project.config.read_text().replace(
        "[repository]", '[pipeline]\nprojects = ["glance"]\n\n[repository]', 1))
    result = _venvdeb("buildbot", "checkconfig", "--settings", str(_settings(tmp_path, project)))
    assert result.returncode != 0
    assert "pipeline.projects: unknown project 'glance'" in result.stdout + result.stderr


def test_a_worker_lost_mid_build_publishes_nothing(running: Running,
                                                    tmp_path: Path) -> None:
    """Kill the worker while the package builds: the build ends as retried (or failed), the
    repository is untouched."""
    project, api = running.project, running.api
    _force(api, BUILDER)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        builds = _get(api, f"builders/{BUILDER}/builds")["builds"]
        if builds:
            steps = _get(api, f"builds/{builds[-1]['buildid']}/steps")["steps"]
            if any(s["name"] == "build (local)" and s.get("started_at") for s in steps):
                break
        time.sleep(1)
    else:
        raise AssertionError("the build never reached its build step")
    time.sleep(3)
    for pid_file in (running.first / "buildbot-worker" / "twistd.pid",
                     running.second / "buildbot-worker" / "twistd.pid"):
        if pid_file.exists():
            subprocess.run(["kill", "-9", pid_file.read_text().strip()], check=False)
    deadline = time.monotonic() + 120
    first: dict[str, object] = {}
    while time.monotonic() < deadline:
        first = _get(api, f"builders/{BUILDER}/builds")["builds"][0]
        if first.get("complete"):
            break
        time.sleep(1)
    assert first.get("complete") and first["results"] in (2, 4, 5), first  # failure, exception, retry
    assert not (project.workdir / "repo").exists(), "nothing was published"


def _tree(path: Path) -> dict[str, tuple[int, int]]:
    """Every file under path with its size and mtime: {} when path does not exist."""
    return {str(f.relative_to(path)): (f.stat().st_size, f.stat().st_mtime_ns)
            for f in sorted(path.rglob("*")) if f.is_file()} if path.exists() else {}


def test_a_worker_on_an_older_venvdeb_is_refused_before_any_step(project: Project,
                                                                  tmp_path: Path) -> None:
    """A worker whose own venvdeb (its settings' path) is 0.1.0, from before
    --require-code: the build stops at its first step, "venvdeb version", with one line
    naming both versions; no venvdeb subcommand runs there, the repository is untouched.
    On the way, the web UI's authorization: anonymous forces and promotions are refused
    and make no build, a user may force but not promote, an admin may do both; the
    worker's password is on no process's command line and in no log."""
    import venvdeb
    service_project(project)
    settings = _settings(tmp_path, project)
    # venvdeb 0.1.0 as an apt-installed worker would have it: --version answers,
    # anything else leaves a mark and fails as argparse would on --require-code
    old = tmp_path / "old-worker-bin" / "venvdeb"
    old.parent.mkdir()
    old.write_text('#!/bin/sh\nif [ "$1" = "--version" ]; then echo "venvdeb 0.1.0"; exit 0; fi\n'
                   f'touch {old}.used\n'
                   'echo "venvdeb: error: unrecognized arguments: --require-code" >&2\nexit 2\n')
    old.chmod(0o755)
    with settings.open("a") as handle:
        handle.write(f'[[workers]]\nname = "old"\npassword = "{SECRET}"\nvenvdeb = "{old}"\n')
    repo = project.workdir / "repo"
    before = _tree(repo)
    try:
        api = _start_connected(settings, poll=0.5)
        assert (tmp_path / "bb" / "master").stat().st_mode & 0o777 == 0o700, \
            "the master's state (the session cookies' secret) is its own"
        argv = _every_argv()
        assert any(b"buildbot.tac" in a for a in argv), "the master and worker are seen"
        assert not [a for a in argv if SECRET.encode() in a], "a password on a command line"
        for who, scheduler, builder in ((None, "force", BUILDER), (None, "promote", PROMOTE),
                                        (DEV, "promote", PROMOTE)):
            status, answer = _try_force(api, builder, scheduler, who)
            role = "admin" if scheduler == "promote" else "user"
            assert status == 403 and f"you need to have role '{role}'" in str(answer), answer
        assert _get(api, "builds")["builds"] == [] and _get(api, "buildrequests")[
            "buildrequests"] == [], "a refused force makes no build"
        admin = _login(api, ADMIN)
        assert _try_force(api, PROMOTE, "promote", admin)[0] == 200  # an admin may promote ...
        promotion = _finished(api, PROMOTE, timeout=120, every=0.5)
        assert promotion["results"] == 2, "... (stopped here by the old worker's venvdeb)"
        from venvdeb.buildbot import users
        users.set_user(tmp_path / "users.toml", *ADMIN, ())  # ... until the role is taken
        status, answer = _try_force(api, PROMOTE, "promote", admin)
        assert status == 403, f"the same session, no longer admin: {answer}"
        users.set_user(tmp_path / "users.toml", *ADMIN, (users.ADMIN,))
        _force(api, BUILDER)
        build = _finished(api, BUILDER, timeout=120, every=0.5)
        steps = _get(api, f"builds/{build['buildid']}/steps")["steps"]
        summary = [(s["name"], s["results"]) for s in steps]
        assert build["results"] == 2, summary  # failure
        # buildbot's own steps come first: taking the worker and the builder's locks
        ran = [name for name, _ in summary if name not in ("worker_preparation", "locks_acquire")]
        assert ran == ["venvdeb version"], f"no step after the refusal ran: {summary}"
        [version] = [s for s in steps if s["name"] == "venvdeb version"]
        assert version["results"] == 2
        line = (f"worker old runs 'venvdeb 0.1.0'; the master runs venvdeb {venvdeb.__version__} "
                f"(code {venvdeb.code_digest()}): install the same venvdeb on the worker "
                "(apt-get install venvdeb from the repository the master publishes) or run "
                "both from one checkout")
        assert line in str(version["state_string"]), version["state_string"]
        logs = _get(api, f"steps/{version['stepid']}/logs")["logs"]
        with urllib.request.urlopen(f"{api}logs/{logs[0]['logid']}/raw", timeout=10) as r:
            text = r.read().decode()
        assert line in text.splitlines()[-3:], text
    finally:
        _venvdeb("buildbot", "stop", "--settings", str(settings))
    assert not (old.parent / "venvdeb.used").exists(), "only --version ran on the old worker"
    assert _tree(repo) == before, "the repository is untouched"
    logs = [tmp_path / "bb" / "service.log", *tmp_path.glob("bb/*/twistd.log"),
            *tmp_path.glob("bb/workers/*/twistd.log")]
    assert [f for f in logs if f.exists()] and not [
        f for f in logs if f.exists() and SECRET in f.read_text()], "password in a log"


#: a worker password to look for in argv and logs
SECRET = "worker-password-nobody-may-see"


def _every_argv() -> list[bytes]:
    """The command line of every process on the machine, as ps shows them to anyone."""
    out = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            out.append(cmdline.read_bytes())
        except OSError:  # a process that ended meanwhile
            pass
    return out
