"""The build lock: what sdists need to build, locked with hashes like the main lock.

A sdist's static build requirements are read from its ``pyproject.toml``
without running any of its code (setuptools' legacy default when it has
none). Their union, for every sdist a release builds on a distribution, is
compiled by pip-tools (``lock.compile_lock``, wheels only: a build requirement
is never built from source) into ``build-lock/lock.txt`` of the target, kept and
reused while its inputs do not change. The wheels it names are fetched,
hash-verified, into the wheel repository before any build; each build installs
them into its own venv with ``--require-hashes``.
"""
from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import tomllib
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from venvdeb.core.config import Distribution, Release
from venvdeb.core.errors import ConfigError, SdistBuildFailed
from venvdeb.core.files import write_if_changed
from venvdeb.python.lock import LockPlan

#: pip's default for a sdist without ``[build-system]`` (PEP 517's fallback);
#: ``wheel`` is what setuptools before 70.1 asks for dynamically.
LEGACY_REQUIRES = ("setuptools>=40.8.0", "wheel")
LEGACY_BACKEND = "setuptools.build_meta:__legacy__"
SETUPTOOLS_BACKEND = "setuptools.build_meta"
#: What build backends asked for beyond [build-system].requires, by sdist file.
DISCOVERED = "discovered.json"
#: A pyproject.toml larger than this is refused rather than parsed.
MAX_PYPROJECT = 1 << 20


@dataclass(frozen=True)
class BuildSystem:
    """A sdist's ``[build-system]``, as its pyproject.toml declares it."""

    requires: tuple[str, ...]
    backend: str
    backend_path: tuple[str, ...] = ()


LEGACY = BuildSystem(LEGACY_REQUIRES, LEGACY_BACKEND)


def _pyproject(sdist: Path) -> bytes | None:
    """The top-level pyproject.toml of ``sdist`` (a regular file), read, never extracted."""
    def top_level(name: str) -> bool:
        parts = PurePosixPath(name).parts
        return len(parts) == 2 and parts[1] == "pyproject.toml" and ".." not in parts

    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist():
                if top_level(info.filename) and not info.is_dir():
                    if info.file_size > MAX_PYPROJECT:
                        break
                    return zf.read(info)
        return None
    with tarfile.open(sdist) as tar:
        for member in tar:
            if top_level(member.name):
                if not member.isreg() or member.size > MAX_PYPROJECT:
                    break
                f = tar.extractfile(member)
                return f.read() if f is not None else None
    return None


def read_build_system(sdist: Path, what: str) -> BuildSystem:
    """The ``[build-system]`` of ``sdist``; ``what`` names it in errors."""
    try:
        raw = _pyproject(sdist)
    except (OSError, tarfile.TarError, zipfile.BadZipFile) as exc:
        raise SdistBuildFailed(f"cannot read the sdist {sdist} of {what}: {exc}",
                               hint=f"delete {sdist} and run 'venvdeb wheels' again") from None
    if raw is None:
        return LEGACY
    return parse_build_system(raw, f"{sdist.name}/pyproject.toml")


def parse_build_system(raw: bytes, source: str) -> BuildSystem:
    try:
        data = tomllib.load(io.BytesIO(raw))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SdistBuildFailed(f"{source}: not valid TOML: {exc}") from None
    table = data.get("build-system")
    if table is None:
        return LEGACY
    requires = table.get("requires", None)
    backend = table.get("build-backend", LEGACY_BACKEND)
    path = table.get("backend-path", [])
    if not isinstance(requires, list) or not all(isinstance(r, str) for r in requires):
        raise SdistBuildFailed(f"{source}: [build-system].requires must be a list of strings, "
                               f"got {requires!r}")
    if not isinstance(backend, str) or not isinstance(path, list) \
            or not all(isinstance(p, str) for p in path):
        raise SdistBuildFailed(f"{source}: [build-system] build-backend or backend-path is "
                               f"malformed")
    for text in requires:
        check_requirement(text, f"{source}: [build-system].requires")
    if "requires" not in table:
        return BuildSystem(LEGACY_REQUIRES, backend, tuple(path))
    return BuildSystem(tuple(requires), backend, tuple(path))


def with_declared(system: BuildSystem, declared: Iterable[str]) -> BuildSystem:
    """``system`` with what the config declares its backend asks for beyond it
    (``[sdist_build_requires]``), so that a new workdir's first build lock holds it."""
    extra = tuple(r for r in declared if r not in system.requires)
    return dataclasses.replace(system, requires=(*system.requires, *extra)) if extra else system


def read_discovered(lock_dir: Path) -> dict[str, tuple[str, ...]]:
    """What build backends asked for beyond their static requirements, by sdist file
    (recorded by a previous run, so the next build lock holds it)."""
    path = lock_dir / DISCOVERED
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        out = {str(k): tuple(str(r) for r in v) for k, v in data.items()}
    except (ValueError, AttributeError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable ({exc})",
                          hint=f"delete {path}; the next 'venvdeb wheels' records it again") from None
    for sdist_name, reqs in out.items():
        for req in reqs:
            check_requirement(req, f"{path}: {sdist_name}")
    return out


def write_discovered(lock_dir: Path, discovered: Mapping[str, tuple[str, ...]]) -> None:
    lock_dir.mkdir(parents=True, exist_ok=True)
    write_if_changed(lock_dir / DISCOVERED, json.dumps(
        {k: sorted(v) for k, v in sorted(discovered.items())}, indent=1) + "\n")


def check_requirement(text: str, source: str) -> None:
    """A build requirement is a name and version range from the index: no URL."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise SdistBuildFailed(f"{source}: build requirement {text!r} is not a requirement: "
                               f"{exc}") from None
    if req.url:
        raise SdistBuildFailed(f"{source}: build requirement {text!r} names a URL: build "
                               f"requirements come from the index, hash-locked")


def exact_pins(requires: Iterable[str]) -> dict[str, Version | str]:
    """Canonical name -> version of the exact pins (``name==version``, no wildcard) among
    ``requires``, whatever their markers (a Version: 3.2.4 and 3.2.4.0 are one pin)."""
    out: dict[str, Version | str] = {}
    for text in requires:
        try:
            req = Requirement(text)
        except InvalidRequirement:
            continue
        specs = list(req.specifier)
        if len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version:
            version: Version | str
            try:
                version = Version(specs[0].version)
            except InvalidVersion:
                version = specs[0].version
            out[canonicalize_name(req.name)] = version
    return out


def groups(systems: Mapping[str, BuildSystem],
           discovered: Mapping[str, tuple[str, ...]] | None = None
           ) -> tuple[dict[str, BuildSystem], ...]:
    """The sdists (file name -> build system) split among build locks: each joins the
    first group none of whose exact pins its own contradict (krb5 0.9.0 builds with
    Cython==3.2.1, gssapi 1.11.1 with Cython==3.2.4: one lock cannot hold both), so
    that the first group holds every sdist that agrees with it. Sdists in name order:
    the same sdists give the same groups. Ranges that cannot meet are not foreseen
    here: pip-compile says so."""
    out: list[tuple[dict[str, BuildSystem], dict[str, Version | str]]] = []
    for name, system in sorted(systems.items()):
        pins = exact_pins((*system.requires, *(discovered or {}).get(name, ())))
        for members, held in out:
            if all(held.get(project, version) == version for project, version in pins.items()):
                members[name] = system
                held.update(pins)
                break
        else:
            out.append(({name: system}, dict(pins)))
    return tuple(members for members, _ in out)


def group_dir(lock_dir: Path, group: int) -> Path:
    """Where the build lock of group ``group`` (0-based) lives: the first in ``lock_dir``
    itself, each other in a directory of its own in it."""
    return lock_dir if group == 0 else lock_dir / f"group-{group + 1}"


def plan(release: Release, distribution: Distribution, systems: Mapping[str, BuildSystem],
         discovered: Mapping[str, tuple[str, ...]] | None = None, *,
         group: int = 0, of: int = 1) -> LockPlan:
    """Pure: pip-compile's inputs for the build lock of these sdists (sdist -> build system),
    with what their backends asked for beyond that (``discovered``, by sdist).

    Constrained by the release's ``extra_pins`` (the pins that keep setuptools
    and friends where the release needs them)."""
    wanted: dict[str, list[str]] = {}
    for sdist_name, system in sorted(systems.items()):
        for req in system.requires:
            wanted.setdefault(req, []).append(sdist_name)
        if system.backend.startswith(SETUPTOOLS_BACKEND) and "wheel" not in system.requires:
            wanted.setdefault("wheel", []).append(f"{sdist_name} (setuptools < 70.1 asks for it)")
        for req in (discovered or {}).get(sdist_name, ()):
            wanted.setdefault(req, []).append(f"{sdist_name} (asked by its backend)")
    header = (f"# venvdeb: build requirements of the sdists of release {release.name} "
              f"({release.series}), {distribution.name}, Python {distribution.python_version}\n"
              + (f"# build lock {group + 1} of {of}: sdists whose exact pins contradict "
                 f"another lock's\n" if of > 1 else ""))
    body = "".join(f"{req}  # {', '.join(by)}\n" for req, by in sorted(wanted.items()))
    requirements_in = header + "-c constraints.txt\n" + body
    constraints = "".join(f"{p}\n" for p in release.extra_pins)
    return LockPlan(release.name, distribution.name, "build", requirements_in, constraints,
                    release.index_url, only_binary=True,
                    target=f"{distribution.name} (Python {distribution.python_version})")
