"""Small file helpers used across venvdeb: digests, hard links, atomic writes,
and reading back the JSON state venvdeb writes."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from venvdeb.core.errors import StateFileError


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


def write_atomic(path: Path, data: str | bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` whole with ``data``, or leave it as it was (``mode``: 0600
    for secrets, which are then never readable by others, not even briefly).

    The bytes go to a temporary file of a unique name in the same directory, are
    flushed to disk (fsync), renamed over ``path``, and the directory is synced:
    a crash, a full disk or two threads at once never leave a truncated file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            # mkstemp makes 0600; set on the open file, not by name (in a directory
            # another user owns, the name could be swapped for a link meanwhile)
            os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.filename is None:
            exc.filename = str(path)  # a failed write names no file: name the one meant
        raise
    _sync_dir(path.parent)


def _sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with contextlib.suppress(OSError):  # some filesystems cannot sync a directory
            os.fsync(fd)
    finally:
        os.close(fd)


def copy_out(source: Path, dest: Path) -> None:
    """Copy what a confined step produced (``source``, in its scratch directory) to
    ``dest``; a failed write (a full workdir) names ``dest``, not the scratch copy."""
    try:
        shutil.copyfile(source, dest, follow_symlinks=False)
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(dest)) from None


def write_if_changed(path: Path, text: str) -> bool:
    """Replace ``path`` whole with ``text`` unless it already says that; True if written."""
    if path.exists() and path.read_bytes() == text.encode("utf-8"):
        return False
    write_atomic(path, text)
    return True


def read_json(path: Path, *, hint: str | None = None) -> Any:
    """The JSON that venvdeb wrote to ``path``; a truncated or unreadable file is a
    ``StateFileError`` naming it and what to do (``hint``; default: delete it and rerun)."""
    try:
        return json.loads(path.read_bytes())
    except (ValueError, OSError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StateFileError(
            f"{path} is truncated or unreadable ({reason})",
            hint=hint or "delete it and rerun the command that wrote it") from None


def write_private(path: Path, text: str) -> bool:
    """Like :func:`write_if_changed`, for secrets: 0600 from its first byte."""
    if path.exists() and path.read_text() == text and not path.stat().st_mode & 0o077:
        return False
    write_atomic(path, text, mode=0o600)
    return True
