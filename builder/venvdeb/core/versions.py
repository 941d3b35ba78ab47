"""Versions that follow content: same inputs, same version; new inputs, higher.

A content digest alone cannot sort, so each (package, distribution) keeps a
ledger in the workdir: the first time a digest is seen it gets the next
serial and the current time, which then serves as the changelog date and
``SOURCE_DATE_EPOCH``. Version: ``<base>+deb<N>u<serial>+<digest[:8]>``: the
distribution before the serial, as Debian's stable updates carry it, so that a
trixie build (``+deb13u1``) sorts above every bookworm build (``+deb12u<any>``)
of the same base and the two never collide in the pool.
"""
from __future__ import annotations

import dataclasses
import email.utils
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


def format_version(base: str, serial: int, digest: str, tag: str) -> str:
    """``2026.1+deb12u3.1a2b3c4d``; ``tag`` is the distribution's (``deb12``). One '+'
    only: venvdeb's own package carries it as its Python version too (PEP 440's local
    version is ``+`` and dot-separated parts)."""
    return f"{base}+{tag}u{serial}.{digest[:8]}"


def _decide(entries: list[dict[str, Any]], base: str, digest: str, tag: str, now: float | None,
            floor: str | None, note: str) -> Assigned:
    """The recorded version of ``digest``, else the next serial (``new=True``)."""
    for entry in entries:
        if entry["digest"] == digest:
            return Assigned(format_version(base, entry["serial"], digest, tag),
                            entry["serial"], digest, entry["epoch"], entry.get("note", ""))
    serial = max((e["serial"] for e in entries), default=0) + 1
    while floor is not None and \
            Version(format_version(base, serial, digest, tag)) <= Version(floor):
        serial += 1
    epoch = int(now if now is not None else time.time())
    return Assigned(format_version(base, serial, digest, tag), serial, digest, epoch, note,
                    new=True)


def peek(ledger: Path, key: str, base: str, digest: str, *, tag: str, now: float | None = None,
         floor: str | None = None, note: str = "") -> Assigned:
    """What ``assign`` would give, without recording anything (plans and dry runs)."""
    return _decide(ledger_mod.read(ledger).get(key, []), base, digest, tag, now, floor, note)


def assign(ledger: Path, key: str, base: str, digest: str, *, tag: str,
           now: float | None = None, floor: str | None = None, note: str = "") -> Assigned:
    """Version for ``digest`` under ``key``; record it if new.

    ``floor`` (a version already published) makes a new serial sort above it.
    """
    with ledger_mod.change(ledger) as data:
        entries = data.setdefault(key, [])
        decided = _decide(entries, base, digest, tag, now, floor, note)
        if decided.new:
            entries.append({"digest": digest, "serial": decided.serial, "epoch": decided.epoch,
                            **({"note": note} if note else {})})
    return dataclasses.replace(decided, new=False)


def adopt(ledger: Path, key: str, digest: str, serial: int, epoch: int, note: str = "") -> None:
    """Record the serial and date another ledger gave ``digest`` (the publisher's, on a
    worker: versions are assigned once, there), replacing what this one had for it."""
    with ledger_mod.change(ledger) as data:
        entries = [e for e in data.setdefault(key, []) if e["digest"] != digest]
        entries.append({"digest": digest, "serial": serial, "epoch": epoch,
                        **({"note": note} if note else {})})
        data[key] = entries
