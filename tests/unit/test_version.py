from __future__ import annotations

from pathlib import Path

from debian.debian_support import Version

from venvdeb.core import versions


def test_same_digest_same_version_and_date(tmp_path: Path) -> None:
    ledger = tmp_path / "versions.json"
    first = versions.assign(ledger, "pkg/bookworm", "2026.1", "a" * 64, tag="deb12", now=1000)
    again = versions.assign(ledger, "pkg/bookworm", "2026.1", "a" * 64, tag="deb12", now=2000)
    assert first == again
    assert first.version == "2026.1+deb12u1.aaaaaaaa" and first.epoch == 1000


def test_new_digest_sorts_higher_and_old_digest_keeps_its_version(tmp_path: Path) -> None:
    ledger = tmp_path / "versions.json"
    a = versions.assign(ledger, "k", "2026.1", "f" * 64, tag="deb12", now=1)
    b = versions.assign(ledger, "k", "2026.1", "0" * 64, tag="deb12", now=2)
    assert Version(b.version) > Version(a.version)
    assert versions.assign(ledger, "k", "2026.1", "f" * 64, tag="deb12").version == a.version
    # serial 10 sorts above 9 (numeric, not lexical)
    for i in range(10):
        last = versions.assign(ledger, "k", "2026.1", f"{i + 1:064x}", tag="deb12", now=3)
    assert last.serial == 12 and Version(last.version) > Version("2026.1+deb12u9.ffffffff")


def test_keys_are_independent_and_floor_is_respected(tmp_path: Path) -> None:
    ledger = tmp_path / "versions.json"
    versions.assign(ledger, "k", "2026.1", "1" * 64, tag="deb12")
    other = versions.assign(ledger, "other", "2026.1", "1" * 64, tag="deb12")
    assert other.serial == 1
    floored = versions.assign(ledger, "third", "2026.1", "2" * 64, tag="deb12",
                               floor="2026.1+deb12u4.ffffffff")
    assert floored.serial == 5


def test_the_distribution_comes_before_the_serial(tmp_path: Path) -> None:
    """As Debian's stable updates: +deb13u1 sorts above +deb12u<any serial>."""
    ledger = tmp_path / "versions.json"
    old = versions.assign(ledger, "pkg/bookworm", "2026.1", "a" * 64, tag="deb12", now=1)
    for i in range(11):
        old = versions.assign(ledger, "pkg/bookworm", "2026.1", f"{i:064x}", tag="deb12", now=2)
    new = versions.assign(ledger, "pkg/trixie", "2026.1", "a" * 64, tag="deb13", now=3)
    assert old.version == "2026.1+deb12u12.00000000" and new.version == "2026.1+deb13u1.aaaaaaaa"
    assert Version(new.version) > Version(old.version)


def test_a_version_is_also_a_python_version() -> None:
    """venvdeb's own package (stdeb) takes it as its Python version: PEP 440 valid."""
    from packaging.version import Version as PythonVersion
    text = versions.format_version("0.2.0", 3, "f81879a0" * 8, "deb12")
    assert text == "0.2.0+deb12u3.f81879a0" and str(PythonVersion(text)) == text
