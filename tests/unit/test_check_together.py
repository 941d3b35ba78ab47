"""``venvdeb check`` runs lintian and the install test at once: both run to the end and
record their verdicts; lintian's failure is the one raised when both fail."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest

from venvdeb.core.build_record import BuildRecord
from venvdeb.core.errors import InstallTestFailed, LintianFailed
from venvdeb.stages.check import _together

REC = BuildRecord("fixture-service", "90:1.0.0-0+deb12u1", Path("x.dsc"), Path("x.changes"), ())


def test_both_run_at_once_and_the_outcome_says_what_the_install_test_saw() -> None:
    both = threading.Barrier(2, timeout=10)  # each waits for the other: at once, or timeout
    ran = []

    def lint() -> None:
        both.wait()
        ran.append("lintian")

    def install() -> list[str]:
        both.wait()
        ran.append("install")
        return ["installed 3 packages"]

    outcome = _together(lint, install, REC)
    assert sorted(ran) == ["install", "lintian"]
    assert outcome.line == ("check: fixture-service 90:1.0.0-0+deb12u1: lintian passed; "
                            "install test passed: installed 3 packages")


def test_lintians_failure_is_raised_first_and_the_install_test_still_finishes() -> None:
    finished = []

    def lint() -> None:
        raise LintianFailed("lintian rejected x.changes")

    def install() -> list[str]:
        finished.append(True)
        raise InstallTestFailed("install test of fixture-service: fixture-manage failed")

    with pytest.raises(LintianFailed, match="lintian rejected"):
        _together(lint, install, REC)
    assert finished == [True], "its verdict was recorded before the error was raised"


def test_an_install_failure_alone_is_raised() -> None:
    def install() -> list[str]:
        raise InstallTestFailed("install test of fixture-service: fixture-manage failed")

    with pytest.raises(InstallTestFailed):
        _together(lambda: None, install, REC)
