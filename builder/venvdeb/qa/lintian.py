"""lintian on a build's ``.changes``, with venvdeb's suppressions; verdicts recorded.

Every package is checked with ``--fail-on error,warning``; overrides shipped in
the packages say why each tag is accepted. A package for the host's own
distribution is checked by the host's lintian; one for another distribution
(trixie on a bookworm host) by that distribution's lintian, in a tree of it
(``tree_for``: made once, cached, entered read-only and unprivileged like the
sdist build chroot), on a copy of the ``.changes`` and the files it lists.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from debian.deb822 import Changes

from venvdeb.core import check_records, host, images, mounts, runner, sandbox
from venvdeb.core.config import Distribution
from venvdeb.core.errors import LintianFailed
from venvdeb.core.workdir import shared_cache
from venvdeb.python.chroot import BUILDER, PATH, builder

#: What a distribution's lintian tree holds.
LINTIAN_TREE = ("lintian",)

#: Tags about uploads to Debian's own archive, which ours is not: its suite
#: names (bookworm-2026.1...) and its ITP bugs for new packages.
SUPPRESSED_TAGS = "bad-distribution-in-changes-file,initial-upload-closes-no-bugs"
#: bookworm's lintian (2.116) and trixie's (2.122) call any .deb with zstd members
#: malformed, though dpkg, apt and reprepro of both handle them; dpkg-deb -I proves
#: each one readable instead, and the install test installs them.
ZSTD_TAG = "malformed-deb-archive"


def tree_for(distribution: Distribution, log: Path) -> Path | None:
    """None for the host's own distribution (its lintian is the host's); else a tree
    of ``distribution`` holding its lintian (made on first use)."""
    if host.native(distribution):
        return None
    return images.tree(distribution.name, distribution.architecture, distribution.mirror,
                       shared_cache() / "trees", log, packages=LINTIAN_TREE,
                       what=f"mmdebstrap (lintian of {distribution.name})")


def _listed(changes: Path) -> list[str]:
    with changes.open() as handle:
        return [f["name"] for f in Changes(handle).get("Files", [])]


def _zstd_debs(changes: Path, log: Path) -> list[Path]:
    names = [n for n in _listed(changes) if n.endswith(".deb")]
    debs = [changes.parent / n for n in names if (changes.parent / n).exists()]
    out = []
    for deb in debs:
        members = runner.run(["ar", "t", str(deb)], log=log, what="ar t").output.split()
        if "data.tar.zst" in members:
            runner.run(["dpkg-deb", "-I", str(deb)], log=log, what=f"dpkg-deb -I {deb.name}")
            out.append(deb)
    return out


def lintian(changes: Path, log: Path, *, tree: Path | None = None) -> None:
    """Raise LintianFailed naming the first error or warning that is not overridden.
    ``tree``: run the lintian of that tree (``tree_for``), not the host's."""
    suppressed = SUPPRESSED_TAGS + (f",{ZSTD_TAG}" if _zstd_debs(changes, log) else "")
    if tree is None:
        result = runner.run(_argv(suppressed, str(changes)), log=log, check=False,
                            what="lintian", heartbeat=30)
    else:
        result = _in_tree(changes, tree, suppressed, log)
    if result.returncode != 0:
        tags = [line for line in result.output.splitlines() if line[:2] in ("E:", "W:")]
        raise LintianFailed(
            f"lintian rejected {changes.name}: {len(tags)} error/warning tags, first: "
            f"{tags[0] if tags else result.output.strip()[-200:]}",
            hint="fix the packaging, or add an override with its reason", log=log)


def _argv(suppressed: str, changes: str) -> list[str]:
    return ["lintian", "--fail-on", "error,warning", "--suppress-tags", suppressed,
            "--tag-display-limit", "0", changes]


def _in_tree(changes: Path, tree: Path, suppressed: str, log: Path) -> runner.Result:
    """The tree's lintian, as the unprivileged builder of a user namespace, offline,
    on copies (the originals may sit in a directory closed to that user)."""
    who = builder()
    with sandbox.scratch("lintian", owner=who) as scratch:
        for name in (changes.name, *_listed(changes)):
            source = changes.parent / name
            if source.is_file():
                shutil.copyfile(source, scratch / name)
        sandbox.give(scratch, who)
        view = mounts.View((mounts.Bind(scratch, images.SCRATCH, writable=True),), tree,
                           read_only=True, userns=True, user=(BUILDER, BUILDER),
                           cwd=images.SCRATCH)
        env = runner.clean_environment({"PATH": PATH, "HOME": images.SCRATCH,
                                        "TMPDIR": "/tmp"})
        return runner.run(view.wrap(_argv(suppressed, f"{images.SCRATCH}/{changes.name}")),
                          log=log, env=env, check=False, what=f"lintian ({tree.name})",
                          heartbeat=30)


def recorded(ledger: Path, changes: Path, debs: Sequence[Path], log: Path, *,
             tree: Path | None = None) -> None:
    """lintian on ``changes``; the verdict recorded for ``debs`` either way."""
    try:
        lintian(changes, log, tree=tree)
    except LintianFailed as exc:
        check_records.record(ledger, debs, "lintian", False, exc.message)
        raise
    check_records.record(ledger, debs, "lintian", True)
