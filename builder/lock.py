"""``venvdeb lock``: compile a release into a hash-locked set with pip-tools.

The plan (pip-compile's input files and argv) is pure data; only ``compile``
runs pip-compile. ``parse_lock`` reads the result back.
"""
from __future__ import annotations

import hashlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name

from builder import command
from builder.config import Config, Distribution, Release, Scope
from builder.constraints import PinSet
from builder.errors import ConfigError, ResolutionError

LOCK_FORMAT = "venvdeb-lock-1"


@dataclass(frozen=True)
class LockEntry:
    name: NormalizedName
    project_name: str
    version: str
    hashes: frozenset[str]

    @property
    def requirement(self) -> str:
        return f"{self.project_name}=={self.version}"


@dataclass(frozen=True)
class LockPlan:
    """What pip-compile gets: the input files' text and the argv tail."""

    release: str
    distribution: str
    scope: Scope
    requirements_in: str
    constraints: str
    index_url: str

    @property
    def digest(self) -> str:
        """Identifies the inputs: the same plan gives the same lock."""
        h = hashlib.sha256()
        for part in (LOCK_FORMAT, self.scope, self.index_url, self.requirements_in, self.constraints):
            h.update(part.encode() + b"\0")
        return h.hexdigest()


def plan(config: Config, release: Release, distribution: Distribution, pins: PinSet,
         scope: Scope | None = None) -> LockPlan:
    scope = scope or release.scope
    extra = [p for p in pins.pins if p.origin.startswith(str(config.path))]
    header = (f"# venvdeb: release {release.name} ({release.series}), {distribution.name}, "
              f"Python {distribution.python_version}, scope {scope}\n")
    if scope == "all":
        body = "".join(f"{p.requirement}\n" for p in pins.pins)
        requirements_in = header + body
        constraints = ""
    else:
        projects = config.projects_for(release.name)
        if not projects:
            raise ConfigError(
                f"{config.path}: no project has a version for release {release.name}",
                hint=f"add versions.\"{release.name}\" to a [projects.X] table or use --scope all")
        lines = [p.requirement_for(release.name) for p in projects]
        pinned = {p.name for p in extra}
        for project in projects:
            if canonicalize_name(project.pypi_name) in pins.names() - pinned:
                raise ConfigError(
                    f"{config.path}: projects.{project.name} pins {project.pypi_name} "
                    f"but upper-constraints pins it too",
                    hint="remove one of the two pins")
        body = "".join(f"{line}\n" for line in lines) + "".join(f"{p.requirement}\n" for p in extra)
        requirements_in = header + "-c constraints.txt\n" + body
        constraints = pins.as_constraints()
    return LockPlan(release.name, distribution.name, scope, requirements_in, constraints,
                    release.index_url)


def argv(lock_plan: LockPlan, cache_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "builder.piptools_compile",
        "--generate-hashes", "--allow-unsafe", "--strip-extras",
        "--no-header", "--no-emit-index-url", "--no-emit-trusted-host",
        "--resolver=backtracking", "--newline=LF",
        "--index-url", lock_plan.index_url,
        "--cache-dir", str(cache_dir),
        "--output-file", "lock.txt",
        "requirements.in",
    ]


def check_interpreter(distribution: Distribution) -> None:
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    if running != distribution.python_version:
        raise ConfigError(
            f"locking for {distribution.name} needs Python {distribution.python_version}, "
            f"but venvdeb runs on Python {running}",
            hint=f"create the tool's venv with {distribution.python}")


def compile_lock(lock_plan: LockPlan, lock_dir: Path, cache_dir: Path, log: Path,
                 pins: PinSet, *, force: bool = False) -> bool:
    """Write ``lock.txt`` in ``lock_dir``; return False when it was up to date."""
    stamp = lock_dir / "lock.inputs"
    lock_file = lock_dir / "lock.txt"
    if not force and lock_file.exists() and stamp.exists() \
            and stamp.read_text().strip() == lock_plan.digest:
        return False
    lock_dir.mkdir(parents=True, exist_ok=True)
    for stale in (stamp, lock_file):
        stale.unlink(missing_ok=True)
    (lock_dir / "requirements.in").write_text(lock_plan.requirements_in)
    (lock_dir / "constraints.txt").write_text(lock_plan.constraints)
    result = command.run(argv(lock_plan, cache_dir), log=log, cwd=lock_dir, check=False)
    if result.returncode != 0:
        lock_file.unlink(missing_ok=True)
        raise explain_failure(result.output, pins, log)
    text = lock_file.read_text()
    lock_file.write_text(f"# {LOCK_FORMAT} {lock_plan.digest}\n" + lock_plan.requirements_in.splitlines()[0]
                         + "\n" + text)
    parse_lock(lock_file)  # refuse a lock we could not read back
    stamp.write_text(lock_plan.digest + "\n")
    return True


_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)"
                         r"(?: \(from versions: ([^)]*)\))?")
_CONFLICT = re.compile(r"(?:conflict is caused by|Cannot install)(.*?)(?:\n\n|To fix)", re.S)


def explain_failure(output: str, pins: PinSet, log: Path) -> ResolutionError:
    """Turn pip-compile's output into one line naming the culprit."""
    match = _NO_VERSION.search(output)
    if match:
        wanted = match.group(1)
        try:
            name = canonicalize_name(Requirement(wanted).name)
        except InvalidRequirement:
            name = canonicalize_name(re.split(r"[=<>!~\[]", wanted)[0])
        origin = next((p.origin for p in pins.pins if p.name == name), None)
        where = f" (pinned at {origin})" if origin else ""
        versions = (match.group(2) or "").split(", ")
        have = f"; it has {', '.join(versions[-5:])}" if versions and versions[0] else ""
        return ResolutionError(
            f"the package index has no version of {wanted}{where}{have}",
            hint="fix the pin, or point index_url at an index that has it", log=log)
    match = _CONFLICT.search(output)
    if match:
        detail = " ".join(match.group(1).split())
        return ResolutionError(f"conflicting requirements: {detail[:400]}",
                               hint="relax or align the pins named above", log=log)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    tail = next((line for line in reversed(lines) if "error" in line.lower()), lines[-1] if lines else "")
    return ResolutionError(f"pip-compile failed: {tail}", log=log)


def parse_lock(path: Path) -> tuple[LockEntry, ...]:
    """Read a pip-compile ``--generate-hashes`` output into entries."""
    return parse_lock_text(path.read_text(encoding="utf-8"), str(path))


def parse_lock_text(text: str, source: str) -> tuple[LockEntry, ...]:
    entries: dict[NormalizedName, LockEntry] = {}
    logical: list[tuple[int, str]] = []
    current, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not current:
            start = number
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip():
            logical.append((start, current.strip()))
        current = ""
    for number, line in logical:
        parts = line.split()
        spec = parts[0]
        hashes = frozenset(p.split(":", 1)[1] for p in parts[1:] if p.startswith("--hash=sha256:"))
        try:
            req = Requirement(spec)
        except InvalidRequirement as exc:
            raise ConfigError(f"{source}:{number}: unreadable lock entry {spec!r}: {exc}") from None
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator not in ("==", "==="):
            raise ConfigError(f"{source}:{number}: lock entry {spec!r} is not pinned")
        if not hashes:
            raise ConfigError(f"{source}:{number}: lock entry {spec!r} has no sha256 hash",
                              hint="regenerate the lock with 'venvdeb lock'")
        name = canonicalize_name(req.name)
        entries[name] = LockEntry(name, req.name, specs[0].version, hashes)
    return tuple(sorted(entries.values(), key=lambda e: e.name))
