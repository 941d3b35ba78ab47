"""Parity at the level of files, for projects whose packages a node cannot run
(nova-compute pulls libvirt and qemu): Debian's packages fetched with
``apt-get download`` in a clean chroot, ours from the workdir, both read with
python-debian. The facts are the packages, what they put under /etc (kind and
mode as packed; owners set by maintainer scripts are not seen), in /usr/bin,
and the units they ship (value ``shipped``: no state without a node).
"""
from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path

from debian.debfile import DebFile

from venvdeb.core import mounts
from venvdeb.core.config import Distribution
from venvdeb.qa import candidates, chroot
from venvdeb.qa.parity import Fact, Scope
from venvdeb.qa.parity_node import INIT_SCRIPT, UNIT_FILE, is_etc

DOWNLOADS = "/srv/venvdeb-debian-debs"


def fetch(dist: Distribution, names: Sequence[str], into: Path, log: Path) -> list[Path]:
    """Debian's packages ``names`` (the mirror's candidate versions) into ``into``."""
    into.mkdir(parents=True, exist_ok=True)
    os.chown(into, *mounts.subordinate())  # written by the chroot's root, a mapped id
    with chroot.session(candidates.image(dist, log), log,
                        [chroot.Bind(into, DOWNLOADS, writable=True)]) as box:
        box.run(["apt-get", "update"], network=True, what="apt-get update")
        box.sh(f"cd {DOWNLOADS} && apt-get download {' '.join(names)}", network=True,
               what="apt-get download")
    return sorted(into.glob("*.deb"))


def contents(deb: Path) -> tuple[str, list[tuple[str, str, int]]]:
    """The package name and its data members: (absolute path, kind, mode)."""
    package = DebFile(str(deb))
    members = []
    for member in package.data.tgz().getmembers():
        kind = "dir" if member.isdir() else "link" if member.issym() or member.islnk() \
            else "file"
        members.append(("/" + member.name.lstrip("./"), kind, stat.S_IMODE(member.mode)))
    return str(package.debcontrol()["Package"]), members


def facts(the_scopes: Sequence[Scope], debs: Sequence[Path]) -> list[Fact]:
    """Every deb is the scope's whose install list names it, or whose name is the
    venv's (``venv-<project>-``)."""
    out = []
    for deb in debs:
        package, members = contents(deb)
        scope = next((s for s in the_scopes if package in s.install
                      or package.startswith(f"venv-{s.project}-")), None)
        if scope is None:
            continue
        out.append(Fact(scope.project, "package", package, "shipped"))
        files = frozenset(path for path, kind, _ in members if kind != "dir")
        for path, kind, mode in members:
            unit, script = UNIT_FILE.match(path), INIT_SCRIPT.match(path)
            if is_etc(scope, path.rstrip("/"), files, kind == "dir"):
                out.append(Fact(scope.project, "etc", path.rstrip("/"), f"{kind} {mode:04o}"))
            if path.startswith("/usr/bin/") and kind != "dir":
                out.append(Fact(scope.project, "command", Path(path).name, "yes"))
            if unit or script:
                name = unit.group(1) if unit else f"{script.group(1)}.service"  # type: ignore[union-attr]
                out.append(Fact(scope.project, "unit", name, "shipped"))
    return sorted(set(out))


def debian_facts(dist: Distribution, the_scopes: Sequence[Scope], log: Path) -> list[Fact]:
    with tempfile.TemporaryDirectory(prefix="venvdeb-parity-") as tmp:
        debs = fetch(dist, [n for s in the_scopes for n in s.install], Path(tmp) / "debs", log)
        return facts(the_scopes, debs)
