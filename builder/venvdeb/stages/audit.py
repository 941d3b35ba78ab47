"""``venvdeb audit``: known vulnerabilities in a release's lock and in what each
project's venv carries, from an OSV export (venvdeb.qa.audit, venvdeb.qa.advisories),
the config's waivers applied; ``venvdeb licenses``: the licenses the same pins
declare, the config's blocked ones refused (venvdeb.qa.licenses). Each report saved
beside the lock (``<target>/audit/``)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from venvdeb.core.config import Config
from venvdeb.core.errors import AdvisoriesFound, AdvisoriesUnavailable, LicensesBlocked
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian.requirements_package import package_name
from venvdeb.qa import audit, licenses
from venvdeb.qa.audit import Report
from venvdeb.qa.licenses import LicenseReport

NO_SOURCE_HINT = ("give --advisories PATH or [audit] advisories in the config: an OSV export, "
                  "a directory or zip of OSV JSON records (e.g. osv.dev's PyPI/all.zip, "
                  "fetched where the network reaches it)")


def run_audit(config: Config, work: Workdir, t: Target, projects: Sequence[str],
              source: Path | None, online: bool = False) -> tuple[Report, Path]:
    """The report, and where it was saved (Markdown; JSON beside it). ``online``: ask
    osv.dev through pip-audit (also when the config says ``online = true``)."""
    source = source or config.audit.advisories
    if source is None and not (online or config.audit.online):
        raise AdvisoriesUnavailable(
            "audit: no advisory source: none configured and none given (venvdeb queries "
            "no advisory service itself)", hint=NO_SOURCE_HINT)
    report = audit.audit(config, work, t, projects, source, package_name(t.release.name))
    return report, audit.save(report, audit.report_dir(work, t))


def refusal(report: Report) -> AdvisoriesFound:
    return AdvisoriesFound(
        report.refusal("audit"),
        hint="upgrade the pins where a fix exists (the release's upper-constraints), or "
             "waive an advisory for the release with a reason and an expiry date "
             "([[audit.waivers]] in the config)")


def run_licenses(config: Config, work: Workdir, t: Target, projects: Sequence[str]
                 ) -> tuple[LicenseReport, Path]:
    """The license report, and where it was saved (Markdown; JSON beside it)."""
    report = licenses.licenses(config, work, t, projects, package_name(t.release.name))
    return report, licenses.save(report, audit.report_dir(work, t))


def licenses_refusal(report: LicenseReport, what: str = "licenses") -> LicensesBlocked:
    return LicensesBlocked(
        report.refusal(what),
        hint="pin another version or drop the dependency (the release's upper-constraints, "
             "the project's extras), or take the license off [audit] blocked_licenses")
