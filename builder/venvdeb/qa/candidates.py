"""A clean chroot that sees candidate packages as a local apt repository."""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from venvdeb.core import images, runner, sandbox
from venvdeb.core.config import Distribution
from venvdeb.core.workdir import shared_cache
from venvdeb.qa import chroot, node

#: where the candidates appear inside the chroot, and the sources line naming them
CANDIDATES = "/srv/venvdeb-candidates"
SOURCES = "etc/apt/sources.list.d/venvdeb-candidates.list"


def repo(debs: Sequence[Path], into: Path, log: Path) -> None:
    """A flat apt repository (``deb [trusted=yes] file:DIR ./``) of ``debs``, readable
    by anyone (root in the chroot is a mapped id; a worker's umask is 077)."""
    into.mkdir(parents=True, exist_ok=True)
    for deb in debs:
        sandbox.lend(deb, into / deb.name)
    out = runner.run(["apt-ftparchive", "packages", "."], cwd=into, log=log,
                     what="apt-ftparchive").output
    (into / "Packages").write_text(out)
    (into / "Packages").chmod(0o644)
    os.chmod(into, 0o755)


def image(dist: Distribution, log: Path, *, refresh: bool = False) -> Path:
    """The clean ``minbase`` system of ``dist`` with systemd (a node that boots:
    ``venvdeb.qa.node``), cached in ~/.cache/venvdeb/chroot."""
    return images.tarball("minbase", dist.name, dist.architecture, dist.mirror,
                          shared_cache() / "chroot", log, refresh=refresh,
                          packages=node.NODE_PACKAGES, what="mmdebstrap (install-test node)")


@contextmanager
def candidate_chroot(dist: Distribution, debs: Sequence[Path], log: Path, *,
                     refresh: bool = False) -> Iterator[chroot.Chroot]:
    """A fresh clean chroot of ``dist`` that sees ``debs`` as a local apt repository
    at ``CANDIDATES`` (``enable`` puts it in its sources)."""
    tarball = image(dist, log, refresh=refresh)
    with tempfile.TemporaryDirectory(prefix="venvdeb-candidates-") as tmp:
        candidates = Path(tmp) / "repo"
        repo(tuple(debs), candidates, log)
        binds = [chroot.Bind(candidates, CANDIDATES)]
        with chroot.session(tarball, log, binds,
                            apt_cache=shared_cache() / "apt-archives") as box:
            yield box


def enable(box: chroot.Chroot) -> None:
    box.put(SOURCES, f"deb [trusted=yes] file:{CANDIDATES} ./\n")


def disable(box: chroot.Chroot) -> None:
    box.remove(SOURCES)
