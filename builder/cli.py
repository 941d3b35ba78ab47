"""The ``venvdeb`` command line. Errors are caught here, once."""
from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from builder import (
    __version__,
    affected,
    archive,
    buildbot_plan,
    buildbot_service,
    check,
    debbuild,
    layout,
    pipeline,
    stages,
    tooldeb,
)
from builder import config as config_mod
from builder.errors import ConfigError, VenvdebError
from builder.workdir import Workdir

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
  check    lintian, then an install test in a clean mmdebstrap chroot:
           apt-get install, each command run, units, users, directories,
           then apt-get purge leaves nothing behind
  publish  the requirements package and every project's binary and source
           packages, checked, into the signed reprepro repository
           WORKDIR/repo, codename <dist>-<release>-staging
  promote  what staging holds into <dist>-<release> (production)
  pipeline all of the above for the releases and projects in [pipeline]
  tooldeb  venvdeb itself as a Debian package (stdeb), for worker machines

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
  venvdeb check keystone --release 2026.1  # lintian + install test in a chroot
  venvdeb publish --release 2026.1         # into bookworm-2026.1-staging
  venvdeb promote --release 2026.1         # staging -> bookworm-2026.1
  venvdeb pipeline                         # what [pipeline] in pipeline.toml says
  venvdeb pipeline --promote keystone      # ... only keystone, up to production
"""


#: stage lines the pipeline already said on stderr; stdout gets the summary
STAGE_PREFIXES = ("lock:", "wheels:", "reqdeb:", "build:", "check:", "tooldeb:", "publish:",
                  "promote:")


def _default_config() -> Path:
    env = os.environ.get("VENVDEB_CONFIG")
    if env:
        return Path(env)
    local = Path.cwd() / config_mod.DEFAULT_CONFIG
    if local.exists():
        return local
    return layout.data_root() / config_mod.DEFAULT_CONFIG


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="venvdeb", description=DESCRIPTION, epilog=EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"venvdeb {__version__}")
    p.add_argument("--config", type=Path, default=None, metavar="FILE",
                   help="pipeline config (default: $VENVDEB_CONFIG, ./pipeline.toml, "
                        "or the checkout's pipeline.toml)")
    p.add_argument("--workdir", type=Path, default=Path("build"), metavar="DIR",
                   help="where every output goes (default: build/)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target_args(s: argparse.ArgumentParser, *, required: bool = True) -> None:
        s.add_argument("--release", required=required, metavar="R",
                       help="OpenStack release, as named in the config (e.g. 2026.1)")
        s.add_argument("--dist", default=None, metavar="D",
                       help="distribution (default: the release's first, e.g. bookworm)")

    s = sub.add_parser("requirements", help="fetch a release's requirement files from git",
                       description="For a release with requirements_git and "
                                   "requirements_branch in the config (openstack/requirements or "
                                   "a local repository holding the release's files): fetch "
                                   "upper-constraints.txt, global-requirements.txt and "
                                   "denylist.txt into WORKDIR/releases/<release>/requirements/, "
                                   "which lock then reads. Other releases read requirements_dir.")
    s.add_argument("--release", required=True, metavar="R")

    s = sub.add_parser("lock", help="compile a release into a hash-locked set",
                       description="Compile the release's upper-constraints (deny-list applied, "
                                   "markers evaluated for the target Python) with pip-tools "
                                   "--generate-hashes into lock.txt.")
    target_args(s)
    s.add_argument("--scope", choices=config_mod.SCOPES, default=None,
                   help="all: every pin for the target; projects: the closure of the "
                        "configured projects (default: the release's scope in the config)")
    s.add_argument("--force", action="store_true", help="recompile even if up to date")

    s = sub.add_parser("wheels", help="fetch or build a wheel for every lock entry",
                       description="Download binary wheels usable on the target, build "
                                   "sdist-only entries on the host, verify every file against "
                                   "the lock and write the simple index and manifest.")
    target_args(s)
    s.add_argument("-j", "--jobs", type=int, default=stages.default_jobs(),
                   help="parallel sdist builds (default: the number of cores)")

    s = sub.add_parser("reqdeb", help="build the release's wheel repository package",
                       description="Render debian/ from debian-templates/requirements/ and "
                                   "build openstack-wheels-<release> offline, then lintian it.")
    target_args(s)
    s.add_argument("--force", action="store_true", help="rebuild even if the .deb exists")
    s.add_argument("--no-lintian", action="store_true", help="skip lintian (not for publishing)")

    s = sub.add_parser("source", help="make a project's Debian source package (.dsc)",
                       description="Fetch the project's upstream (the index's sdist at the "
                                   "pinned version, or git), resolve its closure in the "
                                   "release's wheel repository, render debian/ from "
                                   "debian-templates/venv/ and run dpkg-source -b.")
    s.add_argument("project", metavar="PROJECT", help="a project of the config, e.g. keystone")
    target_args(s)

    s.add_argument("--reason", default="", metavar="TEXT",
                   help="why (e.g. the upstream commit); written into the changelog of a new "
                        "version, recorded with it in the version ledger")

    s = sub.add_parser("affected", help="which projects a new requirements package rebuilds",
                       description="For each project of the release (or those named), compute "
                                   "its source package against the current lock and wheels and "
                                   "compare it with its last build: rebuild when its closure, "
                                   "upstream or packaging changed, and say which wheels changed. "
                                   "The last line, 'affected: P1 P2', is for scripts (buildbot).")
    s.add_argument("projects", nargs="*", metavar="PROJECT")
    target_args(s)
    s.add_argument("--reason", default="", metavar="TEXT",
                   help="recorded with a new version (its changelog says it)")

    s = sub.add_parser("build", help="build a project's binary packages",
                       description="Make the source package, then build the venv package and "
                                   "the Debian-named packages offline with dh-virtualenv, and "
                                   "lintian them.")
    s.add_argument("project", metavar="PROJECT", help="a project of the config, e.g. keystone")
    target_args(s)
    s.add_argument("--builder", choices=debbuild.BUILDERS, default="local",
                   help="local: dpkg-buildpackage in unshare -n on this host (installs the "
                        "requirements package); sbuild: a clean chroot (default: local)")
    s.add_argument("--check-reproducible", action="store_true",
                   help="build twice in different directories and compare the packages")
    s.add_argument("--no-lintian", action="store_true", help="skip lintian (not for publishing)")

    s = sub.add_parser("check", help="lintian and an install test in a clean chroot",
                       description="lintian the project's packages (unless they passed at "
                                   "build time), then in a clean bookworm chroot made by "
                                   "mmdebstrap (cached in ~/.cache/venvdeb/chroot): apt-get "
                                   "install of its distribution-named packages, each command "
                                   "run (--version or the config's smoke arguments), units "
                                   "pointing into the venv, users and directories, then "
                                   "apt-get purge and a search for leftovers. Results are "
                                   "recorded per file; publish requires them.")
    s.add_argument("project", metavar="PROJECT", help="a project of the config, e.g. keystone")
    target_args(s)
    s.add_argument("--force", action="store_true", help="check again even if already passed")
    s.add_argument("--refresh-chroot", action="store_true",
                   help="make the cached chroot tarball again (new Debian updates)")
    s.add_argument("--only", choices=("lintian", "install"), default=None,
                   help="run one of the two checks (install needs lintian passed)")

    def lock_arg(s: argparse.ArgumentParser) -> None:
        s.add_argument("--lock-timeout", type=float, default=300.0, metavar="SECONDS",
                       help="how long to wait for another run holding the repository "
                            "(default: 300)")

    s = sub.add_parser("publish", help="publish a release into the signed repository",
                       description="Put the release's requirements package and the binary and "
                                   "source packages of the projects into WORKDIR/repo (reprepro, "
                                   "signed; the key is made on first use unless [repository] "
                                   "signing_key names one), codename <dist>-<release>-staging. "
                                   "Only files that passed lintian and the install test; never "
                                   "an older version or the same version with other content. "
                                   "All or nothing: a failed run leaves the repository as it "
                                   "was. Writes WORKDIR/repo/sources/<codename>.sources for "
                                   "nodes and appends to WORKDIR/repo/venvdeb/history.")
    target_args(s)
    s.add_argument("projects", nargs="*", metavar="PROJECT",
                   help="projects to publish (default: [pipeline] projects)")
    s.add_argument("--tool", action="store_true",
                   help="also publish the venvdeb package ('venvdeb tooldeb' made and checked it)")
    lock_arg(s)

    s = sub.add_parser("promote", help="copy a release from staging to production",
                       description="Copy what <dist>-<release>-staging holds (it all passed "
                                   "the checks) into <dist>-<release>, and record what was "
                                   "promoted, when, and from which publication in "
                                   "WORKDIR/repo/venvdeb/history.")
    target_args(s)
    lock_arg(s)

    s = sub.add_parser("tooldeb", help="venvdeb itself as a Debian package (for workers)",
                       description="Make venvdeb's own source and binary package with stdeb from "
                                   "this git checkout (WORKDIR/tool/<dist>/): it depends on "
                                   "Debian's packages for the tools venvdeb drives and brings "
                                   "pip-tools (which Debian lacks) in builder/_vendor, pinned "
                                   "by hash in debian-templates/tool/vendor.txt. Then lintian, "
                                   "and an install test in a clean chroot (apt-get install "
                                   "venvdeb; venvdeb --help and the vendored pip-compile run; "
                                   "purge). 'venvdeb publish --tool' publishes it.")
    s.add_argument("--dist", default=None, metavar="D",
                   help="distribution (default: the config's first, e.g. bookworm)")
    s.add_argument("--force", action="store_true", help="build and check again")
    s.add_argument("--refresh-chroot", action="store_true",
                   help="make the install test's chroot tarball again")

    s = sub.add_parser("buildbot", help="run the buildbot master and workers on this machine",
                       description="start: check the config, create the master (default "
                                   "build/buildbot/master) and each worker of the settings if "
                                   "needed, and start them; the web UI is on 127.0.0.1:8010 "
                                   "unless the settings say otherwise. stop, status, "
                                   "checkconfig (buildbot checkconfig of buildbot-master/"
                                   "master.cfg). Settings: --settings, "
                                   "$VENVDEB_BUILDBOT_SETTINGS or buildbot-master/settings.toml "
                                   "(see buildbot-master/settings.toml.example); builders, "
                                   "pollers and schedulers come from the pipeline config.")
    s.add_argument("action", choices=("start", "stop", "status", "checkconfig"))
    s.add_argument("--settings", type=Path, default=None, metavar="FILE",
                   help="buildbot settings (TOML)")

    s = sub.add_parser("pipeline", help="every stage, from requirements to the repository",
                       description="Run every stage for the given releases (default: "
                                   "[pipeline] releases in the config): lock, wheels, reqdeb, "
                                   "then build and check of each project, publish to staging "
                                   "and, with --promote, production. Up-to-date stages are "
                                   "skipped and said so; an interrupted run resumes. Ends with "
                                   "a table of the packages and the lines a node needs.")
    s.add_argument("projects", nargs="*", metavar="PROJECT",
                   help="projects to build (default: [pipeline] projects)")
    s.add_argument("--release", action="append", metavar="R",
                   help="limit to this release (repeatable)")
    s.add_argument("--promote", action="store_true",
                   help="also promote to production after publishing to staging")
    s.add_argument("--builder", choices=debbuild.BUILDERS, default="local",
                   help="how project packages are built (default: local)")
    s.add_argument("-j", "--jobs", type=int, default=stages.default_jobs())
    s.add_argument("--build-jobs", type=int, default=stages.default_build_jobs(), metavar="N",
                   help="projects built and checked at once (default: half the cores, at "
                        "least 1: each build already uses every core for uv and bytecode)")
    return p


def _commands() -> dict[str, Callable[[argparse.Namespace, config_mod.Config, Workdir],
                                      list[str]]]:
    def lock(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [stages.run_lock(c, w, stages.target(c, a.release, a.dist, w), scope=a.scope,
                                force=a.force)]

    def wheels(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [stages.run_wheels(c, w, stages.target(c, a.release, a.dist, w), jobs=a.jobs)]

    def reqdeb(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [stages.run_reqdeb(c, w, stages.target(c, a.release, a.dist, w), force=a.force,
                                  lintian=not a.no_lintian)]

    def source(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        result = stages.run_source(c, w, stages.target(c, a.release, a.dist, w), a.project,
                                   reason=a.reason)
        return [f"source: {result.dsc}"]

    def build(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [stages.run_build(c, w, stages.target(c, a.release, a.dist, w), a.project,
                                 builder=a.builder, check_reproducible=a.check_reproducible,
                                 lintian=not a.no_lintian)]

    def check_(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [check.run_check(c, w, stages.target(c, a.release, a.dist, w), a.project,
                                force=a.force, refresh_chroot=a.refresh_chroot,
                                only=a.only)]

    def publish(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        t = stages.target(c, a.release, a.dist, w)
        names = a.projects or [p.name for p in c.projects_for(a.release)
                               if p.name in c.pipeline_projects]
        for name in names:
            stages.project_for(c, name, t.release)
        return [archive.run_publish(c, w, t, names, lock_timeout=a.lock_timeout, tool=a.tool)]

    def promote(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [archive.run_promote(c, w, stages.target(c, a.release, a.dist, w),
                                    lock_timeout=a.lock_timeout)]

    def pipeline_(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return pipeline.run(c, w, releases=a.release, projects=a.projects, builder=a.builder,
                            jobs=a.jobs, promote=a.promote, build_jobs=a.build_jobs)

    def buildbot(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        site = buildbot_plan.load_settings(a.settings, layout.data_root())
        if a.action == "checkconfig":
            return [buildbot_service.checkconfig(site)]
        if a.action == "start":
            lines = buildbot_service.start(site)
            buildbot_service.wait_for_master(site)
            return lines
        if a.action == "stop":
            return buildbot_service.stop(site)
        return buildbot_service.status(site)

    def affected_(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        t = stages.target(c, a.release, a.dist, w)
        names = a.projects or [p.name for p in c.projects_for(a.release)]
        for name in names:
            stages.project_for(c, name, t.release)
        verdicts = affected.run_affected(c, w, t, names, reason=a.reason)
        return [v.line() for v in verdicts] + [
            "affected: " + " ".join(v.project for v in verdicts if v.rebuild)]

    def tooldeb_(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        if a.dist is not None and a.dist not in c.distributions:
            raise ConfigError(f"unknown distribution {a.dist!r}",
                              hint=f"the config has: {', '.join(sorted(c.distributions))}")
        return [tooldeb.run_tooldeb(c, w, a.dist, force=a.force,
                                    refresh_chroot=a.refresh_chroot)]

    def requirements(a: argparse.Namespace, c: config_mod.Config, w: Workdir) -> list[str]:
        return [stages.run_requirements(c, w, a.release)]

    return {"lock": lock, "wheels": wheels, "reqdeb": reqdeb, "source": source, "build": build,
            "check": check_, "publish": publish, "promote": promote, "pipeline": pipeline_,
            "buildbot": buildbot, "affected": affected_,
            "requirements": requirements, "tooldeb": tooldeb_}


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    started = time.monotonic()
    try:
        cfg = config_mod.load(args.config or _default_config())
        work = Workdir(args.workdir.resolve())
        lines = _commands()[args.command](args, cfg, work)
    except VenvdebError as exc:
        line = f"venvdeb: error: {exc.message}"
        if exc.hint:
            line += f"; {exc.hint}"
        if exc.log:
            line += f" (log: {stages.relative(exc.log)})"
        print(line, file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("venvdeb: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    if args.command == "pipeline":
        lines.append(f"pipeline: done in {time.monotonic() - started:.0f} s")
        lines = [line for line in lines if not line.startswith(STAGE_PREFIXES)]
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
