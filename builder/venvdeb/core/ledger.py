"""Read-modify-write of a JSON ledger in the workdir, one writer at a time.

Builds of several projects at once (buildbot workers sharing a workdir, or
``venvdeb pipeline --build-jobs``) record versions and check results in the same
files: each change takes an exclusive lock beside the file, then replaces the
file whole.
"""
from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from venvdeb.core.errors import StateFileError
from venvdeb.core.files import read_json, write_atomic


def read(path: Path) -> dict[str, Any]:
    """The ledger's data as it is now (empty when there is none); changes nothing."""
    return _parse(path) if path.exists() else {}


_HINT = "restore it from a backup, or move it aside and rerun (the ledger then starts empty)"


def _parse(path: Path) -> dict[str, Any]:
    data = read_json(path, hint=_HINT)
    if not isinstance(data, dict):
        raise StateFileError(f"{path} holds no ledger (a JSON object)", hint=_HINT)
    return data


@contextmanager
def change(path: Path) -> Iterator[dict[str, Any]]:
    """The ledger's data, written back when the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _parse(path) if path.exists() else {}
        before = json.dumps(data, indent=1, sort_keys=True) + "\n" if data else ""
        yield data
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        if text != before:  # a lookup that finds its entry writes nothing
            write_atomic(path, text)
