"""A release's pins: upper-constraints, deny-list and extra pins, for one target.

Pure functions over text: parse, evaluate environment markers for the target
interpreter, drop the deny-listed names, and refuse conflicting pins.
"""
from __future__ import annotations

import platform
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from venvdeb.core.config import Distribution, Release
from venvdeb.core.errors import ConfigError

#: a project name as PEP 508 spells it
_PROJECT_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")

@dataclass(frozen=True)
class Pin:
    """One exact pin, and where it was written (``file:line`` or a config key)."""

    name: NormalizedName
    requirement: str
    version: str
    origin: str
    extra: bool = False  # from the config's extra_pins, not upper-constraints


@dataclass(frozen=True)
class PinSet:
    """The pins of a release that apply to a target, deny-list applied."""

    pins: tuple[Pin, ...]
    skipped_by_marker: int
    denied: tuple[str, ...]

    def names(self) -> frozenset[NormalizedName]:
        return frozenset(p.name for p in self.pins)

    def as_constraints(self) -> str:
        return "".join(f"{p.requirement}\n" for p in self.pins)


def marker_environment(distribution: Distribution) -> dict[str, str]:
    env = {key: str(value) for key, value in default_environment().items()}
    env["python_version"] = distribution.python_version
    host = ".".join(platform.python_version_tuple()[:2])
    if host != distribution.python_version:  # the target's, not this interpreter's
        env["python_full_version"] = distribution.python_version + ".0"
        env["implementation_version"] = env["python_full_version"]
    env["implementation_name"] = "cpython"
    env["platform_python_implementation"] = "CPython"
    env["sys_platform"] = "linux"
    env["platform_system"] = "Linux"
    env["platform_machine"] = {"amd64": "x86_64", "arm64": "aarch64"}.get(
        distribution.architecture, distribution.architecture)
    return env


def parse_pin_lines(lines: Iterable[str], source: str) -> list[tuple[Requirement, str]]:
    """Parse constraint lines; each comes back with its ``file:line`` origin."""
    out = []
    for number, raw in enumerate(lines, 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ConfigError(
                f"{source}:{number}: malformed constraint {raw.strip()!r}: {str(exc).splitlines()[0]}",
                hint="each line must read 'name===version' with an optional ';marker'",
            ) from None
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "===") or not specs[0].version.strip():
            raise ConfigError(
                f"{source}:{number}: {raw.strip()!r} is not an exact pin",
                hint="upper-constraints lines pin one version: 'name===version'")
        out.append((req, f"{source}:{number}"))
    return out


def check_requirement_lines(text: str, source: str) -> None:
    """Refuse a requirements file (global-requirements.txt) with a line that is not a
    requirement, naming ``file:line``."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            Requirement(line)
        except InvalidRequirement as exc:
            raise ConfigError(
                f"{source}:{number}: malformed requirement {raw.strip()!r}: "
                f"{str(exc).splitlines()[0]}",
                hint="each line must be a requirement: 'name>=version' with an optional ';marker'",
            ) from None


def check_denylist(text: str, source: str) -> None:
    """Refuse a deny-list with a line that is not a project name, naming ``file:line``."""
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line and not _PROJECT_NAME.fullmatch(line):
            raise ConfigError(f"{source}:{number}: {raw.strip()!r} is not a project name",
                              hint="a deny-list holds one project name a line")


def parse_denylist(text: str) -> frozenset[NormalizedName]:
    names = set()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            names.add(canonicalize_name(line))
    return frozenset(names)


def pins_for_target(
    upper_constraints: list[tuple[Requirement, str]],
    extra_pins: list[tuple[Requirement, str]],
    denylist: frozenset[NormalizedName],
    environment: Mapping[str, str],
) -> PinSet:
    """Apply markers and the deny-list; refuse two different pins of one name."""
    chosen: dict[NormalizedName, Pin] = {}
    skipped = 0
    denied: set[str] = set()
    tagged = [(req, origin, False) for req, origin in upper_constraints]
    tagged += [(req, origin, True) for req, origin in extra_pins]
    for req, origin, extra in tagged:
        if req.marker is not None and not req.marker.evaluate(dict(environment)):
            skipped += 1
            continue
        name = canonicalize_name(req.name)
        if name in denylist and not extra:
            denied.add(name)
            continue
        version = next(iter(req.specifier)).version
        pin = Pin(name, f"{req.name}=={version}", version, origin, extra)
        previous = chosen.get(name)
        if previous is not None:
            if previous.version != version:
                raise ConfigError(
                    f"conflicting pins for {req.name}: {previous.version} at {previous.origin} "
                    f"and {version} at {origin}",
                    hint="keep one pin per package for this Python version")
            continue
        chosen[name] = pin
    pins = tuple(sorted(chosen.values(), key=lambda p: p.name))
    return PinSet(pins, skipped, tuple(sorted(denied)))


def load_pins(release: Release, distribution: Distribution, config_path: Path) -> PinSet:
    """Read the release's files and config pins, for ``distribution``'s Python."""
    uc_path = release.upper_constraints
    uc = parse_pin_lines(uc_path.read_text(encoding="utf-8").splitlines(), str(uc_path))
    extra = parse_pin_lines(
        release.extra_pins,
        f"{config_path}: releases.\"{release.name}\".extra_pins line")
    extra = [(req, f"{config_path}: releases.\"{release.name}\".extra_pins ({req})")
             for req, _ in extra]
    deny = parse_denylist(release.denylist.read_text(encoding="utf-8")) \
        if release.denylist.exists() else frozenset()
    return pins_for_target(uc, extra, deny, marker_environment(distribution))
