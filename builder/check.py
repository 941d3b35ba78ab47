"""``venvdeb check``: lintian, then the install test in a clean chroot.

Results are recorded per file digest (builder.checks); files that already
passed are not checked again unless asked, so a pipeline rerun is quick.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from builder import build_record, checks, command, debbuild, install_test, repository
from builder import chroot as chroot_mod
from builder.config import Config, Distribution
from builder.errors import InstallTestFailed, LintianFailed
from builder.progress import say
from builder.stages import Target, project_for, sbuild_cache
from builder.workdir import Workdir


def cache_root() -> Path:
    return sbuild_cache().parent


def project_record(work: Workdir, t: Target, name: str) -> build_record.BuildRecord:
    return build_record.read(work.project(t.release.name, t.distribution.name, name),
                             f"{name} for {t.release.name}",
                             hint=f"run 'venvdeb build {name} --release {t.release.name}' first")


def reqdeb_record(work: Workdir, t: Target) -> build_record.BuildRecord:
    return build_record.read(work.reqdeb(t.release.name, t.distribution.name),
                             f"the requirements package of {t.release.name}",
                             hint=f"run 'venvdeb reqdeb --release {t.release.name}' first")


def candidates_repo(debs: tuple[Path, ...], into: Path, log: Path) -> None:
    """A flat apt repository (``deb [trusted=yes] file:DIR ./``) of ``debs``."""
    into.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        try:
            os.link(deb, into / deb.name)
        except OSError:
            shutil.copyfile(deb, into / deb.name)
    out = command.run(["apt-ftparchive", "packages", "."], cwd=into, log=log,
                      what="apt-ftparchive").output
    (into / "Packages").write_text(out)
    os.chmod(into, 0o755)


@contextmanager
def candidate_chroot(dist: Distribution, debs: Sequence[Path], log: Path, *,
                     refresh: bool = False) -> Iterator[chroot_mod.Chroot]:
    """A fresh clean chroot of ``dist`` that sees ``debs`` as a local apt repository
    at ``install_test.CANDIDATES`` (not yet in its sources)."""
    image = chroot_mod.tarball(dist.name, dist.architecture, dist.mirror,
                               cache_root() / "chroot", log, refresh=refresh)
    with tempfile.TemporaryDirectory(prefix="venvdeb-candidates-") as tmp:
        candidates = Path(tmp) / "repo"
        candidates_repo(tuple(debs), candidates, log)
        binds = [chroot_mod.Bind(candidates, install_test.CANDIDATES)]
        with chroot_mod.session(image, log, binds,
                                apt_cache=cache_root() / "apt-archives") as box:
            yield box


def lintian_recorded(ledger: Path, changes: Path, debs: tuple[Path, ...], log: Path) -> None:
    """lintian on ``changes``; the verdict recorded for ``debs`` either way."""
    try:
        debbuild.lintian(changes, log)
    except LintianFailed as exc:
        checks.record(ledger, debs, "lintian", False, exc.message)
        raise
    checks.record(ledger, debs, "lintian", True)


def run_check(config: Config, work: Workdir, t: Target, name: str, *, force: bool = False,
              refresh_chroot: bool = False, only: checks.Check | None = None) -> str:
    project = project_for(config, name, t.release)
    rec, req = project_record(work, t, name), reqdeb_record(work, t)
    release = t.release.name
    log = work.fresh_log(release, f"check-{name}")
    ledger = work.checks
    if only == "install":
        unlinted = [d.name for d in rec.debs if checks.result(ledger, d, "lintian") != "passed"]
        if unlinted:
            raise LintianFailed(f"{', '.join(unlinted)} have not passed lintian",
                                hint=f"run 'venvdeb check {name} --release {release} --only "
                                     f"lintian' first")
    elif force or any(checks.result(ledger, d, "lintian") != "passed" for d in rec.debs):
        say(f"check: lintian {rec.changes.name}")
        lintian_recorded(ledger, rec.changes, rec.debs, log)
    else:
        say(f"check: lintian: passed when {rec.source} {rec.version} was built")
    for deb in req.debs:
        if force or checks.result(ledger, deb, "lintian") != "passed":
            say(f"check: lintian {req.changes.name}")
            debbuild.lintian(req.changes, log)
            checks.record(ledger, (deb,), "lintian", True)
    if only == "lintian":
        return f"check: {rec.source} {rec.version}: lintian passed"
    every = (*rec.debs, *req.debs)
    if not force and all(checks.result(ledger, d, "install") == "passed" for d in every):
        return f"check: up to date: {rec.source} {rec.version} passed lintian and the install test"
    req_item = repository.item(req.debs[0])
    the_plan = install_test.plan(project, release, rec.version, (req_item.package,
                                                                 req_item.version))
    with candidate_chroot(t.distribution, every, log, refresh=refresh_chroot) as box:
        try:
            seen = install_test.run(the_plan, box)
        except InstallTestFailed as exc:
            checks.record(ledger, rec.debs, "install", False, exc.message)
            raise
    checks.record(ledger, every, "install", True, "; ".join(seen))
    return (f"check: {rec.source} {rec.version}: lintian passed; install test passed: "
            f"{'; '.join(seen)}")
