"""``venvdeb affected``: which projects a new requirements package rebuilds.

A project is rebuilt only when its source package would change: its closure
(the wheels its venv installs, each by hash), its upstream or its packaging.
A constraint change that touches no project's closure rebuilds nothing. A query:
it plans each project's source package and assigns no version.
"""
from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import build_record
from venvdeb.core.config import Config
from venvdeb.core.errors import AdvisoriesUnavailable
from venvdeb.core.outcome import Outcome
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import project
from venvdeb.qa import audit


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


def verdict(config: Config, work: Workdir, t: Target, name: str, log: Path) -> Verdict:
    """Plan ``name``'s source package (fetches land in a scratch directory, nothing is
    recorded) and compare it with its last build."""
    record = build_record.find(work.project(t.release.name, t.distribution.name, name))
    with tempfile.TemporaryDirectory(prefix="venvdeb-affected-") as scratch:
        ps = project.plan(config, work, t, name, log, scratch=Path(scratch))
    new = ps.draft.version_for(project.peek_version(work, t, ps).serial)
    if record is None:
        return Verdict(name, True, None, new, "never built in this workdir")
    if record.version == new and all(d.exists() for d in record.debs):
        return Verdict(name, False, record.version, new,
                       "its closure, upstream and packaging are unchanged")
    if record.version == new:
        return Verdict(name, True, record.version, new, "its packages are missing")
    change = closure_change(record.closure, ps.closure)
    why = f"its closure changed: {change}" if change else \
        "its upstream or packaging changed (closure unchanged)"
    fixes = _fixes(config, record.closure, ps.closure, log) if change else []
    if fixes:
        why += f"; the update fixes {', '.join(fixes)}"
    return Verdict(name, True, record.version, new, why)


def _fixes(config: Config, old: Sequence[str], new: Sequence[str], log: Path) -> list[str]:
    """With an advisory source configured, the advisories the closure change fixes."""
    if config.audit.advisories is None:
        return []
    try:
        return audit.fixed_by(config.audit.advisories, dict(p.split("==", 1) for p in old),
                              dict(p.split("==", 1) for p in new))
    except AdvisoriesUnavailable as exc:
        with log.open("a") as out:
            out.write(f"affected: {exc.message}: the fixed advisories are not named\n")
        return []


def run_affected(config: Config, work: Workdir, t: Target, projects: Sequence[str]) -> Outcome:
    log = work.fresh_log(t.logs, "affected")
    verdicts = [verdict(config, work, t, name, log) for name in projects]
    return Outcome("affected", f"{t.release.name}/{t.distribution.name}",
                   "affected: " + " ".join(v.project for v in verdicts if v.rebuild),
                   changed=any(v.rebuild for v in verdicts),
                   detail=tuple(v.line() for v in verdicts))
