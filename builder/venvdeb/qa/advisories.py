"""Known vulnerabilities of pinned Python distributions, from OSV advisories.

OSV (https://ossf.github.io/osv-schema/) is the format the PyPA advisory database
and osv.dev publish, per ecosystem as a directory or zip of JSON records. An
advisory affects a pin when the pin is in one of its ``affected`` entries for the
PyPI package of that name: listed in ``versions``, or inside an ``ECOSYSTEM``
range by the schema's event rules (``introduced <= v < fixed``, ``introduced <= v
<= last_affected``; an ``introduced`` with no closing event is open-ended).
Versions are compared as PEP 440 versions, never as strings ("3.10" sorts above
"3.7"). Withdrawn advisories and ``GIT`` ranges (commits, not versions) are
skipped. Pure but for :func:`load`.
"""
from __future__ import annotations

import json
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from venvdeb.core import runner
from venvdeb.core.errors import AdvisoriesUnavailable, ConfigError

#: the range types whose events are package versions (GIT's are commits)
VERSION_RANGES = ("ECOSYSTEM", "SEMVER")


@dataclass(frozen=True)
class Range:
    #: (kind, version) in the record's order: introduced, fixed, last_affected
    events: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    package: NormalizedName
    versions: frozenset[str]
    ranges: tuple[Range, ...]
    source: str  # the file (or zip member) it was read from

    def affects(self, version: str) -> bool:
        if version in self.versions:
            return True
        v = _version(version)
        if v is None:
            return False
        if any(_version(listed) == v for listed in self.versions):
            return True
        return any(_in_range(r, v) for r in self.ranges)

    def fixed_after(self, version: str) -> tuple[str, ...]:
        """The fixed versions above ``version`` (sorted): where an upgrade ends it."""
        v = _version(version)
        found = {value for r in self.ranges for kind, value in r.events if kind == "fixed"}
        return tuple(sorted((f for f in found if (fv := _version(f)) is not None
                             and (v is None or fv > v)), key=lambda f: _version(f) or Version("0")))


@dataclass(frozen=True)
class Finding:
    package: NormalizedName
    pin: str
    advisory: Advisory

    @property
    def fixed_in(self) -> str:
        return ", ".join(self.advisory.fixed_after(self.pin)) or "no fix known"


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def _in_range(r: Range, v: Version) -> bool:
    """OSV's evaluation of one range: walk its events in version order up to ``v``."""
    events = []
    for kind, value in r.events:
        at = Version("0") if kind == "introduced" and value == "0" else _version(value)
        if at is not None and kind in ("introduced", "fixed", "last_affected"):
            events.append((at, kind))
    # at one version, introduced before its closing event
    events.sort(key=lambda e: (e[0], e[1] != "introduced"))
    affected = False
    for at, kind in events:
        if at > v:
            break
        if kind == "introduced":
            affected = True
        elif kind == "fixed":
            affected = False
        elif at < v:  # last_affected below v: v is past it
            affected = False
    return affected


def parse(record: Mapping[str, object], source: str) -> Iterator[Advisory]:
    """The PyPI advisories of one OSV record (one per affected package); none when
    withdrawn."""
    ident = record.get("id")
    if not isinstance(ident, str) or not ident:
        raise ConfigError(f"{source}: not an OSV record (no 'id')",
                          hint="give an OSV export: a directory or zip of OSV JSON records")
    if record.get("withdrawn"):
        return
    aliases = tuple(a for a in record.get("aliases") or () if isinstance(a, str))  # type: ignore[attr-defined]
    for entry in record.get("affected") or ():  # type: ignore[attr-defined]
        package = entry.get("package") or {}
        if package.get("ecosystem") != "PyPI" or not isinstance(package.get("name"), str):
            continue
        ranges = []
        for r in entry.get("ranges") or ():
            if r.get("type") not in VERSION_RANGES:
                continue
            ranges.append(Range(tuple((kind, str(value)) for event in r.get("events") or ()
                                      for kind, value in event.items())))
        yield Advisory(ident, aliases, canonicalize_name(package["name"]),
                       frozenset(str(v) for v in entry.get("versions") or ()), tuple(ranges),
                       source)


def load(path: Path) -> tuple[Advisory, ...]:
    """Every PyPI advisory of an OSV export: a directory of ``*.json`` records (at any
    depth) or a zip of them, as osv.dev publishes per ecosystem. Read once per process
    while its files are unchanged (a pipeline audits each release, then its summary)."""
    if not path.exists():
        raise AdvisoriesUnavailable(
            f"advisories: {path} does not exist",
            hint="give an OSV export: a directory or zip of OSV JSON records "
                 "(e.g. https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip)")
    stamp = _stamp(path)
    cached = _LOADED.get(path)
    if cached is not None and cached[0] == stamp:
        return cached[1]
    found: list[Advisory] = []
    for source, raw in _records(path):
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"advisories: {source}: not valid JSON: {exc}",
                              hint="the OSV export is damaged: fetch it again") from None
        if not isinstance(record, dict):
            raise ConfigError(f"advisories: {source}: not an OSV record (a JSON object)",
                              hint="give an OSV export: a directory or zip of OSV JSON records")
        found.extend(parse(record, source))
    _LOADED[path] = (stamp, tuple(found))
    return _LOADED[path][1]


#: export path -> (its files' names, sizes and mtimes when read, its advisories)
_LOADED: dict[Path, tuple[tuple[tuple[str, int, int], ...], tuple[Advisory, ...]]] = {}


def _stamp(path: Path) -> tuple[tuple[str, int, int], ...]:
    members = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    return tuple((str(m), (st := m.stat()).st_size, st.st_mtime_ns) for m in members)


def _records(path: Path) -> Iterable[tuple[str, bytes]]:
    if path.is_dir():
        for member in sorted(path.rglob("*.json")):
            yield str(member), member.read_bytes()
        return
    try:
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".json"):
                    yield f"{path}:{name}", archive.read(name)
    except zipfile.BadZipFile:
        raise ConfigError(f"advisories: {path} is neither a directory nor a zip",
                          hint="give an OSV export: a directory or zip of OSV JSON records") \
            from None


def findings(advisories: Iterable[Advisory],
             pins: Mapping[NormalizedName, str]) -> tuple[Finding, ...]:
    """Each (pin, advisory) where the advisory affects the pinned version, sorted by
    package and advisory id."""
    out = [Finding(a.package, pins[a.package], a) for a in advisories
           if a.package in pins and a.affects(pins[a.package])]
    unique = {(f.package, f.advisory.id): f for f in out}
    return tuple(unique[k] for k in sorted(unique))


#: how a report names the online source
ONLINE = "osv.dev (online, through pip-audit)"
_UNREACHABLE = re.compile(r"(Failed to resolve '[^']+'|Connection refused|timed out|"
                          r"Max retries exceeded[^(]*|Network is unreachable)")


def query_online(pins: Mapping[NormalizedName, str], cache: Path, log: Path
                 ) -> tuple[Advisory, ...]:
    """The advisories osv.dev knows for ``pins``, asked through pip-audit (``-s osv``,
    no resolution: exactly these pins). The service unreachable (this build host's
    network, or osv.dev down): AdvisoriesUnavailable, in one line. Never PyPI's JSON
    API, which may carry no vulnerabilities at all (a mirror) and so says nothing."""
    with tempfile.TemporaryDirectory(prefix="venvdeb-pip-audit-") as tmp:
        requirements, out = Path(tmp) / "pins.txt", Path(tmp) / "report.json"
        requirements.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())))
        result = runner.run(
            [sys.executable, "-m", "pip_audit", "--requirement", str(requirements), "--no-deps",
             "--disable-pip", "--vulnerability-service", "osv", "--format", "json",
             "--output", str(out), "--progress-spinner", "off", "--timeout", "20",
             "--cache-dir", str(cache)],
            log=log, check=False, env=runner.clean_environment(), what="pip-audit")
        if not out.exists():
            if "No module named pip_audit" in result.output:
                raise AdvisoriesUnavailable(
                    "audit: pip-audit is not installed here: no online advisory source",
                    hint="give an OSV export (--advisories PATH, or [audit] advisories)")
            why = _UNREACHABLE.search(result.output)
            raise AdvisoriesUnavailable(
                f"audit: the advisory service {ONLINE} cannot be reached"
                + (f": {why.group(1).strip()}" if why else f" (pip-audit exit "
                                                           f"{result.returncode})"),
                hint="run where the network reaches api.osv.dev, or give an OSV export "
                     f"fetched elsewhere (--advisories PATH); pip-audit's output: {log}")
        try:
            report = json.loads(out.read_text())
        except ValueError as exc:
            raise AdvisoriesUnavailable(f"audit: pip-audit wrote no JSON report ({exc})",
                                        hint=f"read {log}") from None
    return tuple(online_advisories(report))


def online_advisories(report: Mapping[str, object]) -> Iterator[Advisory]:
    """pip-audit's JSON report as advisories: each affects the pin it was found on;
    its fix versions are its range's ``fixed`` events."""
    for dep in report.get("dependencies") or ():  # type: ignore[attr-defined]
        name, version = dep.get("name"), dep.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        for vuln in dep.get("vulns") or ():
            fixed = tuple(("fixed", str(v)) for v in vuln.get("fix_versions") or ())
            yield Advisory(str(vuln.get("id")), tuple(str(a) for a in vuln.get("aliases") or ()),
                           canonicalize_name(name), frozenset({version}),
                           (Range(fixed),) if fixed else (), ONLINE)
