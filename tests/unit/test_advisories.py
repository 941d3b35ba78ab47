"""OSV advisories matched against pins: PEP 440 comparison, ranges, withdrawn
records, exports as a directory or a zip, damaged exports. The records in
tests/data/osv-pypi are the PyPA advisory database's (CC-BY-4.0, see its README)."""
from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT
from venvdeb.core.errors import AdvisoriesUnavailable, ConfigError
from venvdeb.python.constraints import parse_pin_lines
from venvdeb.qa import advisories

EXPORT = ROOT / "tests" / "data" / "osv-pypi"


def _pins(release: str) -> dict[str, str]:
    path = ROOT / "requirements-repo" / "releases" / release / "upper-constraints.txt"
    pins = {}
    for req, _ in parse_pin_lines(path.read_text().splitlines(), str(path)):
        [spec] = req.specifier
        pins[canonicalize_name(req.name)] = spec.version
    return pins


@pytest.mark.parametrize(("release", "positives"), [
    ("2025.1", {("horizon", "25.3.2", "PYSEC-2012-18"), ("selenium", "3.141.0", "PYSEC-2023-206"),
                ("zstd", "1.5.6.4", "PYSEC-2023-121")}),
    ("2026.1", {("horizon", "25.7.3", "PYSEC-2012-18"), ("zstd", "1.5.7.3", "PYSEC-2023-121")}),
])
def test_the_exports_positives_and_none_of_its_negative_controls(
        release: str, positives: set[tuple[str, str, str]]) -> None:
    found = advisories.findings(advisories.load(EXPORT), _pins(release))  # type: ignore[arg-type]
    assert {(f.package, f.pin, f.advisory.id) for f in found} == positives
    # idna 3.10 against a fix in 3.7, django 4.2.19 against 4.2.5: strings would say
    # affected; requests 2.32.x is past 2.31.0
    assert not {"idna", "django", "requests"} & {f.package for f in found}


def test_fixed_in_names_the_fixes_above_the_pin_or_none() -> None:
    found = {f.advisory.id: f for f in advisories.findings(
        advisories.load(EXPORT), _pins("2025.1"))}  # type: ignore[arg-type]
    assert found["PYSEC-2023-206"].fixed_in == "4.14.0"
    assert found["PYSEC-2023-206"].advisory.aliases == ("CVE-2023-5590",)
    assert found["PYSEC-2012-18"].fixed_in == "no fix known"  # its fix is a GIT range only


def _record(events: list[dict[str, str]], versions: tuple[str, ...] = (),
            **extra: object) -> dict[str, object]:
    return {"id": "PYSEC-0000-1", **extra, "affected": [{
        "package": {"ecosystem": "PyPI", "name": "Some_Pkg"},
        "ranges": [{"type": "ECOSYSTEM", "events": events},
                   {"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}],
        "versions": list(versions)}]}


@pytest.mark.parametrize(("events", "version", "affected"), [
    ([{"introduced": "0"}, {"fixed": "3.7"}], "3.10", False),
    ([{"introduced": "0"}, {"fixed": "3.7"}], "3.6.9", True),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4", True),
    ([{"introduced": "1.0"}, {"last_affected": "1.4"}], "1.4.1", False),
    ([{"introduced": "1.0"}], "0.9", False),
    ([{"introduced": "1.0"}], "99.0", True),
    # two intervals: 3.2 to 3.2.21, 4.2 to 4.2.5
    ([{"introduced": "3.2"}, {"fixed": "3.2.21"}, {"introduced": "4.2"}, {"fixed": "4.2.5"}],
     "4.2.19", False),
    ([{"introduced": "3.2"}, {"fixed": "3.2.21"}, {"introduced": "4.2"}, {"fixed": "4.2.5"}],
     "4.2.4", True),
    ([{"introduced": "3.2"}, {"fixed": "3.2.21"}, {"introduced": "4.2"}, {"fixed": "4.2.5"}],
     "4.0", False),
])
def test_ranges_follow_osv_event_rules_in_pep440_order(
        events: list[dict[str, str]], version: str, affected: bool) -> None:
    [advisory] = advisories.parse(_record(events), "t.json")
    assert advisory.package == "some-pkg"
    assert advisory.affects(version) is affected


def test_a_listed_version_is_affected_and_a_withdrawn_record_is_nothing() -> None:
    [listed] = advisories.parse(_record([], versions=("2.0",)), "t.json")
    assert listed.affects("2.0") and listed.affects("2.0.0") and not listed.affects("2.1")
    assert list(advisories.parse(_record([{"introduced": "0"}],
                                         withdrawn="2024-01-01T00:00:00Z"), "t.json")) == []


def test_a_zip_export_reads_like_a_directory(tmp_path: Path) -> None:
    export = tmp_path / "all.zip"
    with zipfile.ZipFile(export, "w") as archive:
        for record in sorted(EXPORT.glob("*.json")):
            archive.write(record, record.name)
    assert {a.id for a in advisories.load(export)} == {a.id for a in advisories.load(EXPORT)}


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "PYSEC-9.json: not valid JSON"),
    (b"[]", "PYSEC-9.json: not an OSV record (a JSON object)"),
    (json.dumps({"affected": []}).encode(), "PYSEC-9.json: not an OSV record (no 'id')"),
])
def test_a_damaged_export_names_the_record(tmp_path: Path, content: bytes, message: str) -> None:
    (tmp_path / "PYSEC-9.json").write_bytes(content)
    with pytest.raises(ConfigError) as refused:
        advisories.load(tmp_path)
    assert message in str(refused.value)


def test_a_missing_or_foreign_export_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(AdvisoriesUnavailable, match="does not exist"):
        advisories.load(tmp_path / "nowhere")
    (tmp_path / "export.tar").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="neither a directory nor a zip"):
        advisories.load(tmp_path / "export.tar")


def test_pip_audits_report_becomes_advisories_on_the_pins_it_names() -> None:
    """The shape of ``pip-audit --format json`` (2.x): per dependency, its vulns with
    their fix versions and aliases."""
    report = {"dependencies": [
        {"name": "Selenium", "version": "3.141.0", "vulns": [
            {"id": "PYSEC-2023-206", "fix_versions": ["4.15.1"], "aliases": ["CVE-2023-5590"],
             "description": "..."}]},
        {"name": "idna", "version": "3.11", "vulns": []},
        {"name": "local-thing", "skip_reason": "not on PyPI"}], "fixes": []}
    from venvdeb.qa.advisories import ONLINE, findings, online_advisories
    known = tuple(online_advisories(report))
    [found] = findings(known, {canonicalize_name("selenium"): "3.141.0",
                               canonicalize_name("idna"): "3.11"})
    assert (found.package, found.pin, found.advisory.id, found.fixed_in) == \
        ("selenium", "3.141.0", "PYSEC-2023-206", "4.15.1")
    assert found.advisory.aliases == ("CVE-2023-5590",) and found.advisory.source == ONLINE
    assert not findings(known, {canonicalize_name("selenium"): "4.41.0"}), "only that pin"
