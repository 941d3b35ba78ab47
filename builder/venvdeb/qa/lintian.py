"""lintian on a build's ``.changes``, with venvdeb's suppressions; verdicts recorded.

Every package is checked with ``--fail-on error,warning``; overrides shipped in
the packages say why each tag is accepted.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from debian.deb822 import Changes

from venvdeb.core import check_records, runner
from venvdeb.core.errors import LintianFailed

#: Tags about uploads to Debian's own archive, which ours is not: its suite
#: names (bookworm-2026.1...) and its ITP bugs for new packages.
SUPPRESSED_TAGS = "bad-distribution-in-changes-file,initial-upload-closes-no-bugs"
#: bookworm's lintian (2.116) calls any .deb with zstd members malformed, though
#: dpkg, apt and reprepro of bookworm handle them; dpkg-deb -I proves each one
#: readable instead, and the install test installs them.
ZSTD_TAG = "malformed-deb-archive"


def _zstd_debs(changes: Path, log: Path) -> list[Path]:
    with changes.open() as handle:
        names = [f["name"] for f in Changes(handle).get("Files", [])
                 if f["name"].endswith(".deb")]
    debs = [changes.parent / n for n in names if (changes.parent / n).exists()]
    out = []
    for deb in debs:
        members = runner.run(["ar", "t", str(deb)], log=log, what="ar t").output.split()
        if "data.tar.zst" in members:
            runner.run(["dpkg-deb", "-I", str(deb)], log=log, what=f"dpkg-deb -I {deb.name}")
            out.append(deb)
    return out


def lintian(changes: Path, log: Path) -> None:
    """Raise LintianFailed naming the first error or warning that is not overridden."""
    suppressed = SUPPRESSED_TAGS + (f",{ZSTD_TAG}" if _zstd_debs(changes, log) else "")
    result = runner.run(
        ["lintian", "--fail-on", "error,warning", "--suppress-tags",
         suppressed, "--tag-display-limit", "0", str(changes)],
        log=log, check=False, what="lintian", heartbeat=30)
    if result.returncode != 0:
        tags = [line for line in result.output.splitlines() if line[:2] in ("E:", "W:")]
        raise LintianFailed(
            f"lintian rejected {changes.name}: {len(tags)} error/warning tags, first: "
            f"{tags[0] if tags else result.output.strip()[-200:]}",
            hint="fix the packaging, or add an override with its reason", log=log)


def recorded(ledger: Path, changes: Path, debs: Sequence[Path], log: Path) -> None:
    """lintian on ``changes``; the verdict recorded for ``debs`` either way."""
    try:
        lintian(changes, log)
    except LintianFailed as exc:
        check_records.record(ledger, debs, "lintian", False, exc.message)
        raise
    check_records.record(ledger, debs, "lintian", True)
