"""The release's wheel repository as one binary package (``venvdeb reqdeb``).

``plan`` computes everything but the version (name, architecture, inputs digest,
which wheels go in) as data and assigns nothing; ``versioned`` adds the version
the ledger gives and renders ``debian/``; ``build`` assembles the source tree and
runs dpkg-buildpackage as the sandbox user with the network cut, then the given lint.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from venvdeb.core import render, runner, sandbox, versions
from venvdeb.core.config import Config, Distribution, Release
from venvdeb.core.errors import ConfigError, HashMismatch
from venvdeb.core.files import copy_out, sha256
from venvdeb.debian import builders
from venvdeb.python import wheelhouse
from venvdeb.python.lock import LockEntry
from venvdeb.python.wheelhouse import Record

INSTALL_ROOT = "/usr/share/venvdeb/wheels"
#: Wheels are deflate-compressed already. Measured on the 2026.1 projects
#: repository (132 wheels): gzip -1 30.1 MB in 1.0 s, xz 29.5 MB in 14.5 s.
DPKG_DEB_OPTIONS = "-Zgzip -z1"
COMPRESSION_REASON = ("xz would save ~2% for 14 times the time\n"
                      "# (2026.1 projects repository: gzip -1 30.1 MB in 1.0 s, xz 29.5 MB in 14.5 s).")


@dataclass(frozen=True)
class ReqdebPlan:
    """Everything but the version: what the inputs digest identifies."""

    source: str
    package: str
    architecture: str
    digest: str
    context: tuple[tuple[str, object], ...]  # what the templates render with
    wheels: tuple[Record, ...]
    shipped: tuple[tuple[str, Path], ...]       # repository/<rel> <- path on disk
    changes: tuple[str, ...]  # the changelog entry's lines

    @property
    def ledger_key(self) -> str:
        return f"{self.package}/{dict(self.context)['distribution']}"


@dataclass(frozen=True)
class ReqdebBuild:
    """The plan with its version assigned: what ``build`` makes."""

    plan: ReqdebPlan
    version: str
    epoch: int
    files: tuple[tuple[str, str], ...]          # rendered debian/ files

    @property
    def source(self) -> str:
        return self.plan.source

    @property
    def package(self) -> str:
        return self.plan.package

    @property
    def deb_name(self) -> str:
        return f"{self.plan.package}_{self.version}_{self.plan.architecture}.deb"


def package_name(release: str) -> str:
    return f"openstack-wheels-{release}"


def architecture_of(records: tuple[Record, ...], distribution: Distribution) -> str:
    """``all`` when every wheel is pure Python, else the distribution's architecture."""
    for record in records:
        _, _, _, tags = parse_wheel_filename(record.file)
        if any(t.platform != "any" for t in tags):
            return distribution.architecture
    return "all"


def input_digest(release: Release, distribution: Distribution, lock_text: str,
                 records: tuple[Record, ...], templates: dict[str, str]) -> str:
    h = hashlib.sha256()
    parts = [release.name, release.series, distribution.name, lock_text]
    parts += [f"{r.file} {r.sha256}" for r in sorted(records, key=lambda r: r.file)]
    parts += [f"{k}\n{v}" for k, v in sorted(templates.items())]
    for path in release.input_files:
        parts.append(f"{path.name}\n{path.read_text()}")
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()


def verify_wheelhouse(entries: tuple[LockEntry, ...], records: tuple[Record, ...],
                      files_dir: Path) -> None:
    """Every lock entry has a wheel on disk that still hashes as the manifest says."""
    by_name = {r.name: r for r in records}
    missing = [e.requirement for e in entries
               if e.name not in by_name or by_name[e.name].version != e.version]
    if missing:
        raise ConfigError(
            f"the wheelhouse lacks wheels for {len(missing)} lock entries: {', '.join(missing[:5])}",
            hint="run 'venvdeb wheels' for this release first")
    names = {e.name for e in entries}
    for record in records:
        path = files_dir / record.file
        if not path.exists():
            raise HashMismatch(f"wheel {path} listed in the manifest is missing",
                               hint="run 'venvdeb wheels' again to fetch or build it")
    wheelhouse.verify_cached([r for r in records if r.name in names], entries, files_dir)


def plan(config: Config, release: Release, distribution: Distribution, *, lock_file: Path,
         entries: tuple[LockEntry, ...], wheel_dir: Path) -> ReqdebPlan:
    """Pure: reads the lock, the manifest and the wheels (each verified), assigns nothing."""
    records = tuple(r for r in wheelhouse.read_manifest(wheel_dir)
                    if r.name in {e.name for e in entries})
    files_dir = wheel_dir / "files"
    verify_wheelhouse(entries, records, files_dir)
    # what the sdist-built wheels were built with (the build lock), shipped beside them
    build_records = tuple(r for r in wheelhouse.read_build_manifest(wheel_dir)
                          if (r.name, r.version) not in {(w.name, w.version) for w in records})
    for record in build_records:
        path = files_dir / record.file
        if not path.is_file() or sha256(path) != record.sha256:
            raise HashMismatch(f"build requirement {path} listed in {wheelhouse.BUILD_MANIFEST} "
                               f"is missing or does not hash as recorded",
                               hint="run 'venvdeb wheels' again to fetch it")
    source = package = package_name(release.name)
    root = f"{INSTALL_ROOT}/{release.name}"
    architecture = architecture_of(records + build_records, distribution)
    lock_text = lock_file.read_text()
    context = {
        "source": source, "package": package, "architecture": architecture,
        "maintainer": config.repository.maintainer, "release": release.name,
        "series": release.series, "distribution": distribution.name,
        "python_version": distribution.python_version, "wheel_count": len(records),
        "downloaded": sum(r.origin == "downloaded" for r in records),
        "built": sum(r.origin == "built" for r in records), "root": root,
        "dpkg_deb_options": DPKG_DEB_OPTIONS, "compression_reason": COMPRESSION_REASON,
    }
    # The digest covers the templates as rendered without the date-derived fields.
    probe = render.render_tree("requirements", {**context, "copyright_year": "YYYY"})
    digest = input_digest(release, distribution, lock_text, records + build_records, probe)
    changes = (f"Wheel repository for OpenStack {release.name} ({release.series}) on "
               f"{distribution.name}: {len(records)} wheels "
               f"({context['downloaded']} downloaded, {context['built']} built).",
               f"Inputs digest {digest}.",
               f"Versions carry the distribution before the serial (+{distribution.version_tag}"
               f"u<serial>, as Debian's stable updates); builds before that scheme were "
               f"{release.name}.<serial>+<digest>, which sorts above: a node holding one takes "
               f"this one once with apt-get install --allow-downgrades.")
    shipped = [(f"files/{r.file}", files_dir / r.file) for r in records + build_records]
    shipped += [(f"simple/{rel}", wheel_dir / "simple" / rel)
                for rel in wheelhouse.simple_index(records)]
    shipped += [("manifest.json", wheel_dir / wheelhouse.MANIFEST),
                ("install-lock.txt", wheel_dir / wheelhouse.INSTALL_LOCK),
                ("lock.txt", lock_file)]
    if (wheel_dir / wheelhouse.BUILD_MANIFEST).exists():
        shipped.append(("build-manifest.json", wheel_dir / wheelhouse.BUILD_MANIFEST))
    shipped += [(f"requirements/{p.name}", p) for p in release.input_files]
    return ReqdebPlan(source, package, architecture, digest, tuple(sorted(context.items())),
                      records, tuple(sorted(shipped)), changes)


def versioned(the_plan: ReqdebPlan, assigned: versions.Assigned) -> ReqdebBuild:
    """The plan with the version the ledger gave it (pure)."""
    context = dict(the_plan.context)
    files = render.render_tree("requirements", {**context, "copyright_year": assigned.year})
    files["changelog"] = render.changelog(
        the_plan.source, assigned.version, str(context["distribution"]), list(the_plan.changes),
        str(context["maintainer"]), assigned.date)
    return ReqdebBuild(the_plan, assigned.version, assigned.epoch,
                       tuple(sorted({f"debian/{k}": v for k, v in files.items()}.items())))


def _give_tree(tree: Path) -> None:
    """The sandbox user owns the tree, to build in it, but for the shipped files under
    ``repository/``: those stay root's (hard links into the wheelhouse among them)."""
    sandbox.give(tree / "debian")
    who = sandbox.identity()
    if who is None:
        return
    for root, dirs, _ in os.walk(tree / "repository"):
        for name in dirs:
            os.chown(os.path.join(root, name), who.uid, who.gid, follow_symlinks=False)
    for path in (tree / "repository", tree, tree.parent):
        os.chown(path, who.uid, who.gid, follow_symlinks=False)


def build(the_plan: ReqdebBuild, out_dir: Path, log: Path, *, force: bool = False,
          lint: Callable[[Path, Path], None] | None = None) -> tuple[Path, bool]:
    """Build the .deb into ``out_dir``; return its path and whether it was (re)built.
    ``lint(changes, log)`` (lintian) runs before the .deb takes its place."""
    deb = out_dir / the_plan.deb_name
    if deb.exists() and not force:
        return deb, False
    work = out_dir / "tmp" / f"{the_plan.source}-{the_plan.version}"
    if work.parent.exists():
        shutil.rmtree(work.parent)
    work.mkdir(parents=True)
    env = runner.clean_environment({
        "SOURCE_DATE_EPOCH": str(the_plan.epoch),
        "DEB_BUILD_OPTIONS": "nocheck",
        "DEB_BUILD_MAINT_OPTIONS": "",
    })
    with sandbox.scratch("reqdeb") as scratch:
        tree = scratch / "src"
        render.write_tree(dict(the_plan.files), tree)
        for rel, path in the_plan.plan.shipped:
            dest = tree / "repository" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            sandbox.lend(path, dest)
        _give_tree(tree)
        builders.buildpackage(tree, {**env, "HOME": str(scratch), "TMPDIR": str(scratch)}, log)
        for produced in scratch.glob(f"{the_plan.source}_{the_plan.version}_*"):
            if produced.is_file() and not produced.is_symlink():
                copy_out(produced, work / produced.name)
    built_deb = work / the_plan.deb_name
    # dpkg-genchanges names the .changes after the build architecture
    [changes] = work.glob(f"{the_plan.source}_{the_plan.version}_*.changes")
    if lint is not None:
        lint(changes, log)
    out_dir.mkdir(parents=True, exist_ok=True)
    for produced in sorted(work.glob(f"{the_plan.source}_{the_plan.version}_*")):
        if produced != built_deb:
            produced.replace(out_dir / produced.name)
    # the .deb last: its presence marks a complete build
    built_deb.replace(deb)
    shutil.rmtree(work.parent)
    return deb, True
