"""``venvdeb check``: lintian and the install test in a clean chroot, at once.

Results are recorded per file digest (venvdeb.core.check_records); files that
already passed are not checked again unless asked, so a pipeline rerun is quick.
Both checks together: lintian (one perl process) and the install test (mostly
dpkg's unpacking and a booted node) run side by side, each recording its own
verdict (the ledger takes one writer at a time); a failure of either fails the
check, lintian's first. bench/commit-to-staging measures what it saves.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from venvdeb.core import build_record, check_records
from venvdeb.core.check_records import Check
from venvdeb.core.config import Config, Project
from venvdeb.core.errors import LintianFailed
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir
from venvdeb.qa import candidates, gate, install_test


def dry_run(work: Workdir, t: Target, name: str) -> Planned:
    rec = build_record.project_record(work, t, name)
    req = build_record.reqdeb_record(work, t)
    every = (*rec.debs, *req.debs)
    todo = [c for c in check_records.CHECKS if gate.pending(work.checks, every, c)]
    if not todo:
        return Planned("check", name, False, f"{rec.version} passed lintian and the install test")
    return Planned("check", name, True, f"{rec.version}: {' and '.join(todo)} not passed")


def run_check(config: Config, work: Workdir, t: Target, name: str, *, force: bool = False,
              refresh_chroot: bool = False, only: Check | None = None) -> Outcome:
    project = project_on(config, name, t)
    rec = build_record.project_record(work, t, name)
    req = build_record.reqdeb_record(work, t)
    release = t.release.name
    log = work.fresh_log(t.logs, f"check-{name}")
    ledger = work.checks
    if only == "install":
        unlinted = [d.name for d in rec.debs
                    if check_records.result(ledger, d, "lintian") != "passed"]
        if unlinted:
            raise LintianFailed(f"{', '.join(unlinted)} have not passed lintian",
                                hint=f"run 'venvdeb check {name} --release {release} --only "
                                     f"lintian' first")
    every = (*rec.debs, *req.debs)
    together = only is None and os.geteuid() == 0 and (force or gate.pending(
        ledger, every, "install"))
    if only != "install":
        def lint() -> None:
            if not gate.lint(ledger, rec.changes, rec.debs, log,
                             distribution=t.distribution, force=force):
                say(f"check: lintian: passed when {rec.source} {rec.version} was built")
            gate.lint(ledger, req.changes, req.debs, log, distribution=t.distribution,
                      force=force)
        if together:  # the install test in a log of its own (the two run at once)
            install_log = work.fresh_log(t.logs, f"check-{name}-install")
            return _together(lint, lambda: _install(project, t, rec, req, every, ledger,
                                                   install_log, force, refresh_chroot), rec)
        lint()
    if only == "lintian":
        return Outcome("check", name, f"check: {rec.source} {rec.version}: lintian passed")
    if os.geteuid() != 0 and gate.pending(ledger, every, "install"):
        # a booted node (systemd as PID 1, its cgroups, a chroot owned by subordinate
        # ids) needs root: an unprivileged worker leaves the install test to the
        # publisher, which runs it on the upload before publishing anything
        check_records.defer(ledger, every, "install",
                            f"not root (uid {os.geteuid()}): left to the publisher")
        return Outcome("check", name, f"check: {rec.source} {rec.version}: lintian passed; "
                                      f"install test left to the publisher (a booted node "
                                      f"needs root; this run is uid {os.geteuid()}): 'venvdeb "
                                      f"accept' runs it on the upload, 'venvdeb publish' "
                                      f"refuses the packages until it passed")
    seen = _install(project, t, rec, req, every, ledger, log, force, refresh_chroot)
    if seen is None:
        return Outcome("check", name, f"check: up to date: {rec.source} {rec.version} passed "
                                      f"lintian and the install test", changed=False)
    return _passed(rec, seen)


def _passed(rec: build_record.BuildRecord, seen: list[str]) -> Outcome:
    return Outcome("check", rec.source, f"check: {rec.source} {rec.version}: lintian passed; "
                                        f"install test passed: {'; '.join(seen)}")


def _install(project: Project, t: Target, rec: build_record.BuildRecord,
             req: build_record.BuildRecord, every: tuple[Path, ...], ledger: Path, log: Path,
             force: bool, refresh_chroot: bool) -> list[str] | None:
    """The install test of ``every`` in a booted clean node, recorded (None: it passed
    for these bytes before)."""
    the_plan = install_test.plan(project, t.release.name, rec.version,
                                 (req.package, req.version))

    def test() -> list[str]:
        with candidates.candidate_chroot(t.distribution, every, log,
                                         refresh=refresh_chroot) as box:
            return install_test.run(the_plan, box)

    return gate.install(ledger, every, test, force=force, blame=rec.debs)


def _together(lint: Callable[[], None], install: Callable[[], list[str] | None],
              rec: build_record.BuildRecord) -> Outcome:
    """lintian and the install test side by side; each records its verdict. lintian's
    failure is raised first (it names the file and tag to fix), then the install test's."""
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="check") as pool:
        linted = pool.submit(lint)
        installed = pool.submit(install)
        linted.result()
        seen = installed.result()
    return _passed(rec, seen or ["passed before, for these bytes"])
