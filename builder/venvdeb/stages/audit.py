"""``venvdeb audit``: known vulnerabilities in a release's lock and in what each
project's venv carries, from an OSV export (venvdeb.qa.advisories).

The lock is what the requirements package holds (every entry); each built
project's closure (its build record: the wheels its venv installs) says which venv
package carries a pin. Shown as a table, or JSON; a Markdown report and the JSON
are written beside the lock (``<target>/audit/``) for the operator's records.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from venvdeb.core import build_record
from venvdeb.core.columns import aligned
from venvdeb.core.config import Config
from venvdeb.core.errors import AdvisoriesFound, AdvisoriesUnavailable, VenvdebError
from venvdeb.core.files import write_if_changed
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir
from venvdeb.debian.requirements_package import package_name
from venvdeb.python.lock import parse_lock
from venvdeb.qa import advisories


@dataclass(frozen=True)
class Report:
    subject: str  # 2025.1/bookworm
    source: Path  # the OSV export read
    read: int  # PyPI advisories in it
    pins: int  # pins checked
    findings: tuple[advisories.Finding, ...]
    carriers: dict[NormalizedName, tuple[str, ...]]  # pin -> the packages that carry it
    unbuilt: tuple[str, ...]  # projects named or configured, never built here

    def rows(self) -> list[tuple[str, ...]]:
        return [(f.package, f.pin, _named(f.advisory), f.fixed_in,
                 " ".join(self.carriers.get(f.package, ())))
                for f in self.findings]

    def table(self) -> list[str]:
        if not self.findings:
            return []
        return aligned(("package", "pin", "advisory", "fixed in", "carried by"), self.rows())

    def as_json(self) -> str:
        return json.dumps({
            "subject": self.subject, "advisories": str(self.source),
            "advisories_read": self.read, "pins_checked": self.pins,
            "findings": [{"package": f.package, "pin": f.pin, "advisory": f.advisory.id,
                          "aliases": list(f.advisory.aliases),
                          "fixed_in": list(f.advisory.fixed_after(f.pin)),
                          "carried_by": list(self.carriers.get(f.package, ())),
                          "record": f.advisory.source} for f in self.findings],
            "not_built": list(self.unbuilt)}, indent=1, sort_keys=True) + "\n"

    def markdown(self) -> str:
        lines = [f"# Known vulnerabilities: {self.subject}", "",
                 f"Advisories: {self.source} ({self.read} PyPI advisories); "
                 f"{self.pins} pins checked.", ""]
        if self.findings:
            lines += ["| package | pin | advisory | fixed in | carried by |",
                      "|---|---|---|---|---|"]
            lines += ["| " + " | ".join(row) + " |" for row in self.rows()]
        else:
            lines.append("No advisory affects these pins.")
        if self.unbuilt:
            lines += ["", "Not built here (which of their pins they carry is unknown): "
                      + ", ".join(self.unbuilt) + "."]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        advisories_found = len({f.advisory.id for f in self.findings})
        return (f"audit: {self.subject}: {advisories_found} advisor"
                f"{'y' if advisories_found == 1 else 'ies'} on {len(self.findings)} "
                f"pin{'s' if len(self.findings) != 1 else ''} of {self.pins} checked "
                f"({self.read} PyPI advisories in {self.source})")


def _named(a: advisories.Advisory) -> str:
    return a.id + (f" ({', '.join(a.aliases)})" if a.aliases else "")


def audit(config: Config, work: Workdir, t: Target, projects: Sequence[str],
          source: Path) -> Report:
    """The pins of the release's lock (or, with ``projects`` named, of their closures)
    against the advisories of ``source``."""
    release, dist = t.release.name, t.distribution.name
    lock_file = work.lock_file(release, dist)
    if not lock_file.exists():
        raise VenvdebError(f"audit: no lock for {release} on {dist} in {work.root}",
                           hint=f"run 'venvdeb lock --release {release} --dist {dist}' first")
    locked = {e.name: e.version for e in parse_lock(lock_file)}
    names = list(projects) or [p.name for p in config.projects_for(release, dist)]
    carriers: dict[NormalizedName, list[str]] = {}
    if not projects:
        for pinned in locked:
            carriers.setdefault(pinned, []).append(package_name(release))
    unbuilt, wanted = [], set()
    for name in names:  # (project names: str; pins: normalized)
        project = project_on(config, name, t)
        record = build_record.find(work.project(release, dist, name))
        if record is None:
            unbuilt.append(name)
            continue
        for pin in record.closure:
            dist_name = canonicalize_name(pin.split("==", 1)[0])
            wanted.add(dist_name)
            carriers.setdefault(dist_name, []).append(project.venv_package(release))
    pins = locked if not projects else {n: v for n, v in locked.items() if n in wanted}
    known = advisories.load(source)
    return Report(f"{release}/{dist}", source, len(known), len(pins),
                  advisories.findings(known, pins),
                  {k: tuple(v) for k, v in carriers.items()}, tuple(unbuilt))


def run_audit(config: Config, work: Workdir, t: Target, projects: Sequence[str],
              source: Path | None) -> Report:
    """The report, also written as Markdown and JSON into ``<target>/audit/``."""
    if source is None:
        raise AdvisoriesUnavailable(
            "audit: no advisory source: this build host has no OSV export configured and "
            "venvdeb does not query an advisory service itself",
            hint="give --advisories PATH: an OSV export, a directory or zip of OSV JSON "
                 "records (e.g. osv.dev's PyPI/all.zip, fetched where the network reaches it)")
    report = audit(config, work, t, projects, source)
    out = report_dir(work, t)
    write_if_changed(out / "audit.md", report.markdown())
    write_if_changed(out / "audit.json", report.as_json())
    return report


def report_dir(work: Workdir, t: Target) -> Path:
    return work.target(t.release.name, t.distribution.name) / "audit"


def refusal(report: Report) -> AdvisoriesFound:
    ids = sorted({f.advisory.id for f in report.findings})
    return AdvisoriesFound(
        f"audit: {report.subject}: {len(ids)} "
        f"{'advisory affects' if len(ids) == 1 else 'advisories affect'} its pins: "
        + ", ".join(f"{f.advisory.id} ({f.package} {f.pin})" for f in report.findings),
        hint="upgrade the pins where a fix exists (the release's upper-constraints), or "
             "read the advisory and decide")
