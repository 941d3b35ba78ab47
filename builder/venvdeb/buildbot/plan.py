"""What the buildbot master runs, as plain data computed from the config.

``buildbot-master/master.cfg`` turns this into buildbot objects; the tests
compare plans without buildbot. Settings that are not the pipeline's (ports,
workers, paths) come from a TOML file outside git, with working defaults
bound to 127.0.0.1.
"""
from __future__ import annotations

import ipaddress
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from venvdeb import __version__, code_digest
from venvdeb.archive import http
from venvdeb.buildbot import users
from venvdeb.core import allowlist, runner
from venvdeb.core.config import Config
from venvdeb.core.errors import ConfigError
from venvdeb.core.table import Table
from venvdeb.core.workdir import Workdir
from venvdeb.debian import requirements_package

Kind = Literal["requirements", "project", "promote", "audit"]
#: placeholders in a step's argv that factories fill in: the build's reason; the
#: rebuild reason, serial and date the publisher's ledger gave the build's inputs
#: (venvdeb.buildbot.publisher); the build's upload directory on the master; the worker
REASON = "@reason@"
NOTE = "@note@"
ASSIGNED = "@assigned@"
REQUIREMENTS_ASSIGNED = "@requirements-assigned@"
REQUIREMENTS = "requirements_"  # the prefix of the requirements package's properties
INCOMING = "@incoming@"
WORKER = "@worker@"
#: a project build's upload, relative to its worker's build directory
UPLOAD_DIR = "upload"
SETTINGS_ENV = "VENVDEB_BUILDBOT_SETTINGS"
#: the password of the default worker: good on 127.0.0.1 only
DEFAULT_WORKER_PASSWORD = "venvdeb-local"


@dataclass(frozen=True)
class Worker:
    name: str
    password: str
    max_builds: int = 1
    # On a machine set up by apt (the venvdeb package): its own paths, given to
    # the builds it runs as worker properties (see PATH_PROPERTIES)
    venvdeb: Path | None = None
    config: Path | None = None
    workdir: Path | None = None
    #: the unprivileged user a worker started on this machine runs as (its buildbot
    #: directory then in its own workdir); None: as the user who starts it
    user: str | None = None

    def properties(self) -> dict[str, str]:
        own = {"venvdeb": self.venvdeb, "config": self.config, "workdir": self.workdir}
        return {PATH_PROPERTIES[k]: str(v) for k, v in own.items() if v is not None}


#: argv position of each path of a step's common prefix -> the worker property overriding it
PATH_PROPERTIES = {"venvdeb": "venvdeb_path", "config": "venvdeb_config",
                   "workdir": "venvdeb_workdir"}
PATH_POSITIONS = {0: "venvdeb_path", 2: "venvdeb_config", 4: "venvdeb_workdir"}


@dataclass(frozen=True)
class Settings:
    path: Path | None  # the file read, if any
    config: Path  # pipeline.toml
    workdir: Path  # venvdeb --workdir of every build
    basedir: Path  # the master's directory; workers under basedir/../workers/<name>
    venvdeb: Path  # the venvdeb executable the steps run
    users: Path  # who may log in to the web UI (venvdeb.buildbot.users)
    web_host: str = "127.0.0.1"  # the web UI listens here
    web_port: int = 8010
    pb_host: str = "127.0.0.1"  # the worker port listens here
    pb_port: int = 9989
    #: the UI's address as browsers reach it (buildbotURL), e.g. behind a TLS proxy
    web_url: str | None = None
    poll_interval: int = 60
    builder: Literal["local", "sbuild"] = "sbuild"
    nightly_hour: int = 3
    workers: tuple[Worker, ...] = (Worker("local", DEFAULT_WORKER_PASSWORD),)

    @property
    def url(self) -> str:
        """Where browsers reach the UI (buildbot's buildbotURL)."""
        return self.web_url or self.local_url

    @property
    def local_url(self) -> str:
        """Where this machine reaches the UI (venvdeb buildbot status, the tests)."""
        host = http.connect_host(self.web_host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.web_port}/"

    @property
    def pb_address(self) -> str:
        """Where a worker on this machine connects."""
        return http.connect_host(self.pb_host)

    @property
    def web_endpoint(self) -> str:
        return _endpoint(self.web_host, self.web_port)

    @property
    def pb_endpoint(self) -> str:
        return _endpoint(self.pb_host, self.pb_port)

    def worker_dir(self, worker: Worker) -> Path:
        """The worker's buildbot directory: beside the master's, or, for a worker with a
        user of its own, in its own workdir (the master's side is not its to pass)."""
        if worker.user is not None and worker.workdir is not None:
            return worker.workdir / "buildbot-worker"
        return self.basedir.parent / "workers" / worker.name


def _endpoint(host: str, port: int) -> str:
    """A twisted server endpoint listening on ``host`` only (colons escaped)."""
    escaped = host.replace(":", "\\:")
    return f"tcp:{port}:interface={escaped}"


def is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def _address(t: Table, key: str) -> str:
    value = t.string(key, "127.0.0.1")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise t.fail(key, f"expected an IP address to listen on (127.0.0.1, 0.0.0.0, ::1, "
                          f"a machine's own address), got {value!r}") from None
    return value


def load_settings(path: Path | None, checkout: Path) -> Settings:
    """Read the settings file (``$VENVDEB_BUILDBOT_SETTINGS`` or
    ``buildbot-master/settings.toml``); absent keys take their defaults."""
    if path is None:
        env = os.environ.get(SETTINGS_ENV)
        path = Path(env) if env else checkout / "buildbot-master" / "settings.toml"
        if not env and not path.exists():
            path = None
    raw: dict[str, object] = {}
    if path is not None:
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read buildbot settings {path}: {exc}") from None
    t = Table(path or checkout / "buildbot-master/settings.toml", "", raw)
    base = path.parent if path else checkout

    def at(key: str, default: Path) -> Path:
        value = t.string(key, None)
        return (base / os.path.expanduser(value)).resolve() if value else default

    builder = t.string("builder", "sbuild")
    if builder not in ("local", "sbuild"):
        raise t.fail("builder", f"expected 'local' or 'sbuild', got {builder!r}")
    if "host" in raw:
        raise t.fail("host", "replaced by web_host (the web UI) and pb_host (the worker "
                             "port), which default to 127.0.0.1: set each one you need")
    web_url = t.string("web_url", None)
    if web_url is not None and not web_url.startswith(("http://", "https://")):
        raise t.fail("web_url", f"expected an http:// or https:// URL, got {web_url!r}")
    if web_url is not None and not web_url.endswith("/"):
        web_url += "/"
    pb_host = _address(t, "pb_host")
    workers = []
    for wt in t.tables("workers"):
        paths = {k: wt.string(k, None) for k in PATH_PROPERTIES}
        for key, value in paths.items():
            if value is not None and not value.startswith("/"):
                raise wt.fail(key, f"expected an absolute path on the worker's machine, got "
                                   f"{value!r}")
        name = wt.string("name")
        if not users.NAME_RE.fullmatch(name):  # it names the worker's directory too
            raise wt.fail("name", f"expected a name matching {users.NAME_RE.pattern}, "
                                  f"got {name!r}")
        password = wt.string("password")
        if password == DEFAULT_WORKER_PASSWORD and not is_loopback(pb_host):
            raise wt.fail("password", _default_password(pb_host))
        user = wt.string("user", None)
        if user is not None:
            if not allowlist.USER.pattern.fullmatch(user) or user == "root":
                raise wt.fail("user", f"expected an unprivileged user name "
                                      f"({allowlist.USER.what}), got {user!r}")
            if paths["workdir"] is None:
                raise wt.fail("user", f"worker {name} runs as {user}: give it a workdir of "
                                      f"its own (workdir = ...), which {user} owns; the "
                                      f"publisher's holds the key and the repository")
        workers.append(Worker(name, password,
                              wt.get("max_builds", int, 1, "an integer"),
                              **{k: Path(v) if v else None for k, v in paths.items()},
                              user=user))
        wt.done()
    settings = Settings(
        path=path,
        config=at("config", checkout / "pipeline.toml"),
        workdir=at("workdir", checkout / "build"),
        basedir=at("basedir", checkout / "build" / "buildbot" / "master"),
        venvdeb=at("venvdeb", checkout / ".venv" / "bin" / "venvdeb"),
        users=at("users", (base if path else checkout / "buildbot-master") / "users.toml"),
        web_host=_address(t, "web_host"),
        web_port=t.get("web_port", int, 8010, "a port number"),
        pb_host=pb_host,
        pb_port=t.get("pb_port", int, 9989, "a port number"),
        web_url=web_url,
        poll_interval=t.get("poll_interval", int, 60, "seconds"),
        builder=builder,  # type: ignore[arg-type]
        nightly_hour=t.get("nightly_hour", int, 3, "an hour, 0-23"),
        workers=tuple(workers) or (Worker("local", DEFAULT_WORKER_PASSWORD),),
    )
    t.done()
    if not workers and not is_loopback(pb_host):
        raise t.fail("workers", "none given, so the default worker 'local' would take "
                                + _default_password(pb_host))
    names = [w.name for w in settings.workers]
    if len(set(names)) != len(names):
        raise t.fail("workers", f"worker names must be unique, got {', '.join(names)}")
    if workers and path is not None:
        users.check_private(path)  # it holds the workers' passwords
    return settings


def _default_password(pb_host: str) -> str:
    return (f"the default worker password {DEFAULT_WORKER_PASSWORD!r} on pb_host {pb_host} "
            f"(not a loopback address) lets anyone who reaches the worker port run as that "
            f"worker: give every [[workers]] entry a password of its own")


#: the first step of every builder: the worker's venvdeb must be the master's
VERSION_STEP = "venvdeb version"


@dataclass(frozen=True)
class SameVenvdeb:
    """What the "venvdeb version" step expects of the worker's ``venvdeb --version``:
    the master's own version and code digest. A venvdeb older than ``--require-code``
    would only fail mid-build with argparse's "unrecognized arguments"; this refuses
    it before any step changes anything, with one line naming both."""
    version: str
    code: str

    @property
    def line(self) -> str:
        """The master's own ``venvdeb --version`` line."""
        return f"venvdeb {self.version} (code {self.code})"

    def refusal(self, worker: str, path: str, rc: int, stdout: str, stderr: str) -> str | None:
        """None when the worker's ``venvdeb --version`` printed the master's code
        digest; else the line that says why the build stops and what to do."""
        if f"(code {self.code})" in stdout:
            return None
        said = [line.strip() for line in stdout.splitlines() if line.strip()]
        errors = [line.strip() for line in stderr.splitlines() if line.strip()]
        if rc == 0 and said:
            seen = f"runs {said[0]!r}"
        else:
            why = f": {errors[-1]}" if errors else ""
            seen = f"cannot answer '{path} --version' (exit {rc}{why})"
        return (f"worker {worker} {seen}; the master runs {self.line}: install the same "
                f"venvdeb on the worker (apt-get install venvdeb from the repository the "
                f"master publishes) or run both from one checkout")


@dataclass(frozen=True)
class Assignment:
    """What the master's version step needs: whose inputs, and the publisher's ledger."""
    ledger: Path
    release: str
    tag: str
    #: the ledger key the worker must report: exactly this, or (``versioned``) this
    #: followed by an upstream version (a project's ``<project>/<release>/<dist>/<version>``)
    key: str
    versioned: bool
    #: the build properties it reads and sets are named with this prefix
    prefix: str = ""


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    #: "affected": its last output line, ``affected: P1 P2``, names the projects to rebuild;
    #: "version": ``venvdeb --version`` on the worker, which must answer ``expect``;
    #: "inputs": ``venvdeb source --inputs``, its line a build property; "assign": on the
    #: master, the version from the publisher's ledger (``assign``); "upload": the command
    #: makes the upload, which then goes to the master (INCOMING); "accept": on the master;
    #: "audit": exit 3 (an advisory or a blocked license) fails the build, 69 (no advisory
    #: source) warns, and the next step still runs
    kind: Literal["command", "affected", "version", "inputs", "assign", "upload",
                  "accept", "audit"] = "command"
    expect: SameVenvdeb | None = None
    assign: Assignment | None = None
    #: "inputs": the build properties it sets are named with this prefix
    prefix: str = ""


def version_step(settings: Settings) -> Step:
    """The worker's venvdeb (argv[0], which a worker's own path overrides) must
    print the master's version line; no ``--require-code``, which an old one lacks."""
    return Step(VERSION_STEP, (str(settings.venvdeb), "--version"), kind="version",
                expect=SameVenvdeb(__version__, code_digest()))


@dataclass(frozen=True)
class Poller:
    repourl: str
    branch: str


@dataclass(frozen=True)
class BuilderPlan:
    name: str
    kind: Kind
    release: str
    distribution: str
    project: str | None
    steps: tuple[Step, ...]
    poller: Poller | None = None
    #: (project, builder) pairs a requirements build may trigger
    triggers: tuple[tuple[str, str], ...] = ()
    #: the publisher's workdir (the master's): uploads land in its incoming/
    publisher: Path | None = None

    @property
    def change_project(self) -> str:
        """The ``project`` buildbot tags this builder's changes with."""
        return f"{self.project or 'requirements'}/{self.release}/{self.distribution}"


def builder_name(kind: Kind, release: str, distribution: str, project: str | None) -> str:
    if kind == "project":
        return f"{project}-{release}-{distribution}"
    return f"{kind}-{release}-{distribution}"


def plan(config: Config, settings: Settings) -> tuple[BuilderPlan, ...]:
    """One builder per release's requirements package, per (project, release,
    distribution), and a promotion builder per release; with ``[audit]`` configured, a
    (nightly) audit builder per release."""
    # the master's own code digest: a worker running other code refuses every step
    base = (str(settings.venvdeb), "--config", str(settings.config), "--workdir",
            str(settings.workdir), "--require-code", code_digest())
    # ... and every build first asks the worker's venvdeb for its version, so an
    # older one (without --require-code) is refused with a clear line too
    first = version_step(settings)
    publisher = (str(settings.venvdeb), "--config", str(settings.config), "--workdir",
                 str(settings.workdir))
    out = []
    for release_name, release in sorted(config.releases.items()):
        for dist in release.distributions:
            target = ("--release", release_name, "--dist", dist)
            ledger, tag = Workdir(settings.workdir).versions, config.distribution(dist).version_tag
            # the release's lock, wheels and requirements package, in the worker's workdir,
            # the package's version from the publisher's ledger: every worker builds the
            # same bytes (a step with nothing to do says so in a second)
            requirements = (
                Step("lock", (*base, "lock", *target)),
                Step("wheels", (*base, "wheels", *target)),
                Step("requirements inputs", (*base, "reqdeb", *target, "--inputs"),
                     kind="inputs", prefix=REQUIREMENTS),
                Step("requirements version (publisher)", (), kind="assign", assign=Assignment(
                    ledger, release_name, tag,
                    f"{requirements_package.package_name(release_name)}/{dist}",
                    versioned=False, prefix=REQUIREMENTS)),
                Step("requirements package", (*base, "reqdeb", *target, "--assigned",
                                              REQUIREMENTS_ASSIGNED)),
            )
            projects = [p.name for p in config.projects_for(release_name)]
            fetch: tuple[Step, ...] = ()
            req_poller = None
            if release.requirements_git and release.requirements_branch:
                fetch = (Step("requirement files",
                              (*base, "requirements", "--release", release_name)),)
                req_poller = Poller(release.requirements_git, release.requirements_branch)
            out.append(BuilderPlan(
                builder_name("requirements", release_name, dist, None), "requirements",
                release_name, dist, None, (
                    first,
                    *fetch,
                    *requirements,
                    Step("affected projects", (*base, "affected", *target), kind="affected"),
                ), poller=req_poller,
                triggers=tuple((p, builder_name("project", release_name, dist, p))
                               for p in projects)))
            for project in config.projects_for(release_name):
                name = project.name
                ref = project.upstream.ref_for(release_name)
                poller = Poller(project.upstream.git, ref) if project.upstream.git and ref \
                    else None
                assignment = Assignment(ledger, release_name, tag,
                                        f"{name}/{release_name}/{dist}/", versioned=True)
                out.append(BuilderPlan(
                    builder_name("project", release_name, dist, name), "project",
                    release_name, dist, name, (
                        first,
                        *fetch,
                        *requirements,
                        Step("inputs", (*base, "source", name, *target, "--inputs"),
                             kind="inputs"),
                        Step("version (publisher)", (), kind="assign", assign=assignment),
                        Step("source package", (*base, "source", name, *target,
                                                "--reason", NOTE, "--assigned", ASSIGNED)),
                        Step(f"build ({settings.builder})",
                             (*base, "build", name, *target, "--builder", settings.builder,
                              "--no-lintian")),
                        # one step, both at once (venvdeb check); a worker that is not
                        # root lints and leaves the install test to the publisher's accept
                        Step("checks (lintian, install test)", (*base, "check", name, *target)),
                        Step("upload", (*base, "upload", name, *target, "--to", UPLOAD_DIR),
                             kind="upload"),
                        Step("accept into staging", (*publisher, "accept", INCOMING, *target,
                                                     "--uploader", WORKER), kind="accept"),
                    ), poller, publisher=settings.workdir))
            out.append(BuilderPlan(
                builder_name("promote", release_name, dist, None), "promote", release_name,
                dist, None, (first, Step("promote to production", (*base, "promote", *target)))))
            checks = audit_steps(config, base, target)
            if checks:
                out.append(BuilderPlan(builder_name("audit", release_name, dist, None), "audit",
                                       release_name, dist, None, (first, *checks)))
    return tuple(out)


def audit_steps(config: Config, base: tuple[str, ...], target: tuple[str, ...]
                ) -> tuple[Step, ...]:
    """The release's lock as it is now (the requirement files may have moved), then
    each configured check: advisories, and licenses (which read the wheels)."""
    steps = []
    if config.audit.gated:
        steps.append(Step("audit (advisories)", (*base, "audit", *target), kind="audit"))
    if config.audit.blocked_licenses:
        steps += [Step("wheels", (*base, "wheels", *target)),
                  Step("licenses", (*base, "licenses", *target), kind="audit")]
    return (Step("lock", (*base, "lock", *target)), *steps) if steps else ()


def owner(p: BuilderPlan) -> str:
    """The config key a builder's poller comes from."""
    return f"projects.{p.project}" if p.project else f'releases."{p.release}".requirements_git'


def check_sources(plans: tuple[BuilderPlan, ...], log: Path) -> None:
    """Every poller's repository and branch answers now: a master that polls
    nothing forever is worse than a config that does not load."""
    seen: set[Poller] = set()
    for p in plans:
        if p.poller is None or p.poller in seen:
            continue
        seen.add(p.poller)
        result = runner.run(["git", "ls-remote", "--exit-code", "--heads", p.poller.repourl,
                              p.poller.branch], log=log, check=False,
                             env=runner.clean_environment({"GIT_TERMINAL_PROMPT": "0"}),
                             what="git ls-remote")
        if result.returncode != 0:
            raise ConfigError(
                f"{owner(p)}: upstream {p.poller.repourl} has no branch "
                f"{p.poller.branch!r} or cannot be reached (git ls-remote exit "
                f"{result.returncode})", hint="fix upstream.git or upstream.refs in the config",
                log=log)
