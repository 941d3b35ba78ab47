"""The gate every package passes before publishing: lintian, then an install test.

Verdicts are recorded per file digest (venvdeb.core.check_records), so a check
that passed for these exact bytes is not run again unless forced; a failure is
recorded and raised.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from venvdeb.core import check_records
from venvdeb.core.check_records import Check
from venvdeb.core.config import Distribution
from venvdeb.core.errors import InstallTestFailed
from venvdeb.core.progress import say
from venvdeb.qa import lintian


def pending(ledger: Path, debs: Sequence[Path], check: Check) -> bool:
    """Some of ``debs`` have not passed ``check`` as they are now."""
    return any(check_records.result(ledger, d, check) != "passed" for d in debs)


def lint(ledger: Path, changes: Path, debs: Sequence[Path], log: Path, *,
         distribution: Distribution, force: bool = False, stage: str = "check") -> bool:
    """lintian (``distribution``'s) on ``changes`` unless ``debs`` passed it (said as
    ``<stage>: lintian ...``); whether it ran."""
    if not force and not pending(ledger, debs, "lintian"):
        return False
    say(f"{stage}: lintian {changes.name}")
    lintian.recorded(ledger, changes, debs, log, tree=lintian.tree_for(distribution, log))
    return True


def install(ledger: Path, debs: Sequence[Path], test: Callable[[], list[str]], *,
            force: bool = False, blame: Sequence[Path] | None = None) -> list[str] | None:
    """``test()`` (what it saw) unless every deb passed it; None when up to date.
    A failure is recorded against ``blame`` (default: every deb)."""
    if not force and not pending(ledger, debs, "install"):
        return None
    try:
        seen = test()
    except InstallTestFailed as exc:
        check_records.record(ledger, blame if blame is not None else debs, "install", False,
                             exc.message)
        raise
    check_records.record(ledger, debs, "install", True, "; ".join(seen))
    return seen
