"""systemd units as systemd itself reads them: ``systemd-analyze verify``.

Run by the install test on the chroot where the packages were just
installed, so each ``ExecStart=`` exists (verify checks it is executable);
the chroot has no systemd of its own, so the host's ``*.target`` units are
copied in for the check and removed after it. Quoting mistakes, unknown settings
and a line that smuggles another setting in all fail here.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from venvdeb.core import runner

HOST_UNITS = Path("/usr/lib/systemd/system")


def unit_path(root: Path, unit: str) -> str | None:
    """Where ``unit``.service is in the tree, as an absolute path inside it."""
    for base in ("lib/systemd/system", "usr/lib/systemd/system"):
        if (root / base / f"{unit}.service").exists():
            return f"/{base}/{unit}.service"
    return None


def verify(root: Path, units: Sequence[str], log: Path) -> list[str]:
    """The problems ``systemd-analyze verify`` finds in ``units`` (names
    without .service) installed under ``root``; empty when they are sound."""
    paths = [p for p in (unit_path(root, u) for u in units) if p]
    if not paths:
        return []
    targets = root / "usr/lib/systemd/system"
    made = [d for d in (targets, *targets.parents) if not d.exists()]
    targets.mkdir(parents=True, exist_ok=True)
    copied: list[Path] = []
    try:
        for target in sorted(HOST_UNITS.glob("*.target")):
            if not (targets / target.name).exists():
                shutil.copy2(target, targets / target.name, follow_symlinks=False)
                copied.append(targets / target.name)
        result = runner.run(["systemd-analyze", "verify", f"--root={root}", "--man=no", *paths],
                            log=log, check=False, what="systemd-analyze verify")
    finally:
        # the install test then looks for leftovers: take back what was lent
        for path in copied:
            path.unlink()
        for directory in made:
            if directory.is_relative_to(root) and directory != root:
                directory.rmdir()
    lines = [line.strip() for line in result.output.splitlines() if line.strip()]
    if result.returncode == 0 and not lines:
        return []
    return [f"systemd-analyze verify: {line}" for line in lines] or \
        [f"systemd-analyze verify exited {result.returncode}"]
