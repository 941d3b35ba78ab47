"""The declarative pipeline configuration (``pipeline.toml``), validated once.

Every error names the file, the dotted key and the bad value. What loads is
a tree of frozen dataclasses that the CLI and the buildbot master both read.
"""
from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from builder.errors import ConfigError

Scope = Literal["all", "projects"]
SCOPES: tuple[Scope, ...] = ("all", "projects")
DEFAULT_CONFIG = "pipeline.toml"

_RELEASE_RE = re.compile(r"^[0-9]{4}\.[0-9]+$|^[a-z][a-z0-9.-]*$")
_DEB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_PYVER_RE = re.compile(r"^3\.[0-9]+$")


@dataclass(frozen=True)
class Repository:
    origin: str
    label: str
    maintainer: str
    index_url: str


@dataclass(frozen=True)
class Distribution:
    name: str
    python: Path
    python_version: str
    architecture: str
    glibc: tuple[int, int]
    mirror: str

    @property
    def python_tag(self) -> str:
        return "cp" + self.python_version.replace(".", "")

    @property
    def python_range(self) -> tuple[str, str]:
        """``(>= 3.11~, << 3.12)``: the interpreter range a venv built here needs."""
        major, minor = self.python_version.split(".")
        return f"{major}.{minor}~", f"{major}.{int(minor) + 1}"


@dataclass(frozen=True)
class Release:
    name: str
    series: str
    requirements_dir: Path
    scope: Scope
    distributions: tuple[str, ...]
    extra_pins: tuple[str, ...]
    index_url: str

    @property
    def upper_constraints(self) -> Path:
        return self.requirements_dir / "upper-constraints.txt"

    @property
    def global_requirements(self) -> Path:
        return self.requirements_dir / "global-requirements.txt"

    @property
    def denylist(self) -> Path:
        return self.requirements_dir / "denylist.txt"

    @property
    def input_files(self) -> tuple[Path, ...]:
        files = (self.upper_constraints, self.global_requirements, self.denylist,
                 self.requirements_dir / "PROVENANCE")
        return tuple(p for p in files if p.exists())


@dataclass(frozen=True)
class Project:
    name: str
    pypi_name: str
    extras: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]

    def version_for(self, release: str) -> str | None:
        return dict(self.versions).get(release)

    def requirement_for(self, release: str) -> str | None:
        version = self.version_for(release)
        if version is None:
            return None
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.pypi_name}{extras}=={version}"


@dataclass(frozen=True)
class Config:
    path: Path
    repository: Repository
    distributions: Mapping[str, Distribution]
    releases: Mapping[str, Release]
    projects: Mapping[str, Project]
    sdist_build_dependencies: Mapping[str, tuple[str, ...]]
    pipeline_releases: tuple[str, ...] = ()

    @property
    def root(self) -> Path:
        return self.path.parent

    def release(self, name: str) -> Release:
        try:
            return self.releases[name]
        except KeyError:
            known = ", ".join(sorted(self.releases)) or "none"
            raise ConfigError(
                f"unknown release '{name}': {self.path.name} defines {known}",
                hint=f"add a [releases.\"{name}\"] table to {self.path} or pick a defined one",
            ) from None

    def distribution(self, name: str) -> Distribution:
        try:
            return self.distributions[name]
        except KeyError:
            known = ", ".join(sorted(self.distributions)) or "none"
            raise ConfigError(
                f"unknown distribution '{name}': {self.path.name} defines {known}") from None

    def projects_for(self, release: str) -> tuple[Project, ...]:
        return tuple(p for _, p in sorted(self.projects.items())
                     if p.version_for(release) is not None)

    def build_dependencies_for(self, package: str) -> tuple[str, ...]:
        return self.sdist_build_dependencies.get(canonicalize_name(package), ())


class _Table:
    """A TOML table being read: typed getters that name file and key on error."""

    def __init__(self, file: Path, key: str, data: Mapping[str, Any]) -> None:
        self.file = file
        self.key = key
        self.data = data
        self.seen: set[str] = set()

    def _where(self, name: str) -> str:
        return f"{self.key}.{_quote(name)}" if self.key else _quote(name)

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self._where(name)}: {problem}")

    def get(self, name: str, kind: type, default: Any = ..., what: str = "") -> Any:
        self.seen.add(name)
        if name not in self.data:
            if default is ...:
                raise self.fail(name, "missing required key")
            return default
        value = self.data[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(name, f"expected {what or kind.__name__}, got "
                                  f"{type(value).__name__} {value!r}")
        return value

    def string(self, name: str, default: Any = ...) -> str:
        value = self.get(name, str, default, "a string")
        if isinstance(value, str) and not value.strip():
            raise self.fail(name, "must not be empty")
        return cast(str, value)

    def strings(self, name: str, default: Any = ...) -> tuple[str, ...]:
        value = self.get(name, list, default, "a list of strings")
        for item in value:
            if not isinstance(item, str) or not item.strip():
                raise self.fail(name, f"expected a list of non-empty strings, got item {item!r}")
        return tuple(value)

    def table(self, name: str, default: Any = ...) -> _Table:
        value = self.get(name, dict, {} if default is ... and False else default, "a table")
        return _Table(self.file, self._where(name), value)

    def subtables(self) -> list[tuple[str, _Table]]:
        out = []
        for name, value in self.data.items():
            self.seen.add(name)
            if not isinstance(value, dict):
                raise self.fail(name, f"expected a table, got {type(value).__name__} {value!r}")
            out.append((name, _Table(self.file, self._where(name), value)))
        return out

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            known = ", ".join(sorted(self.seen)) or "none"
            raise self.fail(unknown[0], f"unknown key (known keys here: {known})")


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def load(path: Path) -> Config:
    """Read and validate ``path``; raise ConfigError naming file, key and value."""
    path = path.resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found",
                          hint="pass --config FILE or run from the checkout") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    top = _Table(path, "", raw)

    repo_t = top.table("repository")
    repository = Repository(
        origin=repo_t.string("origin"),
        label=repo_t.string("label"),
        maintainer=_maintainer(repo_t, "maintainer"),
        index_url=repo_t.string("index_url", "https://pypi.org/simple"),
    )
    repo_t.done()

    distributions = {name: _distribution(name, t) for name, t in top.table("distributions").subtables()}
    if not distributions:
        raise top.fail("distributions", "define at least one distribution")

    releases = {name: _release(name, t, path.parent, repository, distributions)
                for name, t in top.table("releases").subtables()}
    if not releases:
        raise top.fail("releases", "define at least one release")

    deps_t = top.table("sdist_build_dependencies", {})
    sdist_deps: dict[str, tuple[str, ...]] = {}
    for name in list(deps_t.data):
        packages = deps_t.strings(name)
        for package in packages:
            if not _DEB_NAME_RE.match(package):
                raise deps_t.fail(name, f"{package!r} is not a Debian package name")
        sdist_deps[canonicalize_name(name)] = packages

    projects = {name: _project(name, t, releases) for name, t in top.table("projects", {}).subtables()}

    pipeline_t = top.table("pipeline", {})
    pipeline_releases = pipeline_t.strings("releases", tuple(sorted(releases)))
    for name in pipeline_releases:
        if name not in releases:
            raise pipeline_t.fail("releases", f"unknown release {name!r} "
                                              f"(defined: {', '.join(sorted(releases))})")
    pipeline_t.done()
    top.done()
    return Config(path, repository, distributions, releases, projects, sdist_deps,
                  pipeline_releases)


def _maintainer(table: _Table, key: str) -> str:
    value = table.string(key)
    if not re.fullmatch(r"[^<>]+ <[^<>@\s]+@[^<>\s]+>", value):
        raise table.fail(key, f"expected 'Full Name <address>', got {value!r}")
    return value


def _distribution(name: str, t: _Table) -> Distribution:
    if not _DEB_NAME_RE.match(name):
        raise t.fail("", f"distribution name {name!r} is not a Debian codename")
    python_version = t.string("python_version")
    if not _PYVER_RE.match(python_version):
        raise t.fail("python_version", f"expected 'major.minor' like '3.11', got {python_version!r}")
    glibc = t.string("glibc")
    if not re.fullmatch(r"[0-9]+\.[0-9]+", glibc):
        raise t.fail("glibc", f"expected 'major.minor' like '2.36', got {glibc!r}")
    python = t.string("python")
    if not python.startswith("/"):
        raise t.fail("python", f"expected an absolute interpreter path, got {python!r}")
    dist = Distribution(
        name=name,
        python=Path(python),
        python_version=python_version,
        architecture=t.string("architecture", "amd64"),
        glibc=(int(glibc.split(".")[0]), int(glibc.split(".")[1])),
        mirror=t.string("mirror", "http://deb.debian.org/debian"),
    )
    t.done()
    return dist


def _release(name: str, t: _Table, root: Path, repository: Repository,
             distributions: Mapping[str, Distribution]) -> Release:
    if not _RELEASE_RE.match(name):
        raise t.fail("", f"release name {name!r} must look like '2026.1'")
    req_dir = (root / t.string("requirements_dir")).resolve()
    if not (req_dir / "upper-constraints.txt").is_file():
        raise t.fail("requirements_dir", f"{req_dir}/upper-constraints.txt does not exist")
    scope = t.string("scope", "projects")
    if scope not in SCOPES:
        raise t.fail("scope", f"expected one of {', '.join(SCOPES)}, got {scope!r}")
    dists = t.strings("distributions")
    for dist in dists:
        if dist not in distributions:
            raise t.fail("distributions", f"unknown distribution {dist!r} "
                                          f"(defined: {', '.join(sorted(distributions))})")
    pins = t.strings("extra_pins", ())
    for pin in pins:
        try:
            req = Requirement(pin)
        except InvalidRequirement as exc:
            raise t.fail("extra_pins", f"{pin!r} is not a requirement: {str(exc).splitlines()[0]}") from None
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise t.fail("extra_pins", f"{pin!r} must pin one exact version (name==X.Y)")
    release = Release(
        name=name,
        series=t.string("series"),
        requirements_dir=req_dir,
        scope=cast(Scope, scope),
        distributions=dists,
        extra_pins=pins,
        index_url=t.string("index_url", repository.index_url),
    )
    t.done()
    return release


def _project(name: str, t: _Table, releases: Mapping[str, Release]) -> Project:
    if not _DEB_NAME_RE.match(name):
        raise t.fail("", f"project name {name!r} must be a Debian source package name")
    versions_t = t.table("versions")
    versions = []
    for release in sorted(versions_t.data):
        version = versions_t.string(release)
        if release not in releases:
            raise versions_t.fail(release, f"unknown release (defined: {', '.join(sorted(releases))})")
        if not re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", version):
            raise versions_t.fail(release, f"{version!r} is not a version")
        versions.append((release, version))
    project = Project(
        name=name,
        pypi_name=t.string("pypi_name", name),
        extras=t.strings("extras", ()),
        versions=tuple(versions),
    )
    t.done()
    return project
