"""The buildbot master as the publisher: it alone holds the version ledger, the
signing key and the repository (its settings' ``workdir``); workers build in
workdirs of their own and hand back uploads.

Versions are assigned once, here: a project build's worker reports the inputs
its source package is known by (``venvdeb source --inputs``: the ledger key and
the inputs' digest), the master gives them a serial and a date from its own
ledger (a build property), and the worker's ``venvdeb source --assigned``
makes the source package with them. Two workers building at once never make the
same version for other content, nor a lower one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import versions
from venvdeb.core.errors import PublishError

#: ``inputs: <source>/<release>/<distribution>/<upstream_version> <sha256>``
INPUTS = re.compile(r"inputs: (?P<key>\S+) (?P<digest>[0-9a-f]{64})")
UPSTREAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~]*")


@dataclass(frozen=True)
class Inputs:
    key: str
    digest: str


def inputs(stdout: str, prefix: str = "") -> dict[str, str]:
    """The last ``inputs:`` line of a worker's ``venvdeb source|reqdeb --inputs`` as build
    properties named with ``prefix`` (none when it printed none: the next step says so)."""
    found = [m for m in map(INPUTS.fullmatch, stdout.splitlines()) if m]
    if not found:
        return {}
    return {f"{prefix}ledger_key": found[-1]["key"],
            f"{prefix}inputs_digest": found[-1]["digest"]}


def check(expected: str, versioned: bool, key: object, digest: object) -> Inputs:
    """A worker's report, allowlisted before it reaches the ledger: the key this builder
    expects (``versioned``: followed by an upstream version, a project's
    ``<project>/<release>/<distribution>/<version>``) and a sha256."""
    shown = f"{expected}<version>" if versioned else expected
    good = isinstance(key, str) and (
        UPSTREAM.fullmatch(key[len(expected):]) is not None and key.startswith(expected)
        if versioned else key == expected)
    if not good:
        raise PublishError(f"the worker reported inputs {key!r}, not of {shown}",
                           hint="the worker's 'venvdeb ... --inputs' must run the "
                                "master's venvdeb on the same config")
    assert isinstance(key, str)
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise PublishError(f"the worker reported no inputs digest for {key}",
                           hint="see the inputs step's log")
    return Inputs(key, digest)


def assign(ledger: Path, release: str, tag: str, reported: Inputs,
           note: str) -> versions.Assigned:
    """The serial and date of the inputs in the publisher's ledger (new inputs: the
    next serial, recorded with ``note``, the rebuild reason)."""
    return versions.assign(ledger, reported.key, release, reported.digest, tag=tag, note=note)
