"""``venvdeb audit`` through ``cli.main``: a workdir's lock and a project's build
record against the OSV records of tests/data/osv-pypi (PyPA advisory database,
CC-BY-4.0: see its README)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.unit.conftest import RELEASE
from tests.unit.test_cli import _main
from venvdeb.core import build_record

EXPORT = ROOT / "tests" / "data" / "osv-pypi"
TARGET = Path("work") / "releases" / RELEASE / "bookworm"


def _workdir(checkout: Path, pins: dict[str, str], closure: tuple[str, ...] | None) -> Path:
    lock = checkout / TARGET / "lock" / "lock.txt"
    lock.parent.mkdir(parents=True)
    lock.write_text("".join(f"{name}=={version} \\\n    --hash=sha256:{'a' * 64}\n"
                            for name, version in pins.items()))
    if closure is not None:
        out = checkout / TARGET / "projects" / "fixture-app"
        out.mkdir(parents=True)
        build_record.write(out, build_record.BuildRecord(
            "fixture-app", "1.0.0-0+deb12u1", out / "x.dsc", out / "x.changes", (),
            closure))
    return checkout / TARGET


def test_affected_pins_are_a_table_naming_who_carries_them_and_exit_3(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the 2025.1 pins of the export's positives and negative controls
    target = _workdir(checkout, {"selenium": "3.141.0", "idna": "3.10", "Django": "4.2.19",
                                 "zstd": "1.5.6.4", "requests": "2.32.3"},
                      ("selenium==3.141.0", "idna==3.10"))
    assert _main(checkout, "audit", "--release", RELEASE, "--advisories", str(EXPORT)) == 3
    captured = capsys.readouterr()
    rows = {line.split()[0]: line for line in captured.out.splitlines()[2:]
            if line and not line.startswith("audit:")}
    assert set(rows) == {"selenium", "zstd"}, captured.out
    assert rows["selenium"].split()[1:3] == ["3.141.0", "PYSEC-2023-206"]
    assert "(CVE-2023-5590)  4.14.0" in rows["selenium"]
    assert rows["selenium"].endswith(f"openstack-wheels-{RELEASE} venv-fixture-app-{RELEASE}")
    assert rows["zstd"].endswith(f"no fix known  openstack-wheels-{RELEASE}")
    assert f"audit: {RELEASE}/bookworm: 2 advisories on 2 pins of 5 checked" in captured.out
    [error] = [line for line in captured.err.splitlines() if line.startswith("venvdeb: ")]
    assert "PYSEC-2023-121 (zstd 1.5.6.4)" in error and "PYSEC-2023-206 (selenium" in error
    report = (target / "audit" / "audit.md").read_text()
    assert "| selenium | 3.141.0 | PYSEC-2023-206 (CVE-2023-5590) | 4.14.0 |" in report
    # with the project named: only what its venv carries
    assert _main(checkout, "audit", "fixture-app", "--release", RELEASE,
                 "--advisories", str(EXPORT), "--json") == 3
    captured = capsys.readouterr()
    found = json.loads(captured.out)["findings"]
    assert [(f["package"], f["advisory"], f["carried_by"]) for f in found] == [
        ("selenium", "PYSEC-2023-206", [f"venv-fixture-app-{RELEASE}"])]
    assert "1 advisory on 1 pin of 2 checked" in captured.err


def test_clean_pins_exit_0_and_an_unbuilt_project_is_said(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workdir(checkout, {"selenium": "4.41.0", "idna": "3.11"}, None)
    assert _main(checkout, "audit", "--release", RELEASE, "--advisories", str(EXPORT)) == 0
    out = capsys.readouterr().out
    assert "audit: not built here, their closures unknown: fixture-app" in out
    assert "0 advisories on 0 pins of 2 checked (6 PyPI advisories in" in out


def test_no_advisory_source_or_no_lock_is_one_line_with_its_own_status(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _main(checkout, "audit", "--release", RELEASE, "--advisories", str(EXPORT)) == 1
    assert f"no lock for {RELEASE} on bookworm" in capsys.readouterr().err
    _workdir(checkout, {"idna": "3.11"}, None)
    assert _main(checkout, "audit", "--release", RELEASE) == 69
    err = capsys.readouterr().err
    assert "audit: no advisory source" in err and "--advisories PATH" in err
