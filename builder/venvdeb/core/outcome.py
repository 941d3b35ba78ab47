"""What a stage did or would do, as data: the CLI prints it, the pipeline collects it."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Outcome:
    """One stage's result: ``changed`` is False when everything was up to date."""

    stage: str  # lock, wheels, reqdeb, source, build, check, tooldeb, publish, promote...
    subject: str  # what it worked on: ``2026.1/bookworm``, a project, a codename
    line: str  # the one line a user reads, e.g. ``lock: up to date: 97 entries in ...``
    changed: bool = True
    detail: tuple[str, ...] = ()  # further lines (affected: one verdict per project)

    def lines(self) -> list[str]:
        return [*self.detail, self.line]


@dataclass(frozen=True)
class Planned:
    """What a dry run found for one stage: would it run, and why."""

    stage: str
    subject: str
    run: bool
    why: str

    def line(self) -> str:
        state = "would run" if self.run else "up to date"
        return f"{state}: {self.stage} {self.subject}: {self.why}"
