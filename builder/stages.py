"""The pipeline's stages, each resumable: lock, wheels, reqdeb.

Each takes the loaded config and a workdir, says what it does on stderr, logs
its commands to ``<workdir>/logs/<release>/<stage>.log`` and returns a short
summary line.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from builder import constraints, lock, reqdeb, wheelhouse
from builder.config import Config, Distribution, Release, Scope
from builder.errors import ConfigError
from builder.progress import say
from builder.workdir import Workdir


@dataclass(frozen=True)
class Target:
    release: Release
    distribution: Distribution


def target(config: Config, release: str, distribution: str | None) -> Target:
    rel = config.release(release)
    dist_name = distribution or rel.distributions[0]
    if dist_name not in rel.distributions:
        raise ConfigError(f"release {release} is not built for distribution '{dist_name}' "
                          f"(its distributions: {', '.join(rel.distributions)})")
    return Target(rel, config.distribution(dist_name))


def run_lock(config: Config, work: Workdir, t: Target, *, scope: Scope | None = None,
             force: bool = False) -> str:
    lock.check_interpreter(t.distribution)
    pins = constraints.load_pins(t.release, t.distribution, config.path)
    lock_plan = lock.plan(config, t.release, t.distribution, pins, scope)
    lock_dir = work.lock_dir(t.release.name, t.distribution.name)
    log = work.log(t.release.name, "lock")
    say(f"lock: {t.release.name} on {t.distribution.name} (Python "
        f"{t.distribution.python_version}), scope {lock_plan.scope}: {len(pins.pins)} pins apply, "
        f"{pins.skipped_by_marker} skipped by marker, {len(pins.denied)} deny-listed")
    changed = lock.compile_lock(lock_plan, lock_dir, work.cache / "pip-tools", log, pins,
                                force=force)
    entries = lock.parse_lock(lock_dir / "lock.txt")
    state = "compiled" if changed else "up to date"
    return f"lock: {state}: {len(entries)} entries in {lock_dir / 'lock.txt'}"


def _entries(work: Workdir, t: Target) -> tuple[lock.LockEntry, ...]:
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    if not lock_file.exists():
        raise ConfigError(f"no lock for release {t.release.name} on {t.distribution.name} "
                          f"({lock_file} is missing)",
                          hint=f"run 'venvdeb lock --release {t.release.name}' first")
    return lock.parse_lock(lock_file)


def run_wheels(config: Config, work: Workdir, t: Target, *, jobs: int) -> str:
    entries = _entries(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    files_dir = wheel_dir / "files"
    known = wheelhouse.load_records(wheel_dir / wheelhouse.RECORDS)
    the_plan = wheelhouse.plan(entries, t.release, t.distribution, config, files_dir, known)
    say(f"wheels: {t.release.name}: {the_plan.total} entries: {len(the_plan.cached)} cached, "
        f"{len(the_plan.fetch)} to download, {len(the_plan.build)} to build from sdists")
    wheelhouse.verify_cached(the_plan.cached, entries, files_dir)
    build_constraints = wheel_dir / "build-constraints.txt"
    build_constraints.parent.mkdir(parents=True, exist_ok=True)
    build_constraints.write_text("".join(f"{p}\n" for p in t.release.extra_pins))
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
    return (f"wheels: {len(current)} wheels ({downloaded} downloaded, {built} built; "
            f"{len(new)} new this run) in {wheel_dir}")


def run_reqdeb(config: Config, work: Workdir, t: Target, *, force: bool = False,
               lintian: bool = True) -> str:
    entries = _entries(work, t)
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    the_plan = reqdeb.plan(config, t.release, t.distribution, lock_file=lock_file,
                           entries=entries, wheel_dir=work.wheelhouse(t.release.name,
                                                                      t.distribution.name),
                           ledger=work.state / "versions.json")
    out_dir = work.reqdeb(t.release.name, t.distribution.name)
    say(f"reqdeb: {the_plan.package} {the_plan.version} ({the_plan.architecture}), "
        f"{len(the_plan.wheels)} wheels")
    deb, built = reqdeb.build(the_plan, out_dir, work.log(t.release.name, "reqdeb"),
                              force=force, lintian=lintian)
    size = os.path.getsize(deb) / 1e6
    state = "built" if built else "up to date"
    return f"reqdeb: {state}: {deb} ({size:.1f} MB)"


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
