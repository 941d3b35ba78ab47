"""``venvdeb pipeline``: every stage for each release, then a summary.

lock, wheels, requirements package, then per project source + build and
check, then publish to staging and (``--promote``) production. Each stage
skips what is up to date and says so; an interrupted run resumes.
"""
from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from builder import archive, checks, debbuild, repository, stages, tooldeb
from builder.check import project_record, reqdeb_record, run_check
from builder.config import Config, Project
from builder.errors import ConfigError
from builder.progress import say, size
from builder.workdir import Workdir


@dataclass(frozen=True)
class Row:
    package: str
    version: str
    size: int
    lintian: str
    install: str


def leaves(project: Project) -> tuple[str, ...]:
    """The packages an operator installs: those no other package of the project needs."""
    needed = {d for p in project.packages for d in p.depends}
    return tuple(p.name for p in project.packages if p.name not in needed)


def summary(work: Workdir, t: stages.Target, projects: Sequence[str],
            tool: bool = False) -> tuple[Row, ...]:
    files = list(reqdeb_record(work, t).debs)
    for name in projects:
        files += project_record(work, t, name).debs
    if tool:
        files += tooldeb.record(work, t.distribution.name).debs
    rows = []
    for deb in files:
        it = repository.item(deb)
        rows.append(Row(it.package, it.version, deb.stat().st_size,
                        checks.result(work.checks, deb, "lintian", it.sha256) or "not run",
                        checks.result(work.checks, deb, "install", it.sha256) or "not run"))
    return tuple(rows)


def table(rows: Sequence[Row]) -> list[str]:
    head = ("package", "version", "size", "lintian", "install test")
    body = [(r.package, r.version, size(r.size), r.lintian, r.install) for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*row).rstrip() for row in (head, tuple("-" * w for w in widths), *body)]



def run(config: Config, work: Workdir, *, releases: Sequence[str] | None,
        projects: Sequence[str] | None, builder: debbuild.Builder, jobs: int,
        promote: bool, check: bool = True, build_jobs: int = 1) -> list[str]:
    names = tuple(projects or config.pipeline_projects)
    for name in names:
        if name not in config.projects:
            raise ConfigError(f"unknown project '{name}': {config.path.name} defines "
                              f"{', '.join(sorted(config.projects))}")
    out: list[str] = []

    def stage(line: str) -> None:
        say(line)
        out.append(line)

    for release in releases or config.pipeline_releases:
        for dist in config.release(release).distributions:
            if config.release(release).requirements_git:
                stage(stages.run_requirements(config, work, release))
            t = stages.target(config, release, dist, work)
            built = [p.name for p in config.projects_for(release) if p.name in names]
            stage(stages.run_lock(config, work, t))
            stage(stages.run_wheels(config, work, t, jobs=jobs))
            stage(stages.run_reqdeb(config, work, t))
            def one(name: str, t: stages.Target = t) -> list[str]:
                lines = [stages.run_build(config, work, t, name, builder=builder)]
                say(lines[-1])
                if check:
                    lines.append(run_check(config, work, t, name))
                    say(lines[-1])
                return lines

            # projects are independent: several at once when the cores allow
            with ThreadPoolExecutor(max(1, min(build_jobs, len(built)))) as pool:
                for lines in [f.result() for f in [pool.submit(one, n) for n in built]]:
                    out.extend(lines)
            if not check:
                continue
            tool = config.pipeline_tool
            if tool:
                stage(tooldeb.run_tooldeb(config, work, dist))
            stage(archive.run_publish(config, work, t, built, tool=tool))
            if promote:
                stage(archive.run_promote(config, work, t))
            out.append("")
            out += table(summary(work, t, built, tool=tool))
            stage_name: repository.Stage = "production" if promote else "staging"
            packages = [name for n in built for name in leaves(config.projects[n])]
            out.append("")
            out.append(f"On a {dist} node, as root, to install from "
                       f"{repository.codename(dist, release, stage_name)}:")
            out += ["  " + line for line in archive.operator_lines(config, work, t, stage_name,
                                                                   packages)]
    return out
