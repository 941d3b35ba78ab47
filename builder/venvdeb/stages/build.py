"""``venvdeb build``: a project's binary packages, from its source package."""
from __future__ import annotations

import shutil
from pathlib import Path

from venvdeb.core import build_record, check_records
from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome
from venvdeb.core.progress import say, size
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir, shared_cache
from venvdeb.debian import builders, project, requirements_package
from venvdeb.qa import lintian as qa_lintian


def run_build(config: Config, work: Workdir, t: Target, name: str, *,
              builder: builders.Builder | None = None, check_reproducible: bool = False,
              lintian: bool = True) -> Outcome:
    """``builder``: None picks the distribution's (``builders.choose``)."""
    chosen = builders.choose(builder, t.distribution)
    ps, the_plan, dsc, _ = project.make_source(config, work, t, name)
    arch = t.distribution.architecture
    wanted = project.expected_debs(the_plan, ps.out_dir, arch)
    record = build_record.BuildRecord(
        the_plan.source, the_plan.version, dsc,
        ps.out_dir / f"{the_plan.source}_{the_plan.version_no_epoch}_{arch}.changes",
        wanted, ps.closure)
    if all(d.exists() for d in wanted) and not check_reproducible:
        build_record.write(ps.out_dir, record)
        return Outcome("build", name, f"build: up to date: {', '.join(d.name for d in wanted)} "
                                      f"in {ps.out_dir}", changed=False)
    log = work.fresh_log(t.logs, f"build-{name}")
    dist = t.distribution

    def build_once(work_name: str) -> builders.BuildResult:
        if chosen == "sbuild":
            tarball = builders.chroot_tarball(dist.name, dist.architecture, dist.mirror,
                                              shared_cache() / "sbuild", log,
                                              extra=config.all_build_dependencies())
            return builders.build_sbuild(dsc, ps.out_dir, log, tarball=tarball,
                                         distribution=dist.name, architecture=dist.architecture,
                                         extra_packages=(ps.reqdeb_deb,), work_name=work_name)
        wheels = builders.BuildDependency(ps.reqdeb_deb, requirements_package.INSTALL_ROOT)
        return builders.build_local(dsc, ps.out_dir, log, source_date_epoch=the_plan.epoch,
                                    work_name=work_name, depends=(wheels,))

    say(f"build: {the_plan.source} {the_plan.version} with the {chosen} builder (log: {log})")
    first = build_once("tmp-build")
    if check_reproducible:
        say("build: building a second time, in another directory, to compare")
        second = build_once("tmp-build-again")
        report = _compare(first.debs, second.debs)
        shutil.rmtree(second.changes.parent)
        if report:
            shutil.rmtree(first.changes.parent)
            raise builders.BuildFailed(
                f"{the_plan.source} {the_plan.version} is not reproducible: {'; '.join(report)}",
                log=log)
        say("build: reproducible: both builds gave byte-identical packages")
    if lintian:
        say("build: lintian")
        qa_lintian.lintian(first.changes, log, tree=qa_lintian.tree_for(dist, log))
    debs = builders.publish_outputs(first, ps.out_dir)
    build_record.write(ps.out_dir, record)
    if lintian:
        check_records.record(work.checks, debs, "lintian", True)
    sizes = ", ".join(f"{d.name} ({size(d.stat().st_size)})" for d in debs)
    return Outcome("build", name, f"build: built {sizes} in {ps.out_dir}")


def _compare(first: tuple[Path, ...], second: tuple[Path, ...]) -> list[str]:
    report = []
    for a, b in zip(sorted(first), sorted(second), strict=True):
        if a.read_bytes() != b.read_bytes():
            diff = builders.differences(a, b)
            shown = ", ".join(diff[:8]) + (f" and {len(diff) - 8} more" if len(diff) > 8 else "")
            report.append(f"{a.name} differs in {shown or 'its ar/tar framing'}")
    return report
