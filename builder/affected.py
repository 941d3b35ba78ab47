"""``venvdeb affected``: which projects a new requirements package rebuilds.

A project is rebuilt only when its source package would change: its closure
(the wheels its venv installs, each by hash), its upstream or its packaging.
A constraint change that touches no project's closure rebuilds nothing.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from builder import build_record, stages
from builder.config import Config
from builder.errors import ConfigError
from builder.workdir import Workdir


@dataclass(frozen=True)
class Verdict:
    project: str
    rebuild: bool
    old: str | None
    new: str
    why: str

    def line(self) -> str:
        state = "rebuild" if self.rebuild else "keep"
        was = f"{self.old} -> {self.new}" if self.rebuild and self.old else self.new
        return f"{state} {self.project} {was}: {self.why}"


def closure_change(old: Sequence[str], new: Sequence[str]) -> str:
    """``fixture-lib 1.0.0 -> 1.1.0, +six 1.17.0`` from two ``name==version`` lists."""
    before = dict(p.split("==", 1) for p in old)
    after = dict(p.split("==", 1) for p in new)
    parts = [f"{n} {before[n]} -> {after[n]}" for n in sorted(before.keys() & after.keys())
             if before[n] != after[n]]
    parts += [f"+{n} {after[n]}" for n in sorted(after.keys() - before.keys())]
    parts += [f"-{n} {before[n]}" for n in sorted(before.keys() - after.keys())]
    return ", ".join(parts)


def run_affected(config: Config, work: Workdir, t: stages.Target, projects: Sequence[str], *,
                 reason: str = "") -> list[Verdict]:
    out = []
    for name in projects:
        try:
            record: build_record.BuildRecord | None = build_record.read(
                work.project(t.release.name, t.distribution.name, name), name, hint="")
        except ConfigError:
            record = None
        src = stages.run_source(config, work, t, name, reason=reason, plan_only=True)
        new = src.plan.version
        if record is None:
            out.append(Verdict(name, True, None, new, "never built in this workdir"))
        elif record.version == new:
            out.append(Verdict(name, False, record.version, new,
                               "its closure, upstream and packaging are unchanged"))
        else:
            change = closure_change(record.closure, src.closure)
            why = f"its closure changed: {change}" if change else \
                "its upstream or packaging changed (closure unchanged)"
            out.append(Verdict(name, True, record.version, new, why))
    return out
