"""``venvdeb wheels``: a verified wheel for every lock entry, and its index."""
from __future__ import annotations

from venvdeb.core.config import Config
from venvdeb.core.files import write_if_changed
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.python import lock, wheelhouse


def plan_wheels(config: Config, work: Workdir, t: Target) -> wheelhouse.Plan:
    """Pure: cached, to download, to build (the index is read only for what is not cached)."""
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    known = wheelhouse.load_records(wheel_dir / wheelhouse.RECORDS)
    return wheelhouse.plan(lock.entries_for(work, t), t.release, t.distribution, config,
                           wheel_dir / "files", known)


def dry_run(config: Config, work: Workdir, t: Target) -> Planned:
    the_plan = plan_wheels(config, work, t)
    subject = f"{t.release.name}/{t.distribution.name}"
    current = wheelhouse.read_manifest(work.wheelhouse(t.release.name, t.distribution.name))
    in_manifest = {(r.name, r.version) for r in current}
    stale = len(in_manifest ^ {(r.name, r.version) for r in the_plan.cached})
    if not the_plan.fetch and not the_plan.build and not stale:
        return Planned("wheels", subject, False, f"all {the_plan.total} wheels are in place")
    return Planned("wheels", subject, True,
                   f"{len(the_plan.fetch)} to download, {len(the_plan.build)} to build"
                   + (", index to rewrite" if stale and not (the_plan.fetch or the_plan.build)
                      else ""))


def run_wheels(config: Config, work: Workdir, t: Target, *, jobs: int) -> Outcome:
    entries = lock.entries_for(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    files_dir = wheel_dir / "files"
    known = wheelhouse.load_records(wheel_dir / wheelhouse.RECORDS)
    the_plan = wheelhouse.plan(entries, t.release, t.distribution, config, files_dir, known)
    say(f"wheels: {t.release.name}: {the_plan.total} entries: {len(the_plan.cached)} cached, "
        f"{len(the_plan.fetch)} to download, {len(the_plan.build)} to build from sdists")
    wheelhouse.verify_cached(the_plan.cached, entries, files_dir)
    build_constraints = wheel_dir / "build-constraints.txt"
    write_if_changed(build_constraints, "".join(f"{p}\n" for p in t.release.extra_pins))
    new = wheelhouse.execute(
        the_plan, release=t.release, files_dir=files_dir,
        sdists_dir=work.sdists(t.release.name, t.distribution.name),
        build_constraints=build_constraints,
        log_dir=work.log_dir(t.release.name, "wheels"), jobs=jobs)
    known.update({(r.name, r.version): r for r in new})
    wheelhouse.write_records(wheel_dir / wheelhouse.RECORDS, known.values())
    current = tuple(known[(e.name, e.version)] for e in entries)
    wheelhouse.publish(current, wheel_dir)
    downloaded = sum(r.origin == "downloaded" for r in current)
    built = sum(r.origin == "built" for r in current)
    return Outcome("wheels", f"{t.release.name}/{t.distribution.name}",
                   f"wheels: {len(current)} wheels ({downloaded} downloaded, {built} built; "
                   f"{len(new)} new this run) in {wheel_dir}", changed=bool(new))
