"""The ``venvdeb`` command line. Errors are caught here, once."""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from venvdeb import __version__, code_digest, pipeline
from venvdeb.archive import http, nginx
from venvdeb.buildbot import plan as buildbot_plan
from venvdeb.buildbot import service as buildbot_service
from venvdeb.buildbot import users as buildbot_users
from venvdeb.core import config as config_mod
from venvdeb.core import layout, runner
from venvdeb.core.errors import ParityFailed, VenvdebError, host_error
from venvdeb.core.outcome import Outcome
from venvdeb.core.target import (
    Target,
    default_build_jobs,
    default_jobs,
    project_on,
    target,
)
from venvdeb.core.workdir import Workdir
from venvdeb.debian import builders
from venvdeb.stages import (
    affected,
    audit,
    build,
    check,
    lock,
    parity,
    publish,
    reqdeb,
    requirements,
    source,
    tooldeb,
    upload,
    wheels,
)

DESCRIPTION = """\
Ship OpenStack services as Python virtualenvs inside Debian packages.

The pipeline, one stage per command, each resumable (a rerun does only what
is missing) and logged under WORKDIR/logs/<release>/<stage>.log:

  requirements  fetch a release's requirement files from its git branch
           (releases with requirements_git only)
  lock     compile a release's openstack/requirements files with pip-tools
           into a hash-locked set (WORKDIR/releases/<release>/<dist>/lock/)
  wheels   fetch or build a verified wheel for every lock entry and write a
           PEP 503 index and manifest (.../wheelhouse/)
  reqdeb   package that wheel repository as openstack-wheels-<release>,
           built offline (unshare -n) and checked by lintian (.../reqdeb/)
  source   a project's Debian source package: upstream sdist or git as the
           orig tarball, debian/ rendered from debian-templates/venv/
  build    its binary packages: the venv (venv-<project>-<release>, in
           /opt/venvs/<project>-<release>) and the packages named like
           Debian's, built offline by dh-virtualenv (local or sbuild)
  check    lintian and, at once, an install test in a clean mmdebstrap chroot:
           apt-get install, each command run, units, users, directories,
           then apt-get purge leaves nothing behind
  publish  the requirements package and every project's binary and source
           packages, checked, into the signed reprepro repository
           WORKDIR/repo, codename <dist>-<release>-staging
  promote  what staging holds into <dist>-<release> (production)
  pipeline all of the above for the releases and projects in [pipeline];
           --dry-run says what would run, and why, and changes nothing
  tooldeb  venvdeb itself as a Debian package (stdeb), for worker machines
  parity   Debian's packages of projects on one booted node, ours on another:
           what differs (packages, users, /etc, commands, units, ports)
  audit    known vulnerabilities (OSV advisories) in a release's lock and in
           what each project's venv carries
  licenses the licenses the same pins declare; [audit] blocked_licenses
           refuses promotion

Releases, distributions and projects come from one file, pipeline.toml.
"""

EPILOG = """\
examples:
  venvdeb lock --release 2026.1            # closure of the configured projects
  venvdeb lock --release 2026.1 --scope all  # every pin that applies to Python 3.11
  venvdeb wheels --release 2026.1 -j 4
  venvdeb reqdeb --release 2026.1 && dpkg -i build/releases/2026.1/bookworm/reqdeb/*.deb
  venvdeb build keystone --release 2026.1  # venv-keystone-2026.1 and keystone
  venvdeb build keystone --release 2026.1 --builder sbuild --check-reproducible
  venvdeb build keystone --release 2026.1 --dist trixie  # sbuild in a trixie chroot
  venvdeb check keystone --release 2026.1  # lintian + install test in a chroot
  venvdeb publish --release 2026.1         # into bookworm-2026.1-staging
  venvdeb promote --release 2026.1         # staging -> bookworm-2026.1
  venvdeb pipeline                         # what [pipeline] in pipeline.toml says
  venvdeb pipeline --promote keystone      # ... only keystone, up to production
  venvdeb pipeline --dry-run               # what would run, and why; changes nothing
  venvdeb pipeline --dist trixie           # only the releases' trixie builds
  venvdeb parity keystone cloudkitty --release 2026.1  # ours next to Debian's
  venvdeb audit --release 2025.1 --advisories PyPI-osv.zip  # known vulnerabilities
  venvdeb licenses --release 2026.1        # each pin's declared license
"""


def _default_config() -> Path:
    env = os.environ.get("VENVDEB_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / config_mod.DEFAULT_CONFIG
    if local.exists():
        return local
    return layout.data_root() / config_mod.DEFAULT_CONFIG


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@dataclass(frozen=True)
class Arg:
    flags: tuple[str, ...]
    options: dict[str, object] = field(default_factory=dict)


def arg(*flags: str, **options: object) -> Arg:
    return Arg(flags, options)


Handler = Callable[[argparse.Namespace, config_mod.Config, Workdir], list[str]]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    description: str
    args: tuple[Arg, ...]
    run: Handler


RELEASE = (arg("--release", required=True, metavar="R",
               help="OpenStack release, as named in the config (e.g. 2026.1)"),
           arg("--dist", default=None, metavar="D",
               help="distribution (default: the release's first, e.g. bookworm)"))
PROJECT = arg("project", metavar="PROJECT", help="a project of the config, e.g. keystone")
LOCK_TIMEOUT = arg("--lock-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="how long to wait for another run holding the repository (default: 300)")
ASSIGNMENT = (
    arg("--inputs", action="store_true",
        help="only print what the version ledger knows these inputs by, 'inputs: KEY "
             "DIGEST' (for a publisher that assigns versions: buildbot)"),
    arg("--assigned", default=None, metavar="SERIAL:EPOCH",
        help="the serial and date the publisher's ledger gave these inputs, used and "
             "recorded here instead of this workdir's own (buildbot)"))
BUILDER = arg("--builder", choices=builders.BUILDERS, default=None,
              help="local: dpkg-buildpackage on this host as the sandbox user, offline, "
                   "seeing the requirements package's wheels read-only (installs nothing); "
                   "sbuild: a clean chroot of the distribution (default: local for the "
                   "host's own distribution, sbuild for any other, e.g. trixie here)")


def _t(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> Target:
    return target(c, a.release, a.dist, w)


def _one(outcome: Outcome) -> list[str]:
    return outcome.lines()


def _pipeline(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    if a.dry_run:
        plans = pipeline.dry_run(c, w, releases=a.release, projects=a.projects,
                                 promote=a.promote, distributions=a.dist)
        todo = [p for p in plans if p.run]
        lines = [p.line() for p in todo]
        if not todo:
            return ["dry run: nothing to do: every stage is up to date"]
        return lines + [f"dry run: {len(todo)} would run: "
                        + ", ".join(f"{p.stage} {p.subject}" for p in todo)]
    started = time.monotonic()
    result = pipeline.run(c, w, releases=a.release, projects=a.projects, builder=a.builder,
                          jobs=a.jobs, promote=a.promote, build_jobs=a.build_jobs,
                          distributions=a.dist)
    return result.summary() + [f"pipeline: done in {time.monotonic() - started:.0f} s"]


def _publish(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    t = _t(a, c, w)
    names = a.projects or [p.name for p in c.projects_for(a.release, t.distribution.name)
                           if p.name in c.pipeline_projects]
    for name in names:
        project_on(c, name, t)
    return _one(publish.run_publish(c, w, t, names, lock_timeout=a.lock_timeout, tool=a.tool))


def _source(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    t = _t(a, c, w)
    if a.inputs:
        return _one(source.run_inputs(c, w, t, a.project))
    return _one(source.run_source(c, w, t, a.project, reason=a.reason,
                                  assigned=_assigned(a.assigned)))


def _assigned(value: str | None) -> tuple[int, int] | None:
    if not value:
        return None
    serial, _, epoch = value.partition(":")
    if not (serial.isdigit() and epoch.isdigit() and int(serial) > 0):
        raise VenvdebError(f"--assigned {value!r}: expected SERIAL:EPOCH, two integers (the "
                           f"publisher's ledger gives them)")
    return int(serial), int(epoch)


def _reqdeb(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    t = _t(a, c, w)
    if a.inputs:
        return _one(reqdeb.run_inputs(c, w, t))
    return _one(reqdeb.run_reqdeb(c, w, t, force=a.force, lintian=not a.no_lintian,
                                  assigned=_assigned(a.assigned)))


def _accept(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    if not buildbot_users.NAME_RE.fullmatch(a.uploader):
        raise VenvdebError(f"--uploader {a.uploader!r}: expected a worker name matching "
                           f"{buildbot_users.NAME_RE.pattern}")
    return _one(publish.run_accept(c, w, _t(a, c, w), a.upload, uploader=a.uploader,
                                   lock_timeout=a.lock_timeout))


def _affected(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    t = _t(a, c, w)
    names = a.projects or [p.name for p in c.projects_for(a.release, t.distribution.name)]
    for name in names:
        project_on(c, name, t)
    return _one(affected.run_affected(c, w, t, names))


def _print_report(as_json: bool, json_text: str, table: list[str], notes: list[str],
            saved: Path) -> None:
    """A report's table (or its JSON) on stdout, its notes and summary after it (on
    stderr with JSON); the last line says where it was saved."""
    if as_json:
        print(json_text, end="")
    else:
        for line in table:
            print(line)
    for line in [*notes[:-1], f"{notes[-1]}; report: {saved}"]:
        print(line, file=sys.stderr if as_json else sys.stdout)


def _audit(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    report, saved = audit.run_audit(c, w, _t(a, c, w), a.projects, a.advisories, a.online)
    _print_report(a.json, report.as_json(), report.table(), [*report.notes(), report.summary()], saved)
    if report.open:
        raise audit.refusal(report)
    return []


def _licenses(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    report, saved = audit.run_licenses(c, w, _t(a, c, w), a.projects)
    # every pin with --all; else each license with its count, then the blocked pins
    table = report.table() if a.all else [*report.count_table(), *report.table(report.blocked)]
    _print_report(a.json, report.as_json(), table, [*report.notes(), report.summary()], saved)
    if report.blocked:
        raise audit.licenses_refusal(report)
    return []


def _parity(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    documented = a.documented or layout.data_root() / "docs" / "parity.md"
    result = parity.run_parity(c, w, _t(a, c, w), a.projects, documented, files=a.files,
                               fresh=a.fresh)
    for line in result.lines():
        print(line)
    if a.markdown:
        print("\n".join(parity.markdown(result.undocumented)))
    if result.undocumented:
        missing = result.undocumented
        raise ParityFailed(
            f"{len(missing)} difference{'s' if len(missing) != 1 else ''} from Debian "
            f"{'are' if len(missing) != 1 else 'is'} not documented: "
            + "; ".join(f"{r.project} {r.aspect} {r.item} ({r.debian} / {r.ours})"
                        for r in missing[:5]) + (" ..." if len(missing) > 5 else ""),
            hint=f"close them in the packaging, or list each with its reason in {documented} "
                 f"(--markdown prints the rows to fill in)")
    return []


def _buildbot(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    site = buildbot_plan.load_settings(a.settings, layout.data_root())
    if a.action == "checkconfig":
        return [buildbot_service.checkconfig(site)]
    if a.action == "start":
        lines = buildbot_service.start(site)
        buildbot_service.wait_for_master(site)
        return lines
    if a.action == "stop":
        return buildbot_service.stop(site)
    if a.action == "passwd":
        return [_passwd(site.users, a.user, a.admin)]
    return buildbot_service.status(site)


def _serve(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
    instance = http.Instance(w.root)
    at = http.listen(a.listen) if a.listen else \
        nginx.last_listen(instance) or http.listen(http.DEFAULT_LISTEN)
    if a.action == "config":
        return [http.site_conf(instance.repo, at)]
    if a.action == "start":
        return nginx.start(instance, at, c.repository.url)
    if a.action == "stop":
        return nginx.stop(instance)
    return nginx.status(instance, at, c.repository.url)


def _passwd(path: Path, name: str | None, admin: bool) -> str:
    """Add or change a web UI user; the password comes from stdin (a terminal: asked
    twice), never from the command line, which every user of the machine can read."""
    if not name:
        raise VenvdebError("venvdeb buildbot passwd needs --user NAME")
    if sys.stdin.isatty():
        import getpass
        password = getpass.getpass(f"password for {name}: ")
        if getpass.getpass("again: ") != password:
            raise VenvdebError("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\n")
    roles = (buildbot_users.ADMIN,) if admin else ()
    buildbot_users.set_user(path, name, password, roles)
    return (f"{path}: {name} may log in to the web UI"
            + (" as an admin (promote, stop, cancel)" if admin else " and force builds")
            + "; a running master applies it at the next login")


COMMANDS: tuple[Command, ...] = (
    Command("requirements", "fetch a release's requirement files from git",
            "For a release with requirements_git and requirements_branch in the config "
            "(openstack/requirements or a local repository holding the release's files): fetch "
            "upper-constraints.txt, global-requirements.txt and denylist.txt into "
            "WORKDIR/releases/<release>/requirements/, which lock then reads. Other releases "
            "read requirements_dir.",
            (arg("--release", required=True, metavar="R"),),
            lambda a, c, w: _one(requirements.run_requirements(c, w, a.release))),
    Command("lock", "compile a release into a hash-locked set",
            "Compile the release's upper-constraints (deny-list applied, markers evaluated for "
            "the target Python) with pip-tools --generate-hashes into lock.txt.",
            (*RELEASE,
             arg("--scope", choices=config_mod.SCOPES, default=None,
                 help="all: every pin for the target; projects: the closure of the "
                      "configured projects (default: the release's scope in the config)"),
             arg("--force", action="store_true", help="recompile even if up to date")),
            lambda a, c, w: _one(lock.run_lock(c, w, _t(a, c, w), scope=a.scope,
                                               force=a.force))),
    Command("wheels", "fetch or build a wheel for every lock entry",
            "Download binary wheels usable on the target, build sdist-only entries on the "
            "host, verify every file against the lock and write the simple index and manifest.",
            (*RELEASE, arg("-j", "--jobs", type=int, default=default_jobs(),
                           help="parallel sdist builds (default: the number of cores)")),
            lambda a, c, w: _one(wheels.run_wheels(c, w, _t(a, c, w), jobs=a.jobs))),
    Command("reqdeb", "build the release's wheel repository package",
            "Render debian/ from debian-templates/requirements/ and build "
            "openstack-wheels-<release> offline, then lintian it.",
            (*RELEASE, arg("--force", action="store_true", help="rebuild even if the .deb exists"),
             arg("--no-lintian", action="store_true", help="skip lintian (not for publishing)"),
             *ASSIGNMENT),
            _reqdeb),
    Command("source", "make a project's Debian source package (.dsc)",
            "Fetch the project's upstream (the index's sdist at the pinned version, or git), "
            "resolve its closure in the release's wheel repository, render debian/ from "
            "debian-templates/venv/ and run dpkg-source -b.",
            (PROJECT, *RELEASE,
             arg("--reason", default="", metavar="TEXT",
                 help="why (e.g. the upstream commit); written into the changelog of a new "
                      "version, recorded with it in the version ledger"),
             *ASSIGNMENT),
            _source),
    Command("affected", "which projects a new requirements package rebuilds",
            "For each project of the release (or those named), plan its source package against "
            "the current lock and wheels and compare it with its last build: rebuild when its "
            "closure, upstream or packaging changed, and say which wheels changed. A query: it "
            "changes no version. The last line, 'affected: P1 P2', is for scripts (buildbot).",
            (arg("projects", nargs="*", metavar="PROJECT"), *RELEASE,
             arg("--reason", default="", metavar="TEXT",
                 help="accepted for older scripts and ignored: the rebuild's 'venvdeb source "
                      "--reason' records why")),
            _affected),
    Command("audit", "known vulnerabilities in a release's pins",
            "Check the release's lock (every pin the requirements package holds) and each "
            "built project's closure (the wheels its venv installs) against OSV advisories: "
            "a directory or zip of OSV JSON records, as osv.dev and the PyPA advisory "
            "database publish them (read offline; fetch the export where the network "
            "reaches it). With PROJECT names, only their closures. Prints a table (package, "
            "pin, advisory, fixed in, the packages that carry it), or JSON with --json, and "
            "writes audit.md and audit.json beside the lock. With --online (or [audit] "
            "online = true), osv.dev is asked through pip-audit instead. Exits 0 when no "
            "advisory applies, 3 when some do, 69 when no advisory source was given or "
            "the online service cannot be reached.",
            (arg("projects", nargs="*", metavar="PROJECT"), *RELEASE,
             arg("--advisories", type=Path, default=None, metavar="PATH",
                 help="an OSV export: a directory or zip of OSV JSON records (e.g. "
                      "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip)"),
             arg("--online", action="store_true",
                 help="ask osv.dev through pip-audit instead (where the network reaches "
                      "api.osv.dev; unreachable: exit 69)"),
             arg("--json", action="store_true",
                 help="print the findings as JSON on stdout (the summary on stderr)")),
            _audit),
    Command("licenses", "the licenses a release's pins declare",
            "Read the license each pin of the release's lock (or, with PROJECT names, of their "
            "closures) declares in its wheel's metadata: License-Expression (PEP 639) first, "
            "then a short License field, then the license classifiers. Prints each license "
            "with how many pins declare it, then the pins whose license [audit] "
            "blocked_licenses blocks (a pin is blocked when every choice its expression "
            "allows takes a blocked license; case is ignored; an undeclared license is "
            "reported, never blocked); --all prints every pin, --json all as JSON. Writes "
            "licenses.md and licenses.json beside the lock. Exits 0, or 3 when a pin is "
            "blocked; with blocked_licenses set, 'venvdeb promote' is refused then too.",
            (arg("projects", nargs="*", metavar="PROJECT"), *RELEASE,
             arg("--all", action="store_true", help="every pin with its license and carriers"),
             arg("--json", action="store_true",
                 help="print every pin as JSON on stdout (the summary on stderr)")),
            _licenses),
    Command("build", "build a project's binary packages",
            "Make the source package, then build the venv package and the Debian-named "
            "packages offline with dh-virtualenv, and lintian them.",
            (PROJECT, *RELEASE, BUILDER,
             arg("--check-reproducible", action="store_true",
                 help="build twice in different directories and compare the packages"),
             arg("--no-lintian", action="store_true", help="skip lintian (not for publishing)")),
            lambda a, c, w: _one(build.run_build(c, w, _t(a, c, w), a.project, builder=a.builder,
                                                 check_reproducible=a.check_reproducible,
                                                 lintian=not a.no_lintian))),
    Command("check", "lintian and an install test in a clean chroot",
            "lintian the project's packages (unless they passed at build time) and, at the "
            "same time (as root; their logs apart), in a clean chroot made by mmdebstrap "
            "(cached in ~/.cache/venvdeb/chroot): apt-get install of its distribution-named "
            "packages, each command run (--version "
            "or the config's smoke arguments), units pointing into the venv, users and "
            "directories, then apt-get purge and a search for leftovers. Results are recorded "
            "per file; publish requires them.",
            (PROJECT, *RELEASE,
             arg("--force", action="store_true", help="check again even if already passed"),
             arg("--refresh-chroot", action="store_true",
                 help="make the cached chroot tarball again (new Debian updates)"),
             arg("--only", choices=("lintian", "install"), default=None,
                 help="run one of the two checks (install needs lintian passed)")),
            lambda a, c, w: _one(check.run_check(c, w, _t(a, c, w), a.project, force=a.force,
                                                 refresh_chroot=a.refresh_chroot,
                                                 only=a.only))),
    Command("publish", "publish a release into the signed repository",
            "Put the release's requirements package and the binary and source packages of the "
            "projects into WORKDIR/repo (reprepro, signed; the key is made on first use unless "
            "[repository] signing_key names one), codename <dist>-<release>-staging. Only files "
            "that passed lintian and the install test; never an older version or the same "
            "version with other content. All or nothing: a failed run leaves the repository as "
            "it was. Writes WORKDIR/repo/sources/<codename>.sources for nodes and appends to "
            "WORKDIR/repo/venvdeb/history.",
            (*RELEASE, arg("projects", nargs="*", metavar="PROJECT",
                           help="projects to publish (default: [pipeline] projects)"),
             arg("--tool", action="store_true",
                 help="also publish the venvdeb package ('venvdeb tooldeb' made and checked it)"),
             LOCK_TIMEOUT),
            _publish),
    Command("upload", "a project's checked build, as one upload for the publisher",
            "Copy the project's last build into one directory (default WORKDIR/releases/"
            "<release>/<dist>/uploads/<project>/, emptied first): its .changes and .dsc with "
            "every file they list, the release's requirements package likewise, and "
            "venvdeb-checks.json, the lintian and install-test results of each .deb. Refused "
            "unless every .deb passed both. A build machine without the signing key hands "
            "this to the publisher (buildbot uploads it to the master), whose 'venvdeb "
            "accept' verifies and publishes it.",
            (PROJECT, *RELEASE,
             arg("--to", type=Path, default=None, metavar="DIR",
                 help="where to put the upload (emptied first)")),
            lambda a, c, w: _one(upload.run_upload(c, w, _t(a, c, w), a.project, a.to))),
    Command("accept", "verify an upload and publish it into staging (the publisher)",
            "The publisher's side of 'venvdeb upload': verify the upload in DIR whole (every "
            "file its .changes and .dsc files list, with their sizes and sha256, nothing "
            "else; every .deb of the version its .changes says and passed lintian and the "
            "install test on the worker; the .changes for this distribution), then publish "
            "it into <dist>-<release>-staging all or nothing, as 'venvdeb publish' does, and "
            "record the check results in this workdir. A rejected upload changes nothing and "
            "says why in one line; an upload under WORKDIR/incoming/ is removed once "
            "published.",
            (arg("upload", type=Path, metavar="DIR", help="the upload directory"), *RELEASE,
             arg("--uploader", required=True, metavar="NAME",
                 help="who uploaded it (the buildbot worker), for the repository's history"),
             LOCK_TIMEOUT),
            _accept),
    Command("promote", "copy a release from staging to production",
            "Copy what <dist>-<release>-staging holds (it all passed the checks) into "
            "<dist>-<release>, and record what was promoted, when, and from which publication "
            "in WORKDIR/repo/venvdeb/history. With [audit] advisories in the config, the "
            "release's pins are audited first (as 'venvdeb audit'): an open advisory, not "
            "waived for the release ([[audit.waivers]]), refuses the promotion.",
            (*RELEASE, LOCK_TIMEOUT,
             arg("--allow-stale-audit", default=None, metavar="YYYY-MM-DD",
                 help="when [audit] advisories is configured but cannot be read: promote on "
                      "the strength of the last saved audit, which must be of this date and "
                      "have found nothing open")),
            lambda a, c, w: _one(publish.run_promote(c, w, _t(a, c, w),
                                                     lock_timeout=a.lock_timeout,
                                                     allow_stale_audit=a.allow_stale_audit))),
    Command("tooldeb", "venvdeb itself as a Debian package (for workers)",
            "Make venvdeb's own source and binary package with stdeb from this git checkout "
            "(WORKDIR/tool/<dist>/): it depends on Debian's packages for the tools venvdeb "
            "drives and brings pip-tools (which Debian lacks) in venvdeb/_vendor, pinned by hash "
            "in debian-templates/tool/vendor.txt. Then lintian, and an install test in a clean "
            "chroot (apt-get install venvdeb; venvdeb --help and the vendored pip-compile run; "
            "purge). 'venvdeb publish --tool' publishes it.",
            (arg("--dist", default=None, metavar="D",
                 help="distribution (default: the config's first, e.g. bookworm)"),
             arg("--force", action="store_true", help="build and check again"),
             arg("--refresh-chroot", action="store_true",
                 help="make the install test's chroot tarball again")),
            lambda a, c, w: _one(tooldeb.run_tooldeb(c, w, a.dist, force=a.force,
                                                     refresh_chroot=a.refresh_chroot))),
    Command("parity", "compare our packages with Debian's on booted nodes",
            "Install Debian's own packages of the projects (the names in pipeline.toml, from "
            "the distribution's mirror) on one booted node (systemd as PID 1, see "
            "venvdeb.qa.node) and ours (the project's last build in the workdir) on another, "
            "every project on the same two nodes, then compare what each shows: the binary "
            "packages of the project's source, its users and groups, its files under /etc "
            "(kind, owner, group, mode), its commands in /usr/bin, its units with their "
            "enabled and active state after the install, and the TCP ports listening (and the "
            "unit listening). Prints one table, each row 'same', 'documented' (listed with its "
            "reason in docs/parity.md) or 'NOT DOCUMENTED'; exits non-zero if any difference "
            "is not documented. Needs the projects built ('venvdeb build') and the network to "
            "Debian's mirror; takes a few minutes.",
            (arg("projects", nargs="+", metavar="PROJECT",
                 help="projects of the config, compared together on the same two nodes"),
             *RELEASE,
             arg("--documented", type=Path, default=None, metavar="FILE",
                 help="the documented differences (default: docs/parity.md of the checkout)"),
             arg("--markdown", action="store_true",
                 help="also print the undocumented differences as rows of that file's table"),
             arg("--fresh", action="store_true",
                 help="boot Debian's node even if the same Debian packages (apt's plan: names "
                      "and versions) were measured before by the same code; such facts are "
                      "otherwise kept in ~/.cache/venvdeb/parity/"),
             arg("--files", action="store_true",
                 help="no nodes: compare the packages' files only (Debian's by apt-get "
                      "download, ours from the workdir): packages, /etc, /usr/bin, units "
                      "shipped; for projects a node cannot run, such as nova (its compute "
                      "side pulls libvirt and qemu)")),
            _parity),
    Command("buildbot", "run the buildbot master and workers on this machine",
            "start: check the config, create the master (default build/buildbot/master) and "
            "each worker of the settings if needed, and start them; the web UI is on "
            "127.0.0.1:8010 unless the settings say otherwise (web_host, web_port; the worker "
            "port: pb_host, pb_port). stop, status, checkconfig "
            "(buildbot checkconfig of buildbot-master/master.cfg). passwd --user NAME "
            "[--admin]: add a web UI user or change one, reading the password from stdin, "
            "into the settings' users file (default users.toml beside them). Anyone may "
            "view; users may force builds; only admins may promote, stop or cancel. "
            "Settings: --settings, "
            "$VENVDEB_BUILDBOT_SETTINGS or buildbot-master/settings.toml (see "
            "buildbot-master/settings.toml.example); builders, pollers and schedulers come from "
            "the pipeline config.",
            (arg("action", choices=("start", "stop", "status", "checkconfig", "passwd")),
             arg("--settings", type=Path, default=None, metavar="FILE",
                 help="buildbot settings (TOML)"),
             arg("--user", default=None, metavar="NAME", help="passwd: the user to add or change"),
             arg("--admin", action="store_true",
                 help="passwd: give the admin role (promote, stop, cancel)")),
            _buildbot),
    Command("serve", "serve the repository to nodes over HTTP (nginx)",
            "start: run venvdeb's own nginx (Debian's nginx package; config, pid and logs in "
            "WORKDIR/http/, workers as www-data) serving WORKDIR/repo read-only: dists/, pool/, "
            "sources/ and the keyring, GET and HEAD only, never conf/, db/ or venvdeb/. Nodes "
            "then use http://ADDRESS:PORT: set that as url under [repository] in pipeline.toml, "
            "and the node lines the pipeline prints and WORKDIR/repo/sources/*.sources (from "
            "the next publish) use it. Every directory above the repository must let www-data "
            "pass (start says what to chmod). Starting again is harmless (a changed --listen "
            "reloads). stop: stop that nginx only. status: its URL and whether it answers. "
            "config: print the same server as a site for a system-wide nginx "
            "(/etc/nginx/sites-available/venvdeb).",
            (arg("action", choices=("start", "stop", "status", "config")),
             arg("--listen", default=None, metavar="IP:PORT",
                 help=f"address and port to listen on (default: the last start's, else "
                      f"{http.DEFAULT_LISTEN}: this machine only; nodes elsewhere need "
                      f"0.0.0.0:PORT or this machine's address)")),
            _serve),
    Command("pipeline", "every stage, from requirements to the repository",
            "Run every stage for the given releases (default: [pipeline] releases in the "
            "config): lock, wheels, reqdeb, then build and check of each project, publish to "
            "staging and, with --promote, production. Up-to-date stages are skipped and said "
            "so; an interrupted run resumes. Ends with a table of the packages and the lines a "
            "node needs. --dry-run plans the same stages and says which would run and why, "
            "changing nothing in the workdir.",
            (arg("projects", nargs="*", metavar="PROJECT",
                 help="projects to build (default: [pipeline] projects)"),
             arg("--release", action="append", metavar="R",
                 help="limit to this release (repeatable)"),
             arg("--dist", action="append", metavar="D",
                 help="limit to this distribution (repeatable; default: every distribution "
                      "of each release, e.g. bookworm and trixie)"),
             arg("--promote", action="store_true",
                 help="also promote to production after publishing to staging"),
             arg("--dry-run", action="store_true",
                 help="say what would run and why; build, check and publish nothing"),
             arg("--builder", choices=builders.BUILDERS, default=None,
                 help="how project packages are built (default: local for the host's own "
                      "distribution, sbuild for any other)"),
             arg("-j", "--jobs", type=int, default=default_jobs()),
             arg("--build-jobs", type=int, default=default_build_jobs(), metavar="N",
                 help="projects built and checked at once (default: half the cores, at least "
                      "1: each build already uses every core for uv and bytecode)")),
            _pipeline),
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="venvdeb", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version",
                   version=f"venvdeb {__version__} (code {code_digest()})")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="pipeline config (default: $VENVDEB_CONFIG, ./pipeline.toml, "
                        "or the checkout's pipeline.toml)")
    p.add_argument("--workdir", type=Path, default=Path("build"), metavar="DIR",
                   help="where every output goes (default: build/)")
    p.add_argument("--require-code", default=None, metavar="DIGEST",
                   help="refuse to run unless this venvdeb's code digest (venvdeb --version) "
                        "is DIGEST: a buildbot master passes its own to every worker step")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        s = sub.add_parser(command.name, help=command.help, description=command.description)
        for a in command.args:
            s.add_argument(*a.flags, **a.options)  # type: ignore[arg-type]
    return p


def _report(exc: VenvdebError) -> int:
    """Print ``exc`` as one line (message; hint (log: path)); its exit code."""
    line = f"venvdeb: error: {exc.message}"
    if exc.hint:
        line += f"; {exc.hint}"
    if exc.log:
        line += f" (log: {_relative(exc.log)})"
    print(line, file=sys.stderr)
    return exc.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    runner.interrupt_on_sigterm()
    try:
        if args.require_code and args.require_code != code_digest():
            raise VenvdebError(
                f"this is venvdeb {__version__} (code {code_digest()}), but the buildbot master "
                f"runs code {args.require_code}: master and workers must run the same venvdeb",
                hint="upgrade venvdeb on this worker (apt-get install venvdeb from the "
                     "repository the master publishes) or run the master from the same checkout")
        cfg = config_mod.load(args.config or _default_config())
        work = Workdir(args.workdir.resolve())
        handler = next(c.run for c in COMMANDS if c.name == args.command)
        lines = handler(args, cfg, work)
    except VenvdebError as exc:
        return _report(exc)
    except OSError as exc:  # the host refused: a full, read-only or missing filesystem
        return _report(host_error(exc, args.workdir))
    except KeyboardInterrupt:
        print("venvdeb: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    try:
        for line in lines:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:  # `venvdeb serve config | head`: the reader had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
