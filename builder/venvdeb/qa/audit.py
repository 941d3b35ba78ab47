"""A release's pins against OSV advisories, with the config's waivers applied:
what ``venvdeb audit`` shows and what ``venvdeb promote`` is gated on.

The lock is what the requirements package holds (every entry); each built
project's closure (its build record) says which venv package carries a pin.
A waiver (``[[audit.waivers]]``) sets an advisory aside for one release until its
date; expired, the advisory counts again and the report says so.
"""
from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from venvdeb.core import build_record
from venvdeb.core.columns import aligned
from venvdeb.core.config import Config, Waiver
from venvdeb.core.errors import VenvdebError
from venvdeb.core.files import write_if_changed
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir
from venvdeb.python.lock import parse_lock
from venvdeb.qa import advisories
from venvdeb.qa.advisories import Finding


@dataclass(frozen=True)
class Report:
    subject: str  # 2025.1/bookworm
    day: datetime.date  # when it was made (waivers expire by it)
    source: str  # the OSV export read (or the online service)
    read: int  # PyPI advisories in it
    pins: int  # pins checked
    findings: tuple[Finding, ...]  # every affected pin, waived or not
    waived: dict[tuple[str, str], Waiver]  # (package, advisory id) -> its valid waiver
    expired: tuple[Waiver, ...]  # the release's waivers past their date
    unused: tuple[Waiver, ...]  # the release's valid waivers matching no finding
    carriers: dict[NormalizedName, tuple[str, ...]]  # pin -> the packages that carry it
    unbuilt: tuple[str, ...]  # projects never built here (their closures unknown)

    @property
    def open(self) -> tuple[Finding, ...]:
        """The findings that count: not waived (or waived no longer)."""
        return tuple(f for f in self.findings if (f.package, f.advisory.id) not in self.waived)

    def carried_by(self, f: Finding) -> str:
        return " ".join(self.carriers.get(f.package, ()))

    def rows(self) -> list[tuple[str, ...]]:
        return [(f.package, f.pin, _named(f.advisory), f.fixed_in, self.carried_by(f),
                 self._status(f)) for f in self.findings]

    def _status(self, f: Finding) -> str:
        w = self.waived.get((f.package, f.advisory.id))
        return f"waived until {w.expires}" if w else "open"

    def table(self) -> list[str]:
        if not self.findings:
            return []
        return aligned(("package", "pin", "advisory", "fixed in", "carried by", "status"),
                       self.rows())

    def notes(self) -> list[str]:
        """What the operator should know about the waivers and the projects."""
        out = [f"audit: waiver of {w.id} for {w.release} expired on {w.expires}: it counts "
               f"again (renew it with a new date and reason, or fix the pin)" for w in self.expired]
        out += [f"audit: waiver of {w.id} for {w.release} matches no advisory of its pins "
                f"(remove it from [audit] waivers)" for w in self.unused]
        if self.unbuilt:
            out.append(f"audit: not built here, their closures unknown: "
                       f"{', '.join(self.unbuilt)}")
        return out

    def summary(self) -> str:
        ids = {f.advisory.id for f in self.open}
        waived = len(self.findings) - len(self.open)
        return (f"audit: {self.subject}: {len(ids)} advisor{'y' if len(ids) == 1 else 'ies'} "
                f"on {len(self.open)} pin{'s' if len(self.open) != 1 else ''} of {self.pins} "
                f"checked" + (f", {waived} waived" if waived else "")
                + (f" ({self.read} advisories from {self.source}; {self.day})"
                   if self.source == advisories.ONLINE else
                   f" ({self.read} PyPI advisories in {self.source}; {self.day})"))

    def as_json(self) -> str:
        return json.dumps({
            "subject": self.subject, "date": self.day.isoformat(),
            "advisories": str(self.source), "advisories_read": self.read,
            "pins_checked": self.pins,
            "findings": [{"package": f.package, "pin": f.pin, "advisory": f.advisory.id,
                          "aliases": list(f.advisory.aliases),
                          "fixed_in": list(f.advisory.fixed_after(f.pin)),
                          "carried_by": list(self.carriers.get(f.package, ())),
                          "status": self._status(f), "record": f.advisory.source}
                         for f in self.findings],
            "expired_waivers": [w.id for w in self.expired],
            "unused_waivers": [w.id for w in self.unused],
            "not_built": list(self.unbuilt)}, indent=1, sort_keys=True) + "\n"

    def markdown(self) -> str:
        lines = [f"# Known vulnerabilities: {self.subject} ({self.day})", "",
                 f"Advisories: {self.source} ({self.read} PyPI advisories); "
                 f"{self.pins} pins checked.", ""]
        if self.findings:
            lines += ["| package | pin | advisory | fixed in | carried by | status |",
                      "|---|---|---|---|---|---|"]
            lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
            lines += [""] + [f"- {w.id}, waived for {w.release} until {w.expires}: {w.reason}"
                             for w in self.waived.values()]
        else:
            lines.append("No advisory affects these pins.")
        notes = self.notes()
        return "\n".join(lines + ([""] + notes if notes else [])) + "\n"

    def refusal(self, what: str) -> str:
        """One line naming each open advisory and the packages that carry it."""
        return refusal_line(what, self.subject, "carry open advisories",
                            [(f"{f.advisory.id} in {f.package} {f.pin}", self.carried_by(f))
                             for f in self.open])


def refusal_line(what: str, subject: str, claim: str, found: list[tuple[str, str]]) -> str:
    """``what: N pins of SUBJECT CLAIM: X (carried by P Q); ...``: one line."""
    return (f"{what}: {len(found)} pin{'s' if len(found) != 1 else ''} of {subject} {claim}: "
            + "; ".join(f"{one} (carried by {by or 'no package built here'})"
                        for one, by in found))


def report_dir(work: Workdir, t: Target) -> Path:
    return work.target(t.release.name, t.distribution.name) / "audit"


def save(report: Report, out: Path) -> Path:
    """``audit.md`` and ``audit.json`` in ``out``; the Markdown's path."""
    return save_pair(out, "audit", report.as_json(), report.markdown())


def save_pair(out: Path, stem: str, as_json: str, markdown: str) -> Path:
    """``<stem>.json`` and ``<stem>.md`` in ``out`` (each rewritten only when it
    changes); the Markdown's path."""
    write_if_changed(out / f"{stem}.json", as_json)
    write_if_changed(out / f"{stem}.md", markdown)
    return out / f"{stem}.md"


def last_clean_day(out: Path) -> str | None:
    """The date of the last audit saved in ``out`` if it found nothing open, else None."""
    try:
        data = json.loads((out / "audit.json").read_text())
    except (OSError, ValueError):
        return None
    if any(f.get("status") == "open" for f in data.get("findings", ())):
        return None
    day = data.get("date")
    return day if isinstance(day, str) else None


def _named(a: advisories.Advisory) -> str:
    return a.id + (f" ({', '.join(a.aliases)})" if a.aliases else "")


@dataclass(frozen=True)
class Scope:
    """The pins a report covers and who carries each."""

    pins: dict[NormalizedName, str]  # name -> version
    carriers: dict[NormalizedName, tuple[str, ...]]  # pin -> the packages that carry it
    unbuilt: tuple[str, ...]  # projects never built here (their closures unknown)


def in_scope(config: Config, work: Workdir, t: Target, projects: Sequence[str],
             requirements_package: str, what: str) -> Scope:
    """The release's lock (every pin, carried by the requirements package), or with
    ``projects`` named only their closures; each built project's venv package carries
    its closure's pins."""
    release, dist = t.release.name, t.distribution.name
    lock_file = work.lock_file(release, dist)
    if not lock_file.exists():
        raise VenvdebError(f"{what}: no lock for {release} on {dist} in {work.root}",
                           hint=f"run 'venvdeb lock --release {release} --dist {dist}' first")
    locked = {e.name: e.version for e in parse_lock(lock_file)}
    names = list(projects) or [p.name for p in config.projects_for(release, dist)]
    carriers: dict[NormalizedName, list[str]] = {}
    if not projects:
        for pinned in locked:
            carriers.setdefault(pinned, []).append(requirements_package)
    unbuilt, wanted = [], set()
    for name in names:
        project = project_on(config, name, t)
        record = build_record.find(work.project(release, dist, name))
        if record is None:
            unbuilt.append(name)
            continue
        for pin in record.closure:
            pinned = canonicalize_name(pin.split("==", 1)[0])
            wanted.add(pinned)
            carriers.setdefault(pinned, []).append(project.venv_package(release))
    pins = locked if not projects else {n: v for n, v in locked.items() if n in wanted}
    return Scope(pins, {k: tuple(v) for k, v in carriers.items()}, tuple(unbuilt))


def audit(config: Config, work: Workdir, t: Target, projects: Sequence[str], source: Path | None,
          requirements_package: str, today: datetime.date | None = None) -> Report:
    """The pins of the release's lock (or, with ``projects`` named, of their closures)
    against the advisories of ``source`` (an OSV export; None: osv.dev online, through
    pip-audit), the config's waivers applied."""
    release = t.release.name
    day = today or datetime.date.today()
    scope = in_scope(config, work, t, projects, requirements_package, "audit")
    pins, carriers, unbuilt = scope.pins, scope.carriers, scope.unbuilt
    known = advisories.load(source) if source is not None else advisories.query_online(
        pins, work.cache / "pip-audit", work.fresh_log(t.logs, "audit-online"))
    found = advisories.findings(known, pins)
    mine = [w for w in config.audit.waivers if w.release == release]
    valid = [w for w in mine if not w.expired(day)]
    waived: dict[tuple[str, str], Waiver] = {}
    for f in found:
        names_of = {f.advisory.id, *f.advisory.aliases}
        waiver = next((w for w in valid if w.id in names_of), None)
        if waiver is not None:
            waived[(f.package, f.advisory.id)] = waiver
    return Report(f"{release}/{t.distribution.name}", day,
                  str(source) if source is not None else advisories.ONLINE, len(known),
                  len(pins), found, waived,
                  tuple(w for w in mine if w.expired(day)),
                  tuple(w for w in valid if w not in waived.values()), carriers, unbuilt)


def fixed_by(source: Path, before: dict[str, str], after: dict[str, str]) -> list[str]:
    """The advisories a closure change fixes: each affects a pin's old version and not
    its new one (``PYSEC-2099-1 in fixture-lib 1.0.0``), for the rebuild's reason."""
    known = advisories.load(source)
    changed = {n for n in before.keys() & after.keys() if before[n] != after[n]}
    old = {canonicalize_name(n): before[n] for n in changed}
    new = {(f.package, f.advisory.id)
           for f in advisories.findings(known, {canonicalize_name(n): after[n] for n in changed})}
    return [f"{f.advisory.id} in {f.package} {f.pin}"
            for f in advisories.findings(known, old) if (f.package, f.advisory.id) not in new]
