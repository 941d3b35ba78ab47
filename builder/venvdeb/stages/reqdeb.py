"""``venvdeb reqdeb``: the release's wheel repository as one binary package."""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import build_record, check_records, files, versions
from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import requirements_package
from venvdeb.python import lock
from venvdeb.qa import lintian as qa_lintian


@dataclass(frozen=True)
class ReqdebStep:
    plan: requirements_package.ReqdebPlan
    version: versions.Assigned  # peeked: ``new`` when the ledger does not know it yet
    up_to_date: bool


def plan_reqdeb(config: Config, work: Workdir, t: Target) -> ReqdebStep:
    """Pure: the package's plan, the version it has or would get, and whether it is built."""
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    the_plan = requirements_package.plan(
        config, t.release, t.distribution, lock_file=lock_file, entries=lock.entries_for(work, t),
        wheel_dir=work.wheelhouse(t.release.name, t.distribution.name))
    peeked = versions.peek(work.versions, the_plan.ledger_key, t.release.name, the_plan.digest,
                           tag=t.distribution.version_tag)
    record = build_record.find(work.reqdeb(t.release.name, t.distribution.name))
    return ReqdebStep(the_plan, peeked, not peeked.new and record is not None
                      and record.version == peeked.version and record.complete)


def dry_run(config: Config, work: Workdir, t: Target) -> Planned:
    step = plan_reqdeb(config, work, t)
    subject = f"{t.release.name}/{t.distribution.name}"
    if step.up_to_date:
        return Planned("reqdeb", subject, False, f"{step.plan.package} {step.version.version} "
                                                 f"is built")
    return Planned("reqdeb", subject, True, f"{step.plan.package} {step.version.version} "
                                            f"({'new inputs' if step.version.new else 'not built'})")


def _lint(t: Target) -> Callable[[Path, Path], None]:
    """The distribution's own lintian (the host's, or a tree of it)."""
    def lint(changes: Path, log: Path) -> None:
        qa_lintian.lintian(changes, log, tree=qa_lintian.tree_for(t.distribution, log))
    return lint


def run_inputs(config: Config, work: Workdir, t: Target) -> Outcome:
    """What the version ledger knows the package's inputs by (key and digest), for a
    publisher that assigns the version (buildbot); assigns and writes nothing."""
    step = plan_reqdeb(config, work, t)
    return Outcome("reqdeb", f"{t.release.name}/{t.distribution.name}",
                   f"inputs: {step.plan.ledger_key} {step.plan.digest}", changed=False)


def run_reqdeb(config: Config, work: Workdir, t: Target, *, force: bool = False,
               lintian: bool = True, assigned: tuple[int, int] | None = None) -> Outcome:
    """``assigned``: the (serial, epoch) the publisher's ledger gave these inputs,
    adopted here: every worker then builds the same bytes under the same version."""
    step = plan_reqdeb(config, work, t)
    if assigned is not None:
        versions.adopt(work.versions, step.plan.ledger_key, step.plan.digest, *assigned)
    given = versions.assign(work.versions, step.plan.ledger_key, t.release.name,
                            step.plan.digest, tag=t.distribution.version_tag)
    the_build = requirements_package.versioned(step.plan, given)
    out_dir = work.reqdeb(t.release.name, t.distribution.name)
    say(f"reqdeb: {the_build.package} {the_build.version} ({step.plan.architecture}), "
        f"{len(step.plan.wheels)} wheels")
    deb, built = requirements_package.build(
        the_build, out_dir, work.fresh_log(t.logs, "reqdeb"), force=force,
        lint=_lint(t) if lintian else None)
    [changes] = out_dir.glob(f"{the_build.source}_{the_build.version}_*.changes")
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    build_record.write(out_dir, build_record.BuildRecord(
        the_build.source, the_build.version, None, changes, (deb,), package=the_build.package,
        inputs=files.sha256(lock_file)))
    if built and lintian:
        check_records.record(work.checks, (deb,), "lintian", True)
    size = os.path.getsize(deb) / 1e6
    state = "built" if built else "up to date"
    return Outcome("reqdeb", f"{t.release.name}/{t.distribution.name}",
                   f"reqdeb: {state}: {deb} ({size:.1f} MB)", changed=built)
