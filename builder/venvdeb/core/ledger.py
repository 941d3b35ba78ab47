"""Read-modify-write of a JSON ledger in the workdir, one writer at a time.

Builds of several projects at once (buildbot workers sharing a workdir, or
``venvdeb pipeline --build-jobs``) record versions and check results in the same
files: each change takes an exclusive lock beside the file, then replaces the
file whole.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def read(path: Path) -> dict[str, Any]:
    """The ledger's data as it is now (empty when there is none); changes nothing."""
    return json.loads(path.read_text()) if path.exists() else {}


@contextmanager
def change(path: Path) -> Iterator[dict[str, Any]]:
    """The ledger's data, written back when the block ends without an error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        before = path.read_text() if path.exists() else ""
        data: dict[str, Any] = json.loads(before) if before else {}
        yield data
        text = json.dumps(data, indent=1, sort_keys=True) + "\n"
        if text != before:  # a lookup that finds its entry writes nothing
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(text)
            tmp.replace(path)
