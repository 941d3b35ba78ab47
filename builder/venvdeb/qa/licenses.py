"""The licenses a release's wheels declare, and those the config blocks: what
``venvdeb licenses`` shows and what ``venvdeb promote`` is gated on.

Each pin's license is read from its wheel in the release's wheel repository
(venvdeb.python.inventory: ``License-Expression`` first, then a short
``License`` field, then the license classifiers). ``[audit] blocked_licenses``
lists SPDX ids (or the exact names metadata uses): a pin is blocked when every
way its expression can be satisfied takes a blocked license ("MIT OR
GPL-3.0-only" is not blocked by GPL-3.0-only; "MIT AND GPL-3.0-only" is).
Matching ignores case; an undeclared license is reported, never blocked.
"""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from license_expression import (  # type: ignore[import-untyped]
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
)

from venvdeb.core.columns import aligned
from venvdeb.core.config import Config
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.python import inventory, wheelhouse
from venvdeb.qa.audit import in_scope, refusal_line, save_pair

_LICENSING = Licensing()


def blocks(declared: str, blocked: Sequence[str]) -> bool:
    """Whether a declared license (an expression or a name) must be refused."""
    keys = {b.lower() for b in blocked}
    if not declared or not keys:
        return False
    if declared.lower() in keys:
        return True
    try:
        parsed = _LICENSING.parse(declared)
    except ExpressionError:
        return False  # a name that is no expression: only the exact match above
    return _blocked(parsed, keys)


def _blocked(node: object, keys: set[str]) -> bool:
    if isinstance(node, LicenseWithExceptionSymbol):
        return _blocked(node.license_symbol, keys)
    if isinstance(node, LicenseSymbol):
        return str(node.key).lower() in keys
    if isinstance(node, _LICENSING.OR):
        return all(_blocked(a, keys) for a in node.args)
    if isinstance(node, _LICENSING.AND):
        return any(_blocked(a, keys) for a in node.args)
    return False


@dataclass(frozen=True)
class Row:
    name: str
    version: str
    license: str          # "" when the metadata declares none
    source: str           # expression, license, classifier, or ""
    carriers: tuple[str, ...]
    blocked: bool


@dataclass(frozen=True)
class LicenseReport:
    subject: str                      # 2026.1/bookworm
    blocked_list: tuple[str, ...]     # the config's blocked licenses
    rows: tuple[Row, ...]
    missing: tuple[str, ...]          # pins with no wheel in the wheel repository yet
    unbuilt: tuple[str, ...]

    @property
    def blocked(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.blocked)

    def table(self, rows: Sequence[Row] | None = None) -> list[str]:
        """Each pin (or each of ``rows``), aligned; nothing for no rows."""
        chosen = self.rows if rows is None else rows
        if not chosen:
            return []
        return aligned(("package", "version", "license", "declared in", "carried by", "status"),
                       [(r.name, r.version, r.license or "(none declared)", r.source or "-",
                         " ".join(r.carriers), "BLOCKED" if r.blocked else "ok")
                        for r in chosen])

    def count_table(self) -> list[str]:
        return aligned(("license", "pins"), [(k, str(n)) for k, n in self.counts()]) \
            if self.rows else []

    def counts(self) -> list[tuple[str, int]]:
        """Each declared license with how many pins declare it, most first."""
        c = Counter(r.license or "(none declared)" for r in self.rows)
        return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))

    def notes(self) -> list[str]:
        out = []
        if self.missing:
            out.append(f"licenses: no wheel yet for {', '.join(self.missing)} "
                       f"(run 'venvdeb wheels'): not checked")
        if self.unbuilt:
            out.append(f"licenses: not built here, their closures unknown: "
                       f"{', '.join(self.unbuilt)}")
        return out

    def summary(self) -> str:
        undeclared = sum(1 for r in self.rows if not r.license)
        rule = (f"blocked: {', '.join(self.blocked_list)}" if self.blocked_list
                else "none blocked ([audit] blocked_licenses)")
        return (f"licenses: {self.subject}: {len(self.rows)} pins, "
                f"{len(self.counts())} distinct licenses, {undeclared} undeclared, "
                f"{len(self.blocked)} blocked ({rule})")

    def as_json(self) -> str:
        return json.dumps({
            "subject": self.subject, "blocked_licenses": list(self.blocked_list),
            "pins": [{"package": r.name, "version": r.version, "license": r.license,
                      "declared_in": r.source, "carried_by": list(r.carriers),
                      "blocked": r.blocked} for r in self.rows],
            "no_wheel": list(self.missing), "not_built": list(self.unbuilt)},
            indent=1, sort_keys=True) + "\n"

    def markdown(self) -> str:
        lines = [f"# Licenses: {self.subject}", "", self.summary(), "",
                 "| license | pins |", "|---|---|"]
        lines += [f"| {lic} | {n} |" for lic, n in self.counts()]
        lines += ["", "| package | version | license | declared in | carried by | status |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {r.name} | {r.version} | {r.license or '(none declared)'} | "
                  f"{r.source or '-'} | {' '.join(r.carriers)} | "
                  f"{'BLOCKED' if r.blocked else 'ok'} |" for r in self.rows]
        notes = self.notes()
        return "\n".join(lines + ([""] + notes if notes else [])) + "\n"

    def refusal(self, what: str) -> str:
        return refusal_line(what, self.subject, "declare a blocked license",
                            [(f"{r.name} {r.version} ({r.license})", " ".join(r.carriers))
                             for r in self.blocked])


def licenses(config: Config, work: Workdir, t: Target, projects: Sequence[str],
             requirements_package: str) -> LicenseReport:
    """The declared license of every pin in scope (the lock, or the named projects'
    closures), read from its wheel, and whether the config blocks it."""
    scope = in_scope(config, work, t, projects, requirements_package, "licenses")
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    records = {(r.name, r.version): r for r in wheelhouse.read_manifest(wheel_dir)}
    blocked = config.audit.blocked_licenses
    rows, missing = [], []
    for name, version in sorted(scope.pins.items()):
        record = records.get((name, version))
        if record is None:
            missing.append(f"{name}=={version}")
            continue
        item = inventory.wheel_item(record, wheel_dir / "files" / record.file)
        rows.append(Row(name, version, item.license, item.license_source,
                        scope.carriers.get(name, ()), blocks(item.license, blocked)))
    return LicenseReport(f"{t.release.name}/{t.distribution.name}", blocked, tuple(rows),
                         tuple(missing), scope.unbuilt)


def save(report: LicenseReport, out: Path) -> Path:
    """``licenses.md`` and ``licenses.json`` in ``out`` (beside the audit's); the
    Markdown's path."""
    return save_pair(out, "licenses", report.as_json(), report.markdown())
