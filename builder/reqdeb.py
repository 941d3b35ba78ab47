"""``venvdeb reqdeb``: the release's wheel repository as one binary package.

``plan`` computes everything (name, version, architecture, the rendered
``debian/`` files, which wheels go in) as data; ``build`` assembles the
source tree and runs dpkg-buildpackage with the network cut, then lintian.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from builder import command, debbuild, render, version, wheelhouse
from builder.config import Config, Distribution, Release
from builder.errors import ConfigError, HashMismatch
from builder.lock import LockEntry
from builder.wheelhouse import Record

INSTALL_ROOT = "/usr/share/venvdeb/wheels"
#: Wheels are deflate-compressed already. Measured on the 2026.1 projects
#: repository (132 wheels): gzip -1 30.1 MB in 1.0 s, xz 29.5 MB in 14.5 s.
DPKG_DEB_OPTIONS = "-Zgzip -z1"
COMPRESSION_REASON = ("xz would save ~2% for 14 times the time\n"
                      "# (2026.1 projects repository: gzip -1 30.1 MB in 1.0 s, xz 29.5 MB in 14.5 s).")


@dataclass(frozen=True)
class ReqdebPlan:
    source: str
    package: str
    version: str
    architecture: str
    epoch: int
    root: str
    files: tuple[tuple[str, str], ...]          # rendered debian/ files
    wheels: tuple[Record, ...]
    shipped: tuple[tuple[str, Path], ...]       # repository/<rel> <- path on disk

    @property
    def deb_name(self) -> str:
        return f"{self.package}_{self.version}_{self.architecture}.deb"


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
         entries: tuple[LockEntry, ...], wheel_dir: Path, ledger: Path) -> ReqdebPlan:
    records = tuple(r for r in wheelhouse.read_manifest(wheel_dir)
                    if r.name in {e.name for e in entries})
    files_dir = wheel_dir / "files"
    verify_wheelhouse(entries, records, files_dir)
    source = package = package_name(release.name)
    root = f"{INSTALL_ROOT}/{release.name}"
    architecture = architecture_of(records, distribution)
    lock_text = lock_file.read_text()
    base_context = {
        "source": source, "package": package, "architecture": architecture,
        "maintainer": config.repository.maintainer, "release": release.name,
        "series": release.series, "distribution": distribution.name,
        "python_version": distribution.python_version, "wheel_count": len(records),
        "downloaded": sum(r.origin == "downloaded" for r in records),
        "built": sum(r.origin == "built" for r in records), "root": root,
        "dpkg_deb_options": DPKG_DEB_OPTIONS, "compression_reason": COMPRESSION_REASON,
    }
    # The digest covers the templates as rendered without the date-derived fields.
    probe = render.render_tree("requirements", {**base_context, "copyright_year": "YYYY"})
    digest = input_digest(release, distribution, lock_text, records, probe)
    assigned = version.assign(ledger, f"{package}/{distribution.name}", release.name, digest)
    year = str(1970 + assigned.epoch // 31556952)
    files = render.render_tree("requirements", {**base_context, "copyright_year": year})
    files["changelog"] = render.changelog(
        source, assigned.version, distribution.name,
        [f"Wheel repository for OpenStack {release.name} ({release.series}) on "
         f"{distribution.name}: {len(records)} wheels "
         f"({base_context['downloaded']} downloaded, {base_context['built']} built).",
         f"Inputs digest {digest}."],
        config.repository.maintainer, assigned.date)
    shipped = [(f"files/{r.file}", files_dir / r.file) for r in records]
    shipped += [(f"simple/{rel}", wheel_dir / "simple" / rel)
                for rel in wheelhouse.simple_index(records)]
    shipped += [("manifest.json", wheel_dir / wheelhouse.MANIFEST),
                ("install-lock.txt", wheel_dir / wheelhouse.INSTALL_LOCK),
                ("lock.txt", lock_file)]
    shipped += [(f"requirements/{p.name}", p) for p in release.input_files]
    return ReqdebPlan(source, package, assigned.version, architecture, assigned.epoch, root,
                      tuple(sorted({f"debian/{k}": v for k, v in files.items()}.items())),
                      records, tuple(sorted(shipped)))


def build(the_plan: ReqdebPlan, out_dir: Path, log: Path, *, force: bool = False,
          lintian: bool = True) -> tuple[Path, bool]:
    """Build the .deb into ``out_dir``; return its path and whether it was (re)built."""
    deb = out_dir / the_plan.deb_name
    if deb.exists() and not force:
        return deb, False
    work = out_dir / "tmp" / f"{the_plan.source}-{the_plan.version}"
    if work.parent.exists():
        shutil.rmtree(work.parent)
    tree = work / "src"
    render.write_tree(dict(the_plan.files), tree)
    for rel, path in the_plan.shipped:
        dest = tree / "repository" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copyfile(path, dest)
    env = command.clean_environment({
        "SOURCE_DATE_EPOCH": str(the_plan.epoch),
        "DEB_BUILD_OPTIONS": "nocheck",
        "DEB_BUILD_MAINT_OPTIONS": "",
    })
    command.run(["unshare", "-n", "--", "dpkg-buildpackage", "-b", "-us", "-uc", "--no-sign"],
                cwd=tree, env=env, log=log, what="dpkg-buildpackage (offline, unshare -n)",
                heartbeat=30)
    built_deb = work / the_plan.deb_name
    # dpkg-genchanges names the .changes after the build architecture
    [changes] = work.glob(f"{the_plan.source}_{the_plan.version}_*.changes")
    if lintian:
        debbuild.lintian(changes, log)
    out_dir.mkdir(parents=True, exist_ok=True)
    for produced in sorted(work.glob(f"{the_plan.source}_{the_plan.version}_*")):
        if produced != built_deb:
            produced.replace(out_dir / produced.name)
    # the .deb last: its presence marks a complete build
    built_deb.replace(deb)
    shutil.rmtree(work.parent)
    return deb, True
