"""``venvdeb wheels``: a verified wheel for every lock entry, and its index."""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from venvdeb.core.config import Config
from venvdeb.core.errors import SdistBuildFailed
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.python import build_lock, chroot, constraints, lock, wheelhouse
from venvdeb.python.build_lock import BuildSystem
from venvdeb.python.lock import LockPlan


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


def build_environment(config: Config, work: Workdir, t: Target,
                      systems: Mapping[str, BuildSystem],
                      discovered: Mapping[str, tuple[str, ...]],
                      known: dict[tuple[str, str], wheelhouse.Record],
                      log_dir: Path, jobs: int
                      ) -> tuple[dict[str, wheelhouse.BuildEnv], tuple[wheelhouse.Record, ...]]:
    """The build locks of these sdists (file name -> build system; one lock unless
    their exact pins contradict: ``build_lock.groups``), each compiled, or reused while
    its inputs hold, its wheels fetched hash-verified into the wheel repository; return
    each sdist's build environment and the records of every lock's wheels."""
    lock_dir = work.build_lock_dir(t.release.name, t.distribution.name)
    parts = build_lock.groups(systems, discovered) or ({},)
    envs: dict[str, wheelhouse.BuildEnv] = {}
    records: dict[tuple[str, str], wheelhouse.Record] = {}
    for group, members in enumerate(parts):
        the_plan = build_lock.plan(t.release, t.distribution, members, discovered,
                                   group=group, of=len(parts))
        log = log_dir / ("build-lock.log" if group == 0 else f"build-lock-group-{group + 1}.log")
        env, got = _build_environment(config, work, t, the_plan,
                                      build_lock.group_dir(lock_dir, group), members,
                                      discovered, known, log_dir, log, jobs)
        envs.update(dict.fromkeys(members, env))
        records.update({(r.name, r.version): r for r in got})
    kept = {build_lock.group_dir(lock_dir, g) for g in range(len(parts))}
    for stale in set(lock_dir.glob("group-*")) - kept:  # a contradiction gone, its lock too
        shutil.rmtree(stale)
    if len(parts) > 1:
        say(f"wheels: {len(parts)} build locks (exact pins that contradict each other): "
            + "; ".join(", ".join(sorted(m)) for m in parts[1:]) + " apart from the rest")
    return envs, tuple(sorted(records.values(), key=lambda r: (r.name, r.version)))


def _build_environment(config: Config, work: Workdir, t: Target, the_plan: LockPlan,
                       lock_dir: Path, systems: Mapping[str, BuildSystem],
                       discovered: Mapping[str, tuple[str, ...]],
                       known: dict[tuple[str, str], wheelhouse.Record],
                       log_dir: Path, log: Path, jobs: int
                       ) -> tuple[wheelhouse.BuildEnv, tuple[wheelhouse.Record, ...]]:
    """One build lock (``the_plan`` in ``lock_dir``, pip-compile's output in ``log``)
    and its wheels."""
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    files_dir = wheel_dir / "files"
    if any(s.requires for s in systems.values()) or any(discovered.get(n) for n in systems):
        pins = constraints.PinSet((), 0, ())
        where = chroot.place(config, t.distribution, log, "locking build requirements")
        if lock.compile_lock(the_plan, lock_dir, log, pins, where=where):
            say(f"wheels: build lock compiled: {lock_dir / 'lock.txt'}")
        entries = lock.parse_lock(lock_dir / "lock.txt")
    else:
        entries = ()
    fetch_plan = wheelhouse.plan(entries, t.release, t.distribution, config, files_dir, known)
    if fetch_plan.build:
        names = ", ".join(b.entry.requirement for b in fetch_plan.build)
        raise SdistBuildFailed(
            f"the build lock {lock_dir / 'lock.txt'} needs {names}, which the index has only as "
            f"a sdist: build requirements are installed from wheels, never built",
            hint="pin a version of it that has a wheel for the target in the release's extra_pins")
    wheelhouse.verify_cached(fetch_plan.cached, entries, files_dir)
    fetched = wheelhouse.execute(wheelhouse.Plan((), fetch_plan.fetch, ()), files_dir=files_dir,
                                 log_dir=log_dir, jobs=jobs)
    records = {(r.name, r.version): r for r in (*fetch_plan.cached, *fetched)}
    wheels = {e.name: files_dir / records[(e.name, e.version)].file for e in entries}
    env = wheelhouse.BuildEnv(entries, wheels, str(t.distribution.python),
                              t.distribution.python_version)
    return env, tuple(records[(e.name, e.version)] for e in entries)


def run_wheels(config: Config, work: Workdir, t: Target, *, jobs: int) -> Outcome:
    entries = lock.entries_for(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    files_dir = wheel_dir / "files"
    known = wheelhouse.load_records(wheel_dir / wheelhouse.RECORDS)
    started = time.monotonic()
    the_plan = wheelhouse.plan(entries, t.release, t.distribution, config, files_dir, known)
    listed = time.monotonic() - started
    say(f"wheels: {t.release.name}: {the_plan.total} entries: {len(the_plan.cached)} cached, "
        f"{len(the_plan.fetch)} to download, {len(the_plan.build)} to build from sdists")
    wheelhouse.verify_cached(the_plan.cached, entries, files_dir)
    log_dir = work.log_dir(t.logs, "wheels")
    # the downloads do not wait for the build locks (pip-compile in the chroot) nor
    # for the sdist builds: they run beside them
    with ThreadPoolExecutor(max_workers=1) as background:
        downloading = background.submit(_timed, wheelhouse.execute,
                                        wheelhouse.Plan((), the_plan.fetch, ()),
                                        files_dir=files_dir, log_dir=log_dir, jobs=jobs)
        built, build_records, phases = _build_sdists(config, work, t, the_plan, known,
                                                     files_dir, log_dir, jobs)
        fetched, fetch_time = downloading.result()
    new = (*fetched, *built)
    if the_plan.fetch or the_plan.build:
        say(f"wheels: read the index for {len(the_plan.fetch) + len(the_plan.build)} entries "
            f"in {listed:.1f} s; downloaded {len(fetched)} wheels in {fetch_time:.1f} s"
            + (f" beside the build locks ({phases[0]:.1f} s) and {len(built)} sdist builds "
               f"({phases[1]:.1f} s, {max(1, jobs)} at once)" if the_plan.build else ""))
    known.update({(r.name, r.version): r for r in (*build_records, *new)})
    wheelhouse.write_records(wheel_dir / wheelhouse.RECORDS, known.values())
    current = tuple(known[(e.name, e.version)] for e in entries)
    wheelhouse.publish(current, wheel_dir, build_records)
    downloaded = sum(r.origin == "downloaded" for r in current)
    from_sdists = sum(r.origin == "built" for r in current)
    return Outcome("wheels", f"{t.release.name}/{t.distribution.name}",
                   f"wheels: {len(current)} wheels ({downloaded} downloaded, {from_sdists} built; "
                   f"{len(new)} new this run) in {wheel_dir}"
                   + (f"; the build lock's {len(build_records)} wheels built them" if build_records else ""),
                   changed=bool(new))


def _timed(fn: Callable[..., tuple[wheelhouse.Record, ...]], *args: object, **kwargs: object
           ) -> tuple[tuple[wheelhouse.Record, ...], float]:
    started = time.monotonic()
    return fn(*args, **kwargs), time.monotonic() - started


def _build_sdists(config: Config, work: Workdir, t: Target, the_plan: wheelhouse.Plan,
                  known: dict[tuple[str, str], wheelhouse.Record], files_dir: Path,
                  log_dir: Path, jobs: int
                  ) -> tuple[tuple[wheelhouse.Record, ...], tuple[wheelhouse.Record, ...],
                             tuple[float, float]]:
    """Build the plan's sdists, each with its build lock's wheels (locked, or relocked
    once with what backends asked for beyond it); return the built wheels' records,
    the build locks' records, and the time taken by the build locks and by the builds."""
    build_envs: dict[str, wheelhouse.BuildEnv] = {}
    build_records: tuple[wheelhouse.Record, ...] = ()
    sdists_dir = work.sdists(t.release.name, t.distribution.name)
    prepared = wheelhouse.prepare(the_plan.build, sdists_dir)
    # the build lock covers every sdist of the lock, those built before too
    systems = {r.source: build_lock.with_declared(
                   build_lock.read_build_system(sdists_dir / r.source, r.name),
                   config.build_requires_for(r.name))
               for r in the_plan.cached
               if r.origin == "built" and r.source and (sdists_dir / r.source).is_file()}
    systems.update({p.source.name: build_lock.with_declared(p.build_system,
                                                            config.build_requires_for(name))
                    for name, p in prepared.items()})
    lock_dir = work.build_lock_dir(t.release.name, t.distribution.name)
    discovered = build_lock.read_discovered(lock_dir)
    new: tuple[wheelhouse.Record, ...] = ()
    todo = wheelhouse.Plan((), (), the_plan.build)
    root = chroot.tree(config, t.distribution, log_dir / "build-chroot.log") \
        if the_plan.build else None
    locking = building = 0.0
    for attempt in (1, 2):
        started = time.monotonic()
        if systems:
            build_envs, build_records = build_environment(config, work, t, systems,
                                                          discovered, known, log_dir, jobs)
            build_envs = {k: dataclasses.replace(v, root=root) for k, v in build_envs.items()}
        locking += time.monotonic() - started
        started = time.monotonic()
        try:
            new += wheelhouse.execute(todo, files_dir=files_dir, log_dir=log_dir, jobs=jobs,
                                      prepared=prepared, build_envs=build_envs)
            building += time.monotonic() - started
            break
        except wheelhouse.IncompleteBuildLock as incomplete:
            building += time.monotonic() - started
            if attempt == 2 or all(set(discovered.get(k, ())) >= set(v)
                                   for k, v in incomplete.wanted.items()):
                raise
            # what a backend asks for (upstream code, confined) is locked with hashes like
            # the rest; recorded, so the next run's build lock holds it from the start
            say(f"wheels: build backends asked for more: {incomplete.wanted}; adding it to "
                f"the build lock and building those again (declared under "
                f"[sdist_build_requires] in {config.path.name}, a new workdir's first build "
                f"lock holds it)")
            discovered = {**discovered, **{k: tuple(sorted({*discovered.get(k, ()), *v}))
                                           for k, v in incomplete.wanted.items()}}
            build_lock.write_discovered(lock_dir, discovered)
            new += incomplete.done
            done = {(r.name, r.version) for r in incomplete.done}
            todo = wheelhouse.Plan((), (), tuple(b for b in the_plan.build
                                                 if (b.entry.name, b.entry.version) not in done))
    return new, build_records, (locking, building)
