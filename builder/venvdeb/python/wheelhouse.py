"""``venvdeb wheels``: a verified wheel for every lock entry, and its index.

``plan`` decides, per entry, between the cache, a binary wheel from the index
and a sdist to build; ``execute`` fetches and builds in parallel; ``publish``
writes the PEP 503 simple index, the manifest and the installable lock.
"""
from __future__ import annotations

import html
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from packaging import tags
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from venvdeb.core.config import Config, Distribution, Release
from venvdeb.core.errors import HashMismatch, IndexError_, StateFileError, VenvdebError
from venvdeb.core.files import read_json, sha256, write_if_changed
from venvdeb.core.progress import Progress
from venvdeb.python import index, sdist
from venvdeb.python.build_lock import BuildSystem, read_build_system
from venvdeb.python.index import IndexFile
from venvdeb.python.lock import LockEntry

Origin = Literal["downloaded", "built"]
MANIFEST = "manifest.json"
#: The build lock's wheels: what the sdist-built wheels were built with (not installed
#: into any venv, so neither in the manifest nor in the simple index).
BUILD_MANIFEST = "build-manifest.json"
RECORDS = "records.json"
INSTALL_LOCK = "install-lock.txt"
#: Built wheels carry this timestamp (SOURCE_DATE_EPOCH), so a rebuild gives the same bytes.
BUILD_EPOCH = 1704067200


@dataclass(frozen=True)
class Record:
    """One wheel of the repository: what the manifest says of it."""

    name: str
    version: str
    file: str
    sha256: str
    origin: Origin
    source: str | None = None
    source_sha256: str | None = None


@dataclass(frozen=True)
class Fetch:
    entry: LockEntry
    file: IndexFile


@dataclass(frozen=True)
class Build:
    entry: LockEntry
    sdist: IndexFile
    debian_build_deps: tuple[str, ...]


@dataclass(frozen=True)
class Prepared:
    """A sdist to build, fetched and verified, with its declared build system."""

    source: Path
    sha256: str
    build_system: BuildSystem


@dataclass(frozen=True)
class BuildEnv:
    """What every sdist build gets: the build lock, its verified wheels, the target
    (its interpreter ``python``, a path in the build chroot ``root``)."""

    lock: tuple[LockEntry, ...]
    wheels: Mapping[NormalizedName, Path]
    python: str
    python_version: str
    root: Path | None = None  # made only when something is to be built


@dataclass(frozen=True)
class Plan:
    cached: tuple[Record, ...]
    fetch: tuple[Fetch, ...]
    build: tuple[Build, ...]

    @property
    def total(self) -> int:
        return len(self.cached) + len(self.fetch) + len(self.build)


def load_records(path: Path) -> dict[tuple[str, str], Record]:
    if not path.exists():
        return {}
    hint = "delete it and run 'venvdeb wheels' again: it checks every wheel anew"
    try:
        return {(r["name"], r["version"]): Record(**r) for r in read_json(path, hint=hint)}
    except (KeyError, TypeError) as exc:
        raise StateFileError(f"{path} is not a wheel manifest (bad or missing {exc})",
                             hint=hint) from None


def write_records(path: Path, records: Iterable[Record]) -> None:
    data = [asdict(r) for r in sorted(records, key=lambda r: (r.name, r.version))]
    write_if_changed(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def choose_file(entry: LockEntry, files: Sequence[IndexFile],
                accepted: Sequence[tags.Tag], python_version: str) -> tuple[str, IndexFile] | None:
    """The best wheel for the target, else the sdist; ``None`` when neither exists."""
    rank = {tag: i for i, tag in enumerate(accepted)}
    version = Version(entry.version)
    best: tuple[int, IndexFile] | None = None
    sdist_file = None
    for f in files:
        if f.sha256 is not None and f.sha256 not in entry.hashes:
            continue
        if f.requires_python and not _python_ok(f.requires_python, python_version):
            continue
        if f.filename.endswith(".whl"):
            try:
                _, wversion, _, wtags = parse_wheel_filename(f.filename)
            except InvalidWheelFilename:
                continue
            if wversion != version:
                continue
            score = min((rank[t] for t in wtags if t in rank), default=None)
            if score is not None and (best is None or score < best[0]):
                best = (score, f)
        elif f.filename.endswith((".tar.gz", ".zip")):
            try:
                _, sversion = parse_sdist_filename(f.filename)
            except (InvalidSdistFilename, InvalidVersion):
                continue
            if sversion == version:
                sdist_file = f
    if best is not None:
        return "wheel", best[1]
    if sdist_file is not None:
        return "sdist", sdist_file
    return None


def _python_ok(requires_python: str, python_version: str) -> bool:
    try:
        return SpecifierSet(html.unescape(requires_python)).contains(python_version + ".0")
    except InvalidSpecifier:
        return True


def plan(
    entries: Sequence[LockEntry],
    release: Release,
    distribution: Distribution,
    config: Config,
    files_dir: Path,
    records: dict[tuple[str, str], Record],
    lister: Callable[[str, str], Sequence[IndexFile]] = index.project_files,
) -> Plan:
    """Decide what to do for each entry. Only entries not cached reach the index."""
    accepted = index.target_tags(distribution)
    cached, fetch, build = [], [], []
    missing = []
    todo = []
    for entry in entries:
        record = records.get((entry.name, entry.version))
        if record is not None and (files_dir / record.file).exists():
            cached.append(record)
        else:
            todo.append(entry)
    with ThreadPoolExecutor(max_workers=8) as pool:
        listings = list(pool.map(lambda e: lister(release.index_url, e.project_name), todo))
    for entry, files in zip(todo, listings, strict=True):
        choice = choose_file(entry, files, accepted, distribution.python_version)
        if choice is None:
            missing.append(entry)
        elif choice[0] == "wheel":
            fetch.append(Fetch(entry, choice[1]))
        else:
            build.append(Build(entry, choice[1], config.build_dependencies_for(entry.name)))
    if missing:
        names = ", ".join(e.requirement for e in missing)
        raise IndexError_(
            f"the index {release.index_url} has no wheel for {distribution.name} (Python "
            f"{distribution.python_version}, glibc {'.'.join(map(str, distribution.glibc))}, "
            f"{distribution.architecture}) nor an sdist matching the lock for: {names}",
            hint=f"pin a version that supports {distribution.name} in the release's extra_pins, "
                 f"exclude the project needing it from {distribution.name} "
                 f"(exclude_distributions), or run 'venvdeb lock' again if the lock is stale")
    return Plan(tuple(cached), tuple(fetch), tuple(build))


def verify_cached(records: Iterable[Record], entries: Iterable[LockEntry], files_dir: Path) -> None:
    """Every cached wheel must still hash as recorded (and as locked, if downloaded)."""
    locked_hashes: dict[str, frozenset[str]] = {e.name: e.hashes for e in entries}
    for record in records:
        path = files_dir / record.file
        digest = sha256(path)
        expected = record.sha256
        locked = locked_hashes[record.name]
        if digest != expected or (record.origin == "downloaded" and digest not in locked):
            raise HashMismatch(
                f"cached wheel {path} has sha256 {digest}, but the "
                f"{'lock lists' if record.origin == 'downloaded' else 'manifest records'} "
                f"{expected}: it was tampered with or truncated",
                hint=f"delete {path} and run 'venvdeb wheels' again to fetch or build it anew")


class IncompleteBuildLock(VenvdebError):
    """Some builds asked for requirements the build lock lacks; the rest are ``done``."""

    def __init__(self, failures: Sequence[sdist.UnlockedBuildRequirements],
                 done: tuple[Record, ...]) -> None:
        first = failures[0]
        super().__init__(first.message, hint=first.hint, log=first.log)
        self.failures = tuple(failures)
        self.done = done
        self.wanted = {k: v for f in failures for k, v in f.wanted.items()}


def prepare(builds: Sequence[Build], sdists_dir: Path) -> dict[str, Prepared]:
    """Fetch (or keep) each sdist to build, hash-verified, and read its build system
    without running its code; by lock entry name."""
    def one(item: Build) -> Prepared:
        source = sdists_dir / item.sdist.filename
        if source.exists() and sha256(source) in item.entry.hashes:
            digest = sha256(source)
        else:
            digest = index.download(item.sdist.url, source, item.entry.hashes,
                                    f"{item.entry.requirement} (sdist)")
        return Prepared(source, digest, read_build_system(source, item.entry.requirement))

    with ThreadPoolExecutor(max_workers=8) as pool:
        done = list(pool.map(one, builds))
    return {b.entry.name: p for b, p in zip(builds, done, strict=True)}


#: Build requirements that mean compiling (C, Cython, Rust): such sdists build first.
COMPILING = frozenset({"cython", "cffi", "setuptools-rust", "maturin", "pybind11", "numpy",
                       "scikit-build-core", "meson-python", "pkgconfig"})


def _env_key(env: BuildEnv) -> tuple[object, ...]:
    """What makes two build environments one venv: the same lock, interpreter, chroot."""
    return (env.lock, env.python, env.root)


def build_order(builds: Sequence[Build], prepared: Mapping[str, Prepared],
                sizes: Mapping[str, int]) -> tuple[Build, ...]:
    """Pure: the builds longest first, as far as can be told without building (the
    pool then ends with the short ones, not with a compiler running alone): those
    that compile (Debian build dependencies declared, or a compiling build
    requirement), then by sdist size (``sizes``, by entry name), largest first."""
    def compiles(b: Build) -> bool:
        if b.debian_build_deps:
            return True
        ready = prepared.get(b.entry.name)
        return ready is not None and any(
            _requirement_name(r) in COMPILING for r in ready.build_system.requires)

    return tuple(sorted(builds, key=lambda b: (not compiles(b), -sizes.get(b.entry.name, 0),
                                               b.entry.name)))


def _requirement_name(text: str) -> str:
    try:
        return canonicalize_name(Requirement(text).name)
    except InvalidRequirement:  # checked when read; never a reason to stop here
        return ""


def execute(
    the_plan: Plan,
    *,
    files_dir: Path,
    log_dir: Path,
    jobs: int,
    prepared: Mapping[str, Prepared] | None = None,
    build_envs: Mapping[str, BuildEnv] | None = None,
    quiet: bool = False,
) -> tuple[Record, ...]:
    """Fetch and build what the plan says (its sdists ``prepared``, each built in the
    environment ``build_envs`` gives its file name); return the new records."""
    progress = Progress("wheels", len(the_plan.fetch) + len(the_plan.build), quiet=quiet)

    def fetch(item: Fetch) -> Record:
        dest = files_dir / item.file.filename
        digest = sha256(dest) if dest.exists() else ""
        if digest in item.entry.hashes:  # left by an interrupted run, and intact
            progress.step(f"kept       {item.file.filename}")
        else:
            digest = index.download(item.file.url, dest, item.entry.hashes,
                                    f"{item.entry.requirement}")
            progress.step(f"downloaded {item.file.filename}")
        return Record(item.entry.name, item.entry.version, item.file.filename, digest, "downloaded")

    def venv(build_env: BuildEnv, dest: Path, log: Path) -> Path:
        assert build_env.root is not None, "builds need a BuildEnv with its chroot"
        return sdist.build_venv(build_lock=build_env.lock, build_wheels=build_env.wheels,
                                root=build_env.root, python=build_env.python, log=log, dest=dest)

    def build(item: Build) -> Record:
        assert prepared is not None and build_envs is not None, "builds need prepare()"
        ready = prepared[item.entry.name]
        build_env = build_envs[ready.source.name]
        assert build_env.root is not None, "builds need a BuildEnv with its chroot"
        venv_archive = venvs[_env_key(build_env)].result()
        wheel = sdist.build_wheel(
            name=item.entry.project_name, version=item.entry.version, sdist=ready.source,
            out_dir=files_dir, debian_build_deps=item.debian_build_deps,
            build_system=ready.build_system, build_lock=build_env.lock,
            venv_archive=venv_archive, root=build_env.root, python=build_env.python,
            python_version=build_env.python_version,
            log=log_dir / f"{item.entry.name}.log", source_date_epoch=BUILD_EPOCH)
        progress.step(f"built      {wheel.name} (from {item.sdist.filename})")
        return Record(item.entry.name, item.entry.version, wheel.name, sha256(wheel),
                      "built", item.sdist.filename, ready.sha256)

    results: list[Record] = []
    errors: list[VenvdebError] = []
    # each build lock installed once into a venv, which its builds unpack (sdist.build_venv)
    envs = {_env_key(e): e for e in (build_envs or {}).values()} if the_plan.build else {}
    with tempfile.TemporaryDirectory(prefix="venvdeb-build-venvs-") as held, \
            ThreadPoolExecutor(max_workers=max(1, len(envs))) as making, \
            ThreadPoolExecutor(max_workers=8) as downloads, \
            ThreadPoolExecutor(max_workers=max(1, jobs)) as builds:
        venvs = {key: making.submit(venv, env, Path(held) / f"venv-{i + 1}.tar",
                                    log_dir / f"build-venv-{i + 1}.log")
                 for i, (key, env) in enumerate(envs.items())}
        futures = [downloads.submit(fetch, f) for f in the_plan.fetch]
        sizes = {n: p.source.stat().st_size for n, p in (prepared or {}).items()}
        futures += [builds.submit(build, b)
                    for b in build_order(the_plan.build, prepared or {}, sizes)]
        for future in futures:
            try:
                results.append(future.result())
            except VenvdebError as exc:
                errors.append(exc)
    unlocked = [e for e in errors if isinstance(e, sdist.UnlockedBuildRequirements)]
    if errors and len(unlocked) == len(errors):
        # only the build lock lacked something: the caller adds it and builds these again
        raise IncompleteBuildLock(unlocked, tuple(results))
    if errors:
        if len(errors) > 1:
            errors[0].hint = (errors[0].hint or "") + f" ({len(errors) - 1} more failed: see logs)"
        raise errors[0]
    return tuple(results)


def simple_index(records: Sequence[Record]) -> dict[str, str]:
    """PEP 503 pages, relative path -> HTML, for the wheels in ``records``."""
    pages: dict[str, str] = {}
    by_name: dict[str, list[Record]] = {}
    for record in records:
        by_name.setdefault(record.name, []).append(record)
    root_links = "".join(f'    <a href="{n}/">{n}</a>\n' for n in sorted(by_name))
    pages["index.html"] = _page("Simple index", root_links)
    for name, items in sorted(by_name.items()):
        links = "".join(
            f'    <a href="../../files/{html.escape(r.file)}#sha256={r.sha256}">'
            f"{html.escape(r.file)}</a>\n" for r in sorted(items, key=lambda r: r.file))
        pages[f"{name}/index.html"] = _page(f"Links for {name}", links)
    return pages


def _page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html>\n<html>\n  <head><meta name=\"pypi:repository-version\" "
            f"content=\"1.0\"><title>{title}</title></head>\n  <body>\n{body}  </body>\n</html>\n")


def install_lock(records: Sequence[Record]) -> str:
    lines = ["# Installable lock: every wheel of this repository with its own sha256.\n",
             "# Use: pip install --no-index --require-hashes -r install-lock.txt\n"]
    for r in sorted(records, key=lambda r: r.name):
        lines.append(f"{r.name}=={r.version} \\\n    --hash=sha256:{r.sha256}\n")
    return "".join(lines)


def publish(records: Sequence[Record], wheelhouse: Path,
            build_records: Sequence[Record] = ()) -> None:
    """Write manifest, simple index and install lock, and the build manifest; drop
    pages of gone projects."""
    simple = wheelhouse / "simple"
    pages = simple_index(records)
    for rel, text in pages.items():
        write_if_changed(simple / rel, text)
    if simple.exists():
        for page in simple.glob("*/index.html"):
            if f"{page.parent.name}/index.html" not in pages:
                page.unlink()
                os.rmdir(page.parent)
    write_records(wheelhouse / MANIFEST, records)
    write_records(wheelhouse / BUILD_MANIFEST, build_records)
    write_if_changed(wheelhouse / INSTALL_LOCK, install_lock(records))


def read_manifest(wheelhouse: Path) -> tuple[Record, ...]:
    return tuple(load_records(wheelhouse / MANIFEST).values())


def read_build_manifest(wheelhouse: Path) -> tuple[Record, ...]:
    return tuple(load_records(wheelhouse / BUILD_MANIFEST).values())
