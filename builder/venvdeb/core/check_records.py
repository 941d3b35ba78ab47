"""What each built file passed: lintian and the clean-chroot install test.

Keyed by the file's sha256 in ``<workdir>/state/checks.json``, so a result
belongs to exact bytes: a rebuilt or damaged file has no result until it is
checked again, and publishing refuses it.
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from venvdeb.core import ledger as ledger_mod
from venvdeb.core.files import sha256

Check = Literal["lintian", "install"]
CHECKS: tuple[Check, ...] = ("lintian", "install")


def record(ledger: Path, files: Iterable[Path], check: Check, passed: bool,
           detail: str = "") -> None:
    digests = [(path, sha256(path)) for path in files]
    with ledger_mod.change(ledger) as data:
        for path, digest in digests:
            entry = data.setdefault(digest, {})
            entry["file"] = path.name
            entry[check] = {"result": "passed" if passed else "failed", "detail": detail,
                            "time": int(time.time())}


def defer(ledger: Path, files: Iterable[Path], check: Check, detail: str) -> None:
    """``check`` left to the publisher for these exact bytes (``deferred``): an
    unprivileged worker cannot boot a node. Never counts as passed, except that an
    upload may carry it to the publisher, which then runs the check itself."""
    digests = [(path, sha256(path)) for path in files]
    with ledger_mod.change(ledger) as data:
        for path, digest in digests:
            entry = data.setdefault(digest, {})
            entry["file"] = path.name
            entry[check] = {"result": "deferred", "detail": detail, "time": int(time.time())}


def result(ledger: Path, path: Path, check: Check, digest: str | None = None) -> str | None:
    """``passed``, ``failed``, ``deferred`` or None (never checked) for these exact
    bytes."""
    entry = ledger_mod.read(ledger).get(digest or sha256(path), {})
    found = entry.get(check)
    return str(found["result"]) if isinstance(found, dict) else None


def known_names(ledger: Path) -> dict[str, str]:
    """File name -> sha256 of every checked file (to tell 'changed since' from 'never')."""
    return {str(v.get("file")): k for k, v in ledger_mod.read(ledger).items()}
