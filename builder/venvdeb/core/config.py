"""The declarative pipeline configuration (``pipeline.toml``), validated once.

Every error names the file, the dotted key and the bad value. What loads is
a tree of frozen dataclasses that the CLI and the buildbot master both read.
"""
from __future__ import annotations

import datetime
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from venvdeb.core import allowlist
from venvdeb.core.binary_package import BinaryPackage, parse_packages
from venvdeb.core.errors import ConfigError
from venvdeb.core.table import Table

Scope = Literal["all", "projects"]
SCOPES: tuple[Scope, ...] = ("all", "projects")
DEFAULT_CONFIG = "pipeline.toml"



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
    #: Debian's major version (12 for bookworm): versions carry ``+deb12u<serial>``
    debian_version: int = 12

    @property
    def version_tag(self) -> str:
        """``deb12``: what a version built for this distribution carries before its serial,
        as Debian's stable updates do (``+deb13u1`` sorts above ``+deb12u<any>``)."""
        return f"deb{self.debian_version}"

    @property
    def uwsgi_binary(self) -> str:
        """uWSGI with Debian's python3 plugin (uwsgi-plugin-python3): bookworm's ships
        ``uwsgi_python311``; from trixie on, only ``uwsgi_python3``."""
        if self.debian_version >= 13:
            return "/usr/bin/uwsgi_python3"
        return f"/usr/bin/uwsgi_python{self.python_version.replace('.', '')}"

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
    #: distributions it is not built for, each with the reason (``exclude_distributions``)
    excluded: tuple[tuple[str, str], ...] = ()

    def excluded_from(self, distribution: str) -> str | None:
        """Why this project is not built for ``distribution`` (None: it is)."""
        return dict(self.excluded).get(distribution)

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
class Waiver:
    """An advisory accepted for one release, for a reason, until a date: after it, the
    advisory counts again (at audit and promote time; loading never fails on it)."""

    id: str
    release: str
    reason: str
    expires: datetime.date

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires


@dataclass(frozen=True)
class Audit:
    #: an OSV export (a directory or zip of OSV JSON records); set: promote is gated
    advisories: Path | None = None
    waivers: tuple[Waiver, ...] = ()
    #: licenses (SPDX ids or metadata's names) no pin may declare; set: promote is gated
    blocked_licenses: tuple[str, ...] = ()
    #: ask osv.dev online through pip-audit instead of reading an export; set: gated
    online: bool = False

    @property
    def gated(self) -> bool:
        """Whether an advisory source is configured (promote audits first)."""
        return self.advisories is not None or self.online


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
    audit: Audit = Audit()
    #: What sdists' build backends ask for beyond their pyproject.toml, by canonical name
    sdist_build_requires: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

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

    def projects_for(self, release: str, distribution: str | None = None
                     ) -> tuple[Project, ...]:
        """The projects with a version for ``release``; with ``distribution``, those
        not excluded from it."""
        return tuple(p for _, p in sorted(self.projects.items())
                     if p.version_for(release) is not None
                     and (distribution is None or p.excluded_from(distribution) is None))

    def all_build_dependencies(self) -> tuple[str, ...]:
        return tuple(sorted({d for deps in self.sdist_build_dependencies.values() for d in deps}))

    def build_dependencies_for(self, package: str) -> tuple[str, ...]:
        return self.sdist_build_dependencies.get(canonicalize_name(package), ())

    def build_requires_for(self, package: str) -> tuple[str, ...]:
        return self.sdist_build_requires.get(canonicalize_name(package), ())


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
        origin=repo_t.string("origin", kind=allowlist.LABEL),
        label=repo_t.string("label", kind=allowlist.LABEL),
        maintainer=repo_t.string("maintainer", kind=allowlist.MAINTAINER),
        index_url=repo_t.string("index_url", "https://pypi.org/simple", kind=allowlist.URL),
        epoch=repo_t.get("epoch", int, 90, "an integer"),
        url=repo_t.string("url", None, kind=allowlist.URL),
        signing_key=repo_t.string("signing_key", None, kind=allowlist.FINGERPRINT),
        gnupg_home=_optional_path(repo_t, "gnupg_home", path.parent),
    )
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
        deps_t.check(name, name, allowlist.PYPI_NAME)
        sdist_deps[canonicalize_name(name)] = deps_t.strings(name, kind=allowlist.DEB_NAME)

    requires_t = top.table("sdist_build_requires", {})
    sdist_requires: dict[str, tuple[str, ...]] = {}
    for name in list(requires_t.data):
        requires_t.check(name, name, allowlist.PYPI_NAME)
        sdist_requires[canonicalize_name(name)] = requires_t.strings(
            name, kind=allowlist.BUILD_REQUIREMENT)

    projects_t = top.table("projects", {})
    projects = {name: _project(name, t, releases, distributions)
                for name, t in projects_t.subtables()}
    _check_ports(projects_t, projects, releases)

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
    audit = _audit(top.table("audit", {}), path.parent, releases)
    top.done()
    return Config(path, repository, distributions, releases, projects, sdist_deps,
                  pipeline_releases, pipeline_projects, pipeline_tool, audit, sdist_requires)


def _audit(t: Table, root: Path, releases: Mapping[str, Release]) -> Audit:
    """``[audit]``: the advisory source and the waivers, each whole or refused."""
    advisories = _optional_path(t, "advisories", root)
    waivers = []
    for w in t.tables("waivers"):
        ident = w.string("id", kind=allowlist.ADVISORY_ID)
        release = w.string("release")
        if release not in releases:
            raise w.fail("release", f"unknown release {release!r} (defined: "
                                    f"{', '.join(sorted(releases))})")
        reason = w.string("reason")
        expires = w.get("expires", datetime.date, what="a date (expires = 2027-03-31, no quotes)")
        if isinstance(expires, datetime.datetime):
            raise w.fail("expires", f"expected a date, not a date and time: {expires}")
        waivers.append(Waiver(ident, release, reason, expires))
        w.done()
    blocked = t.strings("blocked_licenses", (), kind=allowlist.LICENSE)
    online = t.get("online", bool, False, "true or false")
    if online and advisories is not None:
        raise t.fail("online", "an OSV export (advisories) and the online service (online = "
                               "true) are both configured",
                     hint="keep one: the export for an offline build host, online where it "
                          "reaches api.osv.dev")
    t.done()
    return Audit(advisories, tuple(waivers), blocked, online)


def _optional_path(table: Table, key: str, root: Path) -> Path | None:
    value = table.string(key, None)
    return None if value is None else (root / os.path.expanduser(value)).resolve()


#: Debian releases venvdeb knows: codename -> (Debian major version, python3's version).
#: A distribution of another codename names its ``debian_version`` itself.
KNOWN_DISTRIBUTIONS: Mapping[str, tuple[int, str]] = {
    "bullseye": (11, "3.9"), "bookworm": (12, "3.11"), "trixie": (13, "3.13"),
}


def _distribution(name: str, t: Table) -> Distribution:
    t.check("", name, allowlist.CODENAME)
    python_version = t.string("python_version")
    if not re.fullmatch(r"3\.[0-9]+", python_version):
        raise t.fail("python_version", f"expected 'major.minor' like '3.11', got {python_version!r}")
    known = KNOWN_DISTRIBUTIONS.get(name)
    if known is not None and python_version != known[1]:
        raise t.fail("python_version", f"{name}'s python3 is {known[1]}, not {python_version} "
                                       f"(a venv runs only on the interpreter it was built for)",
                     hint=f'set python_version = "{known[1]}"')
    debian_version = t.get("debian_version", int, known[0] if known else None,
                           "Debian's major version, an integer like 13")
    if debian_version is None:
        raise t.fail("debian_version", f"venvdeb does not know which Debian version {name} is",
                     hint="set debian_version (13 for trixie): versions carry +deb<it>u<serial>")
    if known is not None and debian_version != known[0]:
        raise t.fail("debian_version", f"{name} is Debian {known[0]}, not {debian_version}",
                     hint=f"set debian_version = {known[0]} or remove the key")
    if not 1 <= debian_version <= 99:
        raise t.fail("debian_version", f"expected Debian's major version, got {debian_version}")
    glibc = t.string("glibc")
    if not re.fullmatch(r"[0-9]+\.[0-9]+", glibc):
        raise t.fail("glibc", f"expected 'major.minor' like '2.36', got {glibc!r}")
    python = t.string("python", kind=allowlist.ABSOLUTE_PATH)
    dist = Distribution(
        name=name,
        python=Path(python),
        python_version=python_version,
        architecture=t.string("architecture", "amd64", kind=allowlist.ARCHITECTURE),
        glibc=(int(glibc.split(".")[0]), int(glibc.split(".")[1])),
        mirror=t.string("mirror", "http://deb.debian.org/debian", kind=allowlist.URL),
        debian_version=debian_version,
    )
    t.done()
    return dist


def _release(name: str, t: Table, root: Path, repository: Repository,
             distributions: Mapping[str, Distribution]) -> Release:
    t.check("", name, allowlist.RELEASE)
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
        req = _requirement(t, "extra_pins", pin)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise t.fail("extra_pins", f"{pin!r} must pin one exact version (name==X.Y)")
    release = Release(
        name=name,
        series=t.string("series", kind=allowlist.SERIES),
        requirements_dir=req_dir,
        scope=cast(Scope, scope),
        distributions=dists,
        extra_pins=pins,
        index_url=t.string("index_url", repository.index_url, kind=allowlist.URL),
        requirements_git=t.string("requirements_git", None, kind=allowlist.GIT_URL),
        requirements_branch=t.string("requirements_branch", None, kind=allowlist.GIT_REF),
    )
    if (release.requirements_git is None) != (release.requirements_branch is None):
        raise t.fail("requirements_git", "give both requirements_git and requirements_branch "
                                         "(e.g. stable/" + name + "), or neither")
    t.done()
    return release


def _requirement(t: Table, key: str, value: str) -> Requirement:
    """A PEP 508 requirement by name from the index: never a URL (``x @ file:///...``)."""
    try:
        req = Requirement(value)
    except InvalidRequirement as exc:
        raise t.fail(key, f"{value!r} is not a requirement: {str(exc).splitlines()[0]}") from None
    if req.url or "\n" in value:
        raise t.fail(key, f"{value!r}: requirements come from the index by name and version, "
                          f"not from a URL")
    return req


def _requirements(t: Table) -> tuple[str, ...]:
    values = t.strings("requirements", ())
    for value in values:
        _requirement(t, "requirements", value)
    return values


def _check_ports(t: Table, projects: Mapping[str, Project],
                 releases: Mapping[str, Release]) -> None:
    """Two services of one release never listen on the same port, nor share a unit name."""
    for release in sorted(releases):
        ports: dict[int, str] = {}
        units: dict[str, str] = {}
        for name, project in sorted(projects.items()):
            if project.version_for(release) is None:
                continue
            for package in project.packages:
                for unit in package.unit_names:
                    if unit in units and units[unit] != name:
                        raise t.fail(name, f"packages: {package.name}: unit {unit!r} is "
                                           f"also a unit of {units[unit]}")
                    units[unit] = name
                for service in package.uwsgi:
                    if service.port in ports:
                        raise t.fail(name, f"packages: {package.name}: uwsgi {service.name}: "
                                           f"port {service.port} is taken by "
                                           f"{ports[service.port]} in release {release}")
                    ports[service.port] = f"{name}'s {service.name}"


def _project(name: str, t: Table, releases: Mapping[str, Release],
             distributions: Mapping[str, Distribution]) -> Project:
    t.check("", name, allowlist.DEB_NAME)
    excluded_t = t.table("exclude_distributions", {})
    excluded = []
    for dist in sorted(excluded_t.data):
        if dist not in distributions:
            raise excluded_t.fail(dist, f"unknown distribution (defined: "
                                        f"{', '.join(sorted(distributions))})")
        excluded.append((dist, excluded_t.string(dist, kind=allowlist.DESCRIPTION)))
    versions_t = t.table("versions")
    versions = []
    for release in sorted(versions_t.data):
        version = versions_t.string(release, kind=allowlist.VERSION)
        if release not in releases:
            raise versions_t.fail(release, f"unknown release (defined: {', '.join(sorted(releases))})")
        versions.append((release, version))
    upstream = Upstream()
    if "upstream" in t.data:
        ut = t.table("upstream")
        git = ut.string("git", kind=allowlist.GIT_URL)
        refs_t = ut.table("refs")
        refs = []
        for release in sorted(refs_t.data):
            if release not in releases:
                raise refs_t.fail(release, f"unknown release (defined: {', '.join(sorted(releases))})")
            refs.append((release, refs_t.string(release, kind=allowlist.GIT_REF)))
        ut.done()
        upstream = Upstream(git, tuple(refs))
    user = t.string("user", None, kind=allowlist.USER)
    if user == "root":
        raise t.fail("user", "a service runs as its own system user, not root")
    home = t.string("home", f"/var/lib/{user}" if user else None, kind=allowlist.ABSOLUTE_PATH)
    packages = parse_packages(t, "packages", user, name, home)
    venv_names = {f"venv-{name}-{release}" for release, _ in versions}
    for package in packages:
        if package.name in venv_names:
            raise t.fail("packages", f"{package.name!r} is the venv package's own name")
        if package.creates_user and not user:
            raise t.fail("packages", f"{package.name} creates_user but the project has no 'user'")
    project = Project(
        name=name,
        pypi_name=t.string("pypi_name", name, kind=allowlist.PYPI_NAME),
        extras=t.strings("extras", (), kind=allowlist.PYPI_NAME),
        versions=tuple(versions),
        upstream=upstream,
        requirements=_requirements(t),
        user=user,
        home=home,
        packages=packages,
        excluded=tuple(excluded),
    )
    t.done()
    return project
