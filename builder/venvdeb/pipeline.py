"""``venvdeb pipeline``: every stage for each release, then a summary.

lock, wheels, requirements package, then per project source + build and
check, then publish to staging and (``--promote``) production. Each stage
skips what is up to date and says so; an interrupted run resumes.
``dry_run`` plans the same stages without acting: what would run, and why.
"""
from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from venvdeb.archive import repository
from venvdeb.core import build_record, check_records, columns, host
from venvdeb.core.config import Config, Project
from venvdeb.core.errors import AdvisoriesUnavailable, ConfigError, VenvdebError
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say, size
from venvdeb.core.target import Target, target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import builders
from venvdeb.debian.requirements_package import package_name
from venvdeb.qa import audit
from venvdeb.stages import affected, build, check, lock, publish, reqdeb, requirements, tooldeb
from venvdeb.stages import wheels as wheels_stage


@dataclass(frozen=True)
class Row:
    package: str
    version: str
    size: int
    lintian: str
    install: str
    #: open advisories on the pins it carries (venvdeb.qa.audit); "-": no advisory
    #: source configured, or a package that carries no wheels
    advisories: str = "-"


@dataclass(frozen=True)
class TargetResult:
    """One release on one distribution: what each stage did, the packages, the node's lines."""

    release: str
    distribution: str
    outcomes: tuple[Outcome, ...]
    rows: tuple[Row, ...] = ()
    codename: str = ""
    node_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineResult:
    targets: tuple[TargetResult, ...]

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return tuple(o for t in self.targets for o in t.outcomes)

    def summary(self) -> list[str]:
        """The tables and the lines a node runs (the stages said their own lines)."""
        out: list[str] = []
        for t in self.targets:
            if not t.rows:
                continue
            out += ["", *table(t.rows), "",
                    f"On a {t.distribution} node, as root, to install from {t.codename}:",
                    *("  " + line for line in t.node_lines)]
        return out


def leaves(project: Project) -> tuple[str, ...]:
    """The packages an operator installs: those no other package of the project needs."""
    needed = {d for p in project.packages for d in p.depends}
    return tuple(p.name for p in project.packages if p.name not in needed)


def summary(config: Config, work: Workdir, t: Target, projects: Sequence[str],
            tool: bool = False) -> tuple[Row, ...]:
    files = list(build_record.reqdeb_record(work, t).debs)
    for name in projects:
        files += build_record.project_record(work, t, name).debs
    if tool:
        files += build_record.tool_record(work, t.distribution.name).debs
    advisories = open_advisories(config, work, t)
    rows = []
    for deb in files:
        it = repository.item(deb)
        rows.append(Row(it.package, it.version, deb.stat().st_size,
                        check_records.result(work.checks, deb, "lintian", it.sha256) or "not run",
                        check_records.result(work.checks, deb, "install", it.sha256) or "not run",
                        advisories(it.package)))
    return tuple(rows)


def open_advisories(config: Config, work: Workdir, t: Target) -> Callable[[str], str]:
    """Per binary package, how many open advisories affect the pins it carries (the
    config's advisory source and waivers, as 'venvdeb audit'); '-' without a source or
    for a package that carries no wheels, 'unknown' when the source cannot be read."""
    source = config.audit.advisories
    if not config.audit.gated:
        return lambda package: "-"
    reqdeb_name = package_name(t.release.name)
    wheels = {reqdeb_name, *(p.venv_package(t.release.name) for p in config.projects.values())}
    try:
        report = audit.audit(config, work, t, (), source, reqdeb_name)
    except AdvisoriesUnavailable as exc:
        say(f"pipeline: {exc.message}: the advisories column says unknown")
        return lambda package: "unknown" if package in wheels else "-"
    ids: dict[str, set[str]] = {}
    for f in report.open:
        for package in report.carriers.get(f.package, ()):
            ids.setdefault(package, set()).add(f.advisory.id)
    return lambda package: str(len(ids.get(package, ()))) if package in wheels else "-"


def table(rows: Sequence[Row]) -> list[str]:
    head = ("package", "version", "size", "advisories", "lintian", "install test")
    body = [(r.package, r.version, size(r.size), r.advisories, r.lintian, r.install)
            for r in rows]
    return columns.aligned(head, body)


def _names(config: Config, projects: Sequence[str] | None) -> tuple[str, ...]:
    names = tuple(projects or config.pipeline_projects)
    for name in names:
        if name not in config.projects:
            raise ConfigError(f"unknown project '{name}': {config.path.name} defines "
                              f"{', '.join(sorted(config.projects))}")
    return names


def pairs(config: Config, releases: Sequence[str] | None,
          distributions: Sequence[str] | None) -> list[tuple[str, str]]:
    """Every (release, distribution) the pipeline builds: each release of ``releases``
    (default: ``[pipeline] releases``) on each of its distributions, or those of
    ``distributions`` (each must be configured; a release without any of them is
    skipped)."""
    for name in distributions or ():
        config.distribution(name)
    out = [(release, dist) for release in releases or config.pipeline_releases
           for dist in config.release(release).distributions
           if not distributions or dist in distributions]
    if not out:
        raise ConfigError(f"no release of {', '.join(releases or config.pipeline_releases)} "
                          f"is built for {', '.join(distributions or ())}",
                          hint="see each release's distributions in the config")
    return out


def tool_for(config: Config, t: Target) -> bool:
    """venvdeb's own package goes with the host's distribution only: it is the build
    host's tool (worker machines run that distribution), made with the host's stdeb."""
    return config.pipeline_tool and host.native(t.distribution)


def run(config: Config, work: Workdir, *, releases: Sequence[str] | None,
        projects: Sequence[str] | None, builder: builders.Builder | None, jobs: int,
        promote: bool, build_jobs: int = 1,
        distributions: Sequence[str] | None = None) -> PipelineResult:
    names = _names(config, projects)
    results = []
    for release, dist in pairs(config, releases, distributions):
        outcomes: list[Outcome] = []

        def stage(outcome: Outcome, outcomes: list[Outcome] = outcomes) -> None:
            say(outcome.line)
            outcomes.append(outcome)

        if config.release(release).requirements_git:
            stage(requirements.run_requirements(config, work, release))
        t = target(config, release, dist, work)
        built = [p.name for p in config.projects_for(release, dist) if p.name in names]
        stage(lock.run_lock(config, work, t))
        stage(wheels_stage.run_wheels(config, work, t, jobs=jobs))
        stage(reqdeb.run_reqdeb(config, work, t))

        def one(name: str, t: Target = t) -> list[Outcome]:
            # lintian with the install test in the check stage, at once (not after the
            # build and before the check: bench/commit-to-staging measures the saving)
            done = [build.run_build(config, work, t, name, builder=builder, lintian=False)]
            say(done[-1].line)
            done.append(check.run_check(config, work, t, name))
            say(done[-1].line)
            return done

        # projects are independent: several at once when the cores allow
        with ThreadPoolExecutor(max(1, min(build_jobs, len(built)))) as pool:
            for done in [f.result() for f in [pool.submit(one, n) for n in built]]:
                outcomes.extend(done)
        tool = tool_for(config, t)
        if tool:
            stage(tooldeb.run_tooldeb(config, work, dist))
        stage(publish.run_publish(config, work, t, built, tool=tool))
        if promote:
            stage(publish.run_promote(config, work, t))
        stage_name: repository.Stage = "production" if promote else "staging"
        packages = [name for n in built for name in leaves(config.projects[n])]
        results.append(TargetResult(
            release, dist, tuple(outcomes), summary(config, work, t, built, tool=tool),
            repository.codename(dist, release, stage_name),
            tuple(publish.operator_lines(config, work, t, stage_name, packages))))
    return PipelineResult(tuple(results))


def dry_run(config: Config, work: Workdir, *, releases: Sequence[str] | None,
            projects: Sequence[str] | None, promote: bool,
            distributions: Sequence[str] | None = None) -> tuple[Planned, ...]:
    """What ``run`` would do and why, changing nothing in the workdir: its logs go to
    a temporary directory, fetches to scratch space, versions are looked up, not given."""
    names = _names(config, projects)
    with tempfile.TemporaryDirectory(prefix="venvdeb-dry-run-") as tmp:
        view = Workdir(work.root, logs=Path(tmp))
        out: list[Planned] = []
        for release, dist in pairs(config, releases, distributions):
            out += _dry_run_target(config, view, release, dist, names, promote)
        return tuple(out)


def _dry_run_target(config: Config, work: Workdir, release: str, dist: str,
                    names: Sequence[str], promote: bool) -> list[Planned]:
    out: list[Planned] = []
    subject = f"{release}/{dist}"
    if config.release(release).requirements_git:
        out.append(requirements.plan_requirements(config, work, release))
        if out[-1].run:
            after = "after the new requirement files"
            return out + [Planned(s, subject, True, after) for s in ("lock", "wheels", "reqdeb")]
    t = target(config, release, dist, work)
    built = [p.name for p in config.projects_for(release, dist) if p.name in names]
    planned, changed = lock.dry_run(config, work, t)
    out.append(planned)
    if planned.run:
        out += [Planned("wheels", subject, True, "after the new lock"),
                Planned("reqdeb", subject, True, "after the new lock")]
        for name in built:
            out += _project_after_lock(config, work, t, name, changed)
    else:
        out.append(wheels_stage.dry_run(config, work, t))
        out.append(reqdeb.dry_run(config, work, t) if not out[-1].run else
                   Planned("reqdeb", subject, True, "after the new wheels"))
        for name in built:
            out += _project(config, work, t, name)
    if tool_for(config, t):
        out.append(tooldeb.dry_run(config, work, dist))
    new_files = any(p.run for p in out)
    codename = repository.codename(dist, release, "staging")
    if new_files:
        out.append(Planned("publish", codename, True, "after the stages above"))
    else:
        out.append(publish.dry_run(work, t, built, tool=tool_for(config, t)))
    if promote:
        production = repository.codename(dist, release, "production")
        out.append(Planned("promote", production, True, f"what {codename} holds") if any(
            p.run for p in out) else _promotion(work, t, codename, production))
    return out


def _project(config: Config, work: Workdir, t: Target, name: str) -> list[Planned]:
    try:
        v = affected.verdict(config, work, t, name, work.log(t.logs, "dry-run"))
    except VenvdebError as exc:
        return [Planned("build", name, True, f"cannot be planned yet: {exc.message}"),
                Planned("check", name, True, "after its build")]
    if v.rebuild:
        return [Planned("build", name, True, f"{v.new}: {v.why}"),
                Planned("check", name, True, "after its build")]
    return [Planned("build", name, False, f"{v.new} is built"), check.dry_run(work, t, name)]


def _project_after_lock(config: Config, work: Workdir, t: Target, name: str,
                        changed: dict[str, str]) -> list[Planned]:
    """Before the new lock exists, a project's closure tells whether it will change: it
    does when a wheel it installs (or the project itself) gets another pin."""
    record = build_record.find(work.project(t.release.name, t.distribution.name, name))
    if record is None:
        return [Planned("build", name, True, "never built in this workdir"),
                Planned("check", name, True, "after its build")]
    own = config.projects[name].pypi_name
    hits = [f"{n} {c}" for n, c in sorted(changed.items())
            if any(p.split("==")[0] == n for p in record.closure) or n == own]
    if hits:
        return [Planned("build", name, True, f"its closure changes: {', '.join(hits)}"),
                Planned("check", name, True, "after its build")]
    return [Planned("build", name, False, f"{record.version}: no wheel of its closure changes")]


def _promotion(work: Workdir, t: Target, staging: str, production: str) -> Planned:
    current = repository.Paths(work.repo).current()
    if current is None:
        return Planned("promote", production, False, "nothing is published")
    arch = t.distribution.architecture
    staged = repository.published(current, staging, arch)
    held = repository.published(current, production, arch)
    todo = sorted(f"{e.package} {e.version}" for k, e in staged.items()
                  if k not in held or held[k].version != e.version)
    if not todo:
        return Planned("promote", production, False, f"it holds what {staging} holds")
    return Planned("promote", production, True, f"{len(todo)} from {staging}: "
                                                f"{', '.join(todo[:6])}")
