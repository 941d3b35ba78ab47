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
    assert rows["selenium"].endswith(f"openstack-wheels-{RELEASE} venv-fixture-app-{RELEASE}  open")
    assert rows["zstd"].endswith(f"no fix known  openstack-wheels-{RELEASE}                          open")
    assert f"audit: {RELEASE}/bookworm: 2 advisories on 2 pins of 5 checked" in captured.out
    [error] = [line for line in captured.err.splitlines() if line.startswith("venvdeb: ")]
    assert "PYSEC-2023-121 in zstd 1.5.6.4" in error and "PYSEC-2023-206 in selenium" in error
    report = (target / "audit" / "audit.md").read_text()
    assert "| selenium | 3.141.0 | PYSEC-2023-206 (CVE-2023-5590) | 4.14.0 |" in report
    assert f"carry open advisories: PYSEC-2023-206 in selenium 3.141.0 (carried by " \
           f"openstack-wheels-{RELEASE} venv-fixture-app-{RELEASE})" in error
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


def _with_audit(checkout: Path, advisories: Path, waivers: str = "") -> None:
    config = checkout / "pipeline.toml"
    before = config.read_text().split("\n[audit]\n")[0]  # a previous call's, replaced
    config.write_text(before + f'\n[audit]\nadvisories = "{advisories}"\n' + waivers)


def _waiver(ident: str, expires: str, reason: str = "only the CLI tool is affected") -> str:
    return (f'[[audit.waivers]]\nid = "{ident}"\nrelease = "{RELEASE}"\n'
            f'reason = "{reason}"\nexpires = {expires}\n')


def test_promote_is_refused_naming_each_open_advisory_and_a_waiver_lets_it_through(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workdir(checkout, {"selenium": "3.141.0", "idna": "3.10"}, ("selenium==3.141.0",))
    _with_audit(checkout, EXPORT)
    assert _main(checkout, "promote", "--release", RELEASE) == 3
    err = capsys.readouterr().err
    assert f"promote refused: 1 pin of {RELEASE}/bookworm carry open advisories: " \
           f"PYSEC-2023-206 in selenium 3.141.0 (carried by openstack-wheels-{RELEASE} " \
           f"venv-fixture-app-{RELEASE})" in err, err
    assert "[[audit.waivers]]" in err
    # waived (by its alias) until a date to come: the gate passes; the empty staging
    # (nothing was published here) is what stops it then
    _with_audit(checkout, EXPORT, _waiver("CVE-2023-5590", "2099-12-31"))
    assert _main(checkout, "promote", "--release", RELEASE) == 1
    err = capsys.readouterr().err
    assert "0 advisories on 0 pins of 2 checked, 1 waived" in err, err
    assert f"bookworm-{RELEASE}-staging is empty: nothing to promote" in err
    assert _main(checkout, "audit", "--release", RELEASE) == 0
    out = capsys.readouterr().out
    assert "waived until 2099-12-31" in out.splitlines()[2], out


def test_an_expired_or_unused_waiver_is_reported_and_counts_no_more(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _workdir(checkout, {"selenium": "3.141.0"}, None)
    _with_audit(checkout, EXPORT, _waiver("PYSEC-2023-206", "2024-01-31")
                + _waiver("GHSA-j8r2-6x86-q33q", "2099-01-01"))
    assert _main(checkout, "audit", "--release", RELEASE) == 3
    out = capsys.readouterr().out
    assert f"audit: waiver of PYSEC-2023-206 for {RELEASE} expired on 2024-01-31: it counts " \
           f"again" in out
    assert f"audit: waiver of GHSA-j8r2-6x86-q33q for {RELEASE} matches no advisory of its " \
           f"pins" in out


def test_promote_with_the_advisory_source_gone_needs_the_date_of_a_clean_audit(
        checkout: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import datetime
    import shutil
    export = tmp_path / "osv"
    shutil.copytree(EXPORT, export)
    _workdir(checkout, {"idna": "3.11"}, None)
    _with_audit(checkout, export)
    assert _main(checkout, "audit", "--release", RELEASE) == 0
    capsys.readouterr()
    shutil.rmtree(export)  # the export gone (as a service unreachable)
    assert _main(checkout, "audit", "--release", RELEASE) == 69
    assert f"advisories: {export} does not exist" in capsys.readouterr().err
    assert _main(checkout, "promote", "--release", RELEASE) == 1
    today = datetime.date.today().isoformat()
    assert f"rely on the last audit with --allow-stale-audit {today}" in capsys.readouterr().err
    assert _main(checkout, "promote", "--release", RELEASE,
                 "--allow-stale-audit", "2020-01-01") == 1
    assert "cannot tell whether" in capsys.readouterr().err
    assert _main(checkout, "promote", "--release", RELEASE, "--allow-stale-audit", today) == 1
    err = capsys.readouterr().err
    assert f"relying on the audit of {today} (--allow-stale-audit)" in err
    assert "is empty: nothing to promote" in err, "the gate let it through"


@pytest.mark.parametrize(("waiver", "message"), [
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nexpires = 2027-01-01\n',
     "audit.waivers[0].reason: missing required key"),
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nreason = "x"\n',
     "audit.waivers[0].expires: missing required key"),
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nreason = " "\nexpires = 2027-01-01\n',
     "audit.waivers[0].reason: must not be empty"),
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nreason = "x"\nexpires = "2027-01-01"\n',
     "audit.waivers[0].expires: expected a date (expires = 2027-03-31, no quotes)"),
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nreason = "x"\nexpires = 2027-01-01T10:00:00\n',
     "audit.waivers[0].expires: expected a date, not a date and time"),
    ('id = "selenium is fine"\nrelease = "2099.1"\nreason = "x"\nexpires = 2027-01-01\n',
     "audit.waivers[0].id: "),
    ('id = "PYSEC-2023-206"\nrelease = "2011.1"\nreason = "x"\nexpires = 2027-01-01\n',
     "audit.waivers[0].release: unknown release '2011.1'"),
    ('id = "PYSEC-2023-206"\nrelease = "2099.1"\nreason = "x"\nexpires = 2027-01-01\nby = "me"\n',
     "audit.waivers[0].by: unknown key"),
])
def test_a_malformed_waiver_is_refused_at_load(checkout: Path, waiver: str, message: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    _workdir(checkout, {"idna": "3.11"}, None)
    _with_audit(checkout, EXPORT, "[[audit.waivers]]\n" + waiver)
    assert _main(checkout, "audit", "--release", RELEASE) == 2
    assert message in capsys.readouterr().err


def test_a_closure_change_names_the_advisories_it_fixes() -> None:
    from venvdeb.qa.audit import fixed_by
    before = {"selenium": "3.141.0", "idna": "3.10", "six": "1.16.0"}
    after = {"selenium": "4.41.0", "idna": "3.11", "six": "1.16.0"}
    assert fixed_by(EXPORT, before, after) == ["PYSEC-2023-206 in selenium 3.141.0"]
    assert fixed_by(EXPORT, after, before) == [], "a downgrade fixes nothing"
