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


def write_private(path: Path, text: str) -> bool:
    """Like :func:`write_if_changed`, for secrets: the file is 0600 from its first byte
    (never briefly readable by others), synced, then renamed into place."""
    if path.exists() and path.read_text() == text and not path.stat().st_mode & 0o077:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)
    return True
