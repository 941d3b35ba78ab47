"""Progress lines on stderr: ``[done/total] what``, thread-safe."""
from __future__ import annotations

import sys
import threading


class Progress:
    def __init__(self, stage: str, total: int, *, quiet: bool = False) -> None:
        self.stage = stage
        self.total = total
        self.done = 0
        self.quiet = quiet
        self._lock = threading.Lock()

    def step(self, message: str) -> None:
        with self._lock:
            self.done += 1
            if not self.quiet:
                width = len(str(self.total))
                sys.stderr.write(f"{self.stage}: [{self.done:{width}}/{self.total}] {message}\n")
                sys.stderr.flush()


def say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def size(n: int) -> str:
    """``28.5 MB``, or ``12 kB`` for small files."""
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} kB"
