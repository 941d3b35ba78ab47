"""systemd units as systemd itself reads them: ``systemd-analyze verify``.

Run by the install test on the booted node where the packages were just
installed, with the node's own systemd (bookworm's 252, trixie's 257: each
distribution's units are read by its own systemd, never by the build host's), so
each ``ExecStart=`` exists (verify checks it is executable) and every unit they
name is there. Quoting mistakes, unknown settings and a line that smuggles
another setting in all fail here.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from venvdeb.core import runner

#: runs a command on the node: (argv) -> its result (exit status and output)
Run = Callable[[Sequence[str]], runner.Result]


def unit_path(root: Path, unit: str) -> str | None:
    """Where ``unit``.service is in the tree, as an absolute path inside it."""
    for base in ("lib/systemd/system", "usr/lib/systemd/system"):
        if (root / base / f"{unit}.service").exists():
            return f"/{base}/{unit}.service"
    return None


def verify(run: Run, root: Path, units: Sequence[str]) -> list[str]:
    """The problems the node's ``systemd-analyze verify`` finds in ``units`` (names
    without .service) installed under ``root`` (the node's tree, seen from here);
    empty when they are sound."""
    paths = [p for p in (unit_path(root, u) for u in units) if p]
    if not paths:
        return []
    result = run(["systemd-analyze", "verify", "--man=no", *paths])
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    if result.returncode == 0 and not lines:
        return []
    return [f"systemd-analyze verify: {line}" for line in lines] or \
        [f"systemd-analyze verify exited {result.returncode}"]
