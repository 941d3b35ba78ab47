"""Versions that follow content: same inputs, same version; new inputs, higher.

A content digest alone cannot sort, so each (package, distribution) keeps a
ledger in the workdir: the first time a digest is seen it gets the next
serial and the current time, which then serves as the changelog date and
``SOURCE_DATE_EPOCH``. Version: ``<release>.<serial>+<digest[:8]>``.
"""
from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from venvdeb.core import ledger as ledger_mod


@dataclass(frozen=True)
class Assigned:
    version: str
    serial: int
    digest: str
    epoch: int
    note: str = ""  # why this version was made (recorded with it, e.g. a rebuild reason)

    #: not yet in the ledger: what ``assign`` would record (``peek``)
    new: bool = False

    @property
    def date(self) -> str:
        return email.utils.formatdate(self.epoch, usegmt=False)

    @property
    def year(self) -> str:
        """The copyright year of the changelog date (UTC)."""
        return str(time.gmtime(self.epoch).tm_year)


def format_version(release: str, serial: int, digest: str) -> str:
    return f"{release}.{serial}+{digest[:8]}"


def _next(entries: list[dict[str, Any]], release: str, digest: str, floor: str | None) -> int:
    serial = max((e["serial"] for e in entries), default=0) + 1
    while floor is not None and \
            Version(format_version(release, serial, digest)) <= Version(floor):
        serial += 1
    return serial


def _found(entries: list[dict[str, Any]], release: str, digest: str) -> Assigned | None:
    for entry in entries:
        if entry["digest"] == digest:
            return Assigned(format_version(release, entry["serial"], digest),
                            entry["serial"], digest, entry["epoch"], entry.get("note", ""))
    return None


def peek(ledger: Path, key: str, release: str, digest: str, *, now: float | None = None,
         floor: str | None = None, note: str = "") -> Assigned:
    """What ``assign`` would give, without recording anything (plans and dry runs):
    the recorded version for a known digest, else the next serial, ``new=True``."""
    data = json.loads(ledger.read_text()) if ledger.exists() else {}
    entries = data.get(key, [])
    found = _found(entries, release, digest)
    if found is not None:
        return found
    serial = _next(entries, release, digest, floor)
    epoch = int(now if now is not None else time.time())
    return Assigned(format_version(release, serial, digest), serial, digest, epoch, note, new=True)


def assign(ledger: Path, key: str, release: str, digest: str, *,
           now: float | None = None, floor: str | None = None, note: str = "") -> Assigned:
    """Version for ``digest`` under ``key``; record it if new.

    ``floor`` (a version already published) makes a new serial sort above it.
    """
    with ledger_mod.change(ledger) as data:
        entries = data.setdefault(key, [])
        found = _found(entries, release, digest)
        if found is not None:
            return found
        serial = _next(entries, release, digest, floor)
        epoch = int(now if now is not None else time.time())
        entries.append({"digest": digest, "serial": serial, "epoch": epoch,
                        **({"note": note} if note else {})})
    return Assigned(format_version(release, serial, digest), serial, digest, epoch, note)
