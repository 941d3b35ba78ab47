"""The declarative pipeline configuration (``pipeline.toml``), validated once.

Every error names the file, the dotted key and the bad value. What loads is
a tree of frozen dataclasses that the CLI and the buildbot master both read.
"""
from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from venvdeb.core.binary_package import BinaryPackage, parse_packages
from venvdeb.core.errors import ConfigError
from venvdeb.core.table import DEB_NAME_RE as _DEB_NAME_RE
from venvdeb.core.table import Table

Scope = Literal["all", "projects"]
SCOPES: tuple[Scope, ...] = ("all", "projects")
DEFAULT_CONFIG = "pipeline.toml"

_RELEASE_RE = re.compile(r"^[0-9]{4}\.[0-9]+$|^[a-z][a-z0-9.-]*$")
_PYVER_RE = re.compile(r"^3\.[0-9]+$")


@dataclass(frozen=True)
class Repository:
    origin: str
    label: str
    maintainer: str
    index_url: str
    epoch: int = 90
    #: what nodes put in URIs (default: file:// of the workdir's repo)
    url: str | None = None
    #: an existing key to sign with (a 40-hex fingerprint) and its GnuPG home;
    #: unset: venvdeb makes and keeps one in <workdir>/keys/gnupg
    signing_key: str | None = None
    gnupg_home: Path | None = None


@dataclass(frozen=True)
class Distribution:
    name: str
    python: Path
    python_version: str
    architecture: str
    glibc: tuple[int, int]
    mirror: str

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
    #: a git repository holding the release's requirement files at its top (like
    #: openstack/requirements) and its branch; ``venvdeb requirements`` fetches them
    requirements_git: str | None = None
    requirements_branch: str | None = None

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
class Upstream:
    """Where a project's source comes from: the index's sdist at the pinned
    version, or a git repository at a branch or tag per release."""

    git: str | None = None
    refs: tuple[tuple[str, str], ...] = ()

    def ref_for(self, release: str) -> str | None:
        return dict(self.refs).get(release)


@dataclass(frozen=True)
class Project:
    name: str
    pypi_name: str
    extras: tuple[str, ...]
    versions: tuple[tuple[str, str], ...]
    upstream: Upstream = Upstream()
    requirements: tuple[str, ...] = ()  # extra requirements it does not declare
    user: str | None = None
    home: str | None = None
    packages: tuple[BinaryPackage, ...] = ()

    def venv_package(self, release: str) -> str:
        """The package holding the venv; never ``python3-*`` (dh-virtualenv skips those)."""
        return f"venv-{self.name}-{release}"

    def venv_path(self, release: str) -> str:
        return f"/opt/venvs/{self.name}-{release}"

    def version_for(self, release: str) -> str | None:
        return dict(self.versions).get(release)

    def requirement_for(self, release: str) -> str | None:
        version = self.version_for(release)
        if version is None:
            return None
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.pypi_name}{extras}=={version}"

    def lock_inputs(self, release: str) -> tuple[str, ...]:
        """What the lock must hold for this project: itself and its extra requirements."""
        own = self.requirement_for(release)
        return (*((own,) if own else ()), *self.requirements)


@dataclass(frozen=True)
class Config:
    path: Path
    repository: Repository
    distributions: Mapping[str, Distribution]
    releases: Mapping[str, Release]
    projects: Mapping[str, Project]
    sdist_build_dependencies: Mapping[str, tuple[str, ...]]
    pipeline_releases: tuple[str, ...] = ()
    pipeline_projects: tuple[str, ...] = ()
    pipeline_tool: bool = False  # also make, check and publish the venvdeb package itself

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

    def all_build_dependencies(self) -> tuple[str, ...]:
        return tuple(sorted({d for deps in self.sdist_build_dependencies.values() for d in deps}))

    def build_dependencies_for(self, package: str) -> tuple[str, ...]:
        return self.sdist_build_dependencies.get(canonicalize_name(package), ())


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
    top = Table(path, "", raw)

    repo_t = top.table("repository")
    repository = Repository(
        origin=repo_t.string("origin"),
        label=repo_t.string("label"),
        maintainer=_maintainer(repo_t, "maintainer"),
        index_url=repo_t.string("index_url", "https://pypi.org/simple"),
        epoch=repo_t.get("epoch", int, 90, "an integer"),
        url=repo_t.string("url", None),
        signing_key=repo_t.string("signing_key", None),
        gnupg_home=_optional_path(repo_t, "gnupg_home", path.parent),
    )
    if repository.url is not None and not re.match(r"^(https?|file)://\S+$", repository.url):
        raise repo_t.fail("url", f"expected an http://, https:// or file:// URL, got "
                                 f"{repository.url!r}")
    if repository.signing_key is not None and not re.fullmatch(r"[0-9A-Fa-f]{40}",
                                                              repository.signing_key):
        raise repo_t.fail("signing_key", f"expected a 40-hex-digit key fingerprint, got "
                                         f"{repository.signing_key!r}")
    if repository.epoch < 1:
        raise repo_t.fail("epoch", f"must be a positive integer, got {repository.epoch}")
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
    pipeline_projects = pipeline_t.strings("projects", tuple(sorted(projects)))
    for name in pipeline_projects:
        if name not in projects:
            raise pipeline_t.fail("projects", f"unknown project {name!r} "
                                              f"(defined: {', '.join(sorted(projects))})")
    pipeline_tool = pipeline_t.get("tool_package", bool, False, "true or false")
    pipeline_t.done()
    top.done()
    return Config(path, repository, distributions, releases, projects, sdist_deps,
                  pipeline_releases, pipeline_projects, pipeline_tool)


def _optional_path(table: Table, key: str, root: Path) -> Path | None:
    value = table.string(key, None)
    return None if value is None else (root / os.path.expanduser(value)).resolve()


def _maintainer(table: Table, key: str) -> str:
    value = table.string(key)
    if not re.fullmatch(r"[^<>]+ <[^<>@\s]+@[^<>\s]+>", value):
        raise table.fail(key, f"expected 'Full Name <address>', got {value!r}")
    return value


def _distribution(name: str, t: Table) -> Distribution:
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


def _release(name: str, t: Table, root: Path, repository: Repository,
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
        requirements_git=t.string("requirements_git", None),
        requirements_branch=t.string("requirements_branch", None),
    )
    if (release.requirements_git is None) != (release.requirements_branch is None):
        raise t.fail("requirements_git", "give both requirements_git and requirements_branch "
                                         "(e.g. stable/" + name + "), or neither")
    t.done()
    return release


def _requirements(t: Table) -> tuple[str, ...]:
    values = t.strings("requirements", ())
    for value in values:
        try:
            Requirement(value)
        except InvalidRequirement as exc:
            raise t.fail("requirements", f"{value!r} is not a requirement: "
                                         f"{str(exc).splitlines()[0]}") from None
    return values


def _project(name: str, t: Table, releases: Mapping[str, Release]) -> Project:
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
    upstream = Upstream()
    if "upstream" in t.data:
        ut = t.table("upstream")
        git = ut.string("git")
        refs_t = ut.table("refs")
        refs = []
        for release in sorted(refs_t.data):
            if release not in releases:
                raise refs_t.fail(release, f"unknown release (defined: {', '.join(sorted(releases))})")
            refs.append((release, refs_t.string(release)))
        ut.done()
        upstream = Upstream(git, tuple(refs))
    user = t.string("user", None)
    if user is not None and not re.fullmatch(r"[a-z_][a-z0-9_-]*", user):
        raise t.fail("user", f"{user!r} is not a user name")
    packages = parse_packages(t, "packages", user)
    venv_names = {f"venv-{name}-{release}" for release, _ in versions}
    for package in packages:
        if package.name in venv_names:
            raise t.fail("packages", f"{package.name!r} is the venv package's own name")
        if package.creates_user and not user:
            raise t.fail("packages", f"{package.name} creates_user but the project has no 'user'")
    project = Project(
        name=name,
        pypi_name=t.string("pypi_name", name),
        extras=t.strings("extras", ()),
        versions=tuple(versions),
        upstream=upstream,
        requirements=_requirements(t),
        user=user,
        home=t.string("home", f"/var/lib/{user}" if user else None),
        packages=packages,
    )
    t.done()
    return project
