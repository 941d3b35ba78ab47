"""``venvdeb lock``: compile a release into a hash-locked set with pip-tools."""
from __future__ import annotations

from dataclasses import dataclass

from venvdeb.core.config import Config, Scope
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.progress import say
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.python import chroot, constraints, lock


@dataclass(frozen=True)
class LockStep:
    plan: lock.LockPlan
    pins: constraints.PinSet
    up_to_date: bool


def plan_lock(config: Config, work: Workdir, t: Target, *, scope: Scope | None = None) -> LockStep:
    """Pure: pip-compile's inputs and whether the lock already follows them."""
    pins = constraints.load_pins(t.release, t.distribution, config.path)
    lock_plan = lock.plan(config, t.release, t.distribution, pins, scope)
    lock_dir = work.lock_dir(t.release.name, t.distribution.name)
    return LockStep(lock_plan, pins, lock.is_current(lock_plan, lock_dir))


def changed_pins(step: LockStep, work: Workdir, t: Target) -> dict[str, str]:
    """Lock entries whose pin the new inputs change: name -> ``old -> new`` (a pin
    that appears or goes reads ``unpinned``). The old pins are the input files
    pip-compile left beside the lock; the new ones are the plan's."""
    lock_dir = work.lock_dir(t.release.name, t.distribution.name)
    lock_file = lock_dir / "lock.txt"
    if not lock_file.exists():
        return {}
    old = lock.pinned_inputs(lock_dir)
    new = {**lock.pinned(step.plan.constraints), **lock.pinned(step.plan.requirements_in)}
    out: dict[str, str] = {}
    for entry in lock.parse_lock(lock_file):
        before, after = old.get(entry.name), new.get(entry.name)
        if before != after:
            out[entry.name] = f"{before or 'unpinned'} -> {after or 'unpinned'}"
    return out


def dry_run(config: Config, work: Workdir, t: Target) -> tuple[Planned, dict[str, str]]:
    """Whether the lock would be compiled again, and the pins that change (see
    ``changed_pins``; empty when it is up to date)."""
    step = plan_lock(config, work, t)
    subject = f"{t.release.name}/{t.distribution.name}"
    if step.up_to_date:
        return Planned("lock", subject, False, "its inputs are unchanged"), {}
    changed = changed_pins(step, work, t)
    why = ("pins change: " + ", ".join(f"{n} {c}" for n, c in sorted(changed.items()))
           if changed else "its inputs changed (projects, scope or extra pins)")
    return Planned("lock", subject, True, why), changed


def run_lock(config: Config, work: Workdir, t: Target, *, scope: Scope | None = None,
             force: bool = False) -> Outcome:
    step = plan_lock(config, work, t, scope=scope)
    pins = step.pins
    lock_dir = work.lock_dir(t.release.name, t.distribution.name)
    log = work.fresh_log(t.logs, "lock")
    say(f"lock: {t.release.name} on {t.distribution.name} (Python "
        f"{t.distribution.python_version}), scope {step.plan.scope}: {len(pins.pins)} pins apply, "
        f"{pins.skipped_by_marker} skipped by marker, {len(pins.denied)} deny-listed")
    # the tree of a distribution that is not the host's, only when pip-compile runs
    where = chroot.HOST if step.up_to_date and not force else \
        chroot.place(config, t.distribution, log, "locking")
    changed = lock.compile_lock(step.plan, lock_dir, log, pins, force=force, where=where)
    entries = lock.parse_lock(lock_dir / "lock.txt")
    state = "compiled" if changed else "up to date"
    return Outcome("lock", f"{t.release.name}/{t.distribution.name}",
                   f"lock: {state}: {len(entries)} entries in {lock_dir / 'lock.txt'}",
                   changed=changed)
