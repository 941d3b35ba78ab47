"""How fast this host is today, measured the same way by every bench: one line printed
with the bench's figures, so that runs of different days (or machines) can be compared.

The same commit to staging took 61 s on one day and 140 s on another, every step about
twice as long, with nothing in the code to explain it; without a fixed yardstick a
slower host and a slower venvdeb look alike. Two probes, a second or two each:

- CPU: ``compile()`` of the standard library's ``argparse.py`` source, over and over
  (one core; what compileall, pip's resolver and lintian's Perl spend their time on is
  this kind of work);
- files: creating, then removing, small files in the directory the bench works in (what
  unpacking a venv costs the filesystem: dpkg, lintian, mmdebstrap's chroots).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

#: compile() calls of the CPU probe
COMPILES = 60
#: files the file probe creates (in directories of 100) and removes
FILES = 4000


def cpu_seconds() -> float:
    source = Path(argparse.__file__).read_text()
    start = time.perf_counter()
    for _ in range(COMPILES):
        compile(source, "argparse.py", "exec", dont_inherit=True)
    return time.perf_counter() - start


def file_seconds(where: Path) -> float:
    top = Path(tempfile.mkdtemp(prefix="venvdeb-bench-host-", dir=where))
    try:
        data = b"x" * 1024
        start = time.perf_counter()
        for i in range(FILES):
            d = top / str(i // 100)
            if i % 100 == 0:
                d.mkdir()
            (d / f"{i}.py").write_bytes(data)
        shutil.rmtree(top)
        return time.perf_counter() - start
    finally:
        shutil.rmtree(top, ignore_errors=True)


def line(where: Path | None = None) -> str:
    """The host's speed as one line (``where``: the directory the bench works in, by
    default TMPDIR's)."""
    where = where or Path(os.environ.get("TMPDIR") or tempfile.gettempdir())
    return (f"host: CPU {cpu_seconds():.2f} s ({COMPILES} compile() of argparse.py, one core); "
            f"files {file_seconds(where):.2f} s ({FILES:,} created and removed in {where}); "
            f"load {os.getloadavg()[0]:.1f}: compare with another run's line before its figures")
