"""Small file helpers used across venvdeb: digests, hard links, atomic writes."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


def sha256(path: Path) -> str:
    """The hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link ``source`` to ``dest`` (another filesystem: copy it)."""
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def write_if_changed(path: Path, text: str) -> bool:
    """Replace ``path`` whole with ``text`` unless it already says that; True if written."""
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return True
