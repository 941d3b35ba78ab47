"""``venvdeb lock``: compile a release into a hash-locked set with pip-tools.

The plan (pip-compile's input files and argv) is pure data; only ``compile``
runs pip-compile. ``parse_lock`` reads the result back.
"""
from __future__ import annotations

import hashlib
import re
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from venvdeb.core import runner, sandbox
from venvdeb.core.config import Config, Distribution, Release, Scope
from venvdeb.core.errors import ConfigError, ResolutionError, VenvdebError
from venvdeb.core.files import write_atomic
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.python import chroot, index, locker, piptools_compile
from venvdeb.python.constraints import PinSet
from venvdeb.python.index import IndexFile

LOCK_FORMAT = "venvdeb-lock-1"
NEW_LOCK = "lock.new.txt"
BUILD_CONSTRAINTS = "build-constraints.txt"


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
    scope: Scope | Literal["build"]
    requirements_in: str
    constraints: str
    index_url: str
    #: wheels only (the build lock: a build requirement is never built from source)
    only_binary: bool = False
    #: for messages: ``trixie (Python 3.13)``
    target: str = ""
    #: what the build environments of sdists whose metadata pip prepares may install
    #: (``--build-constraint``): the release's extra pins (setuptools < 81 keeps the
    #: pkg_resources that old setup.py files import)
    build_constraints: str = ""

    @property
    def digest(self) -> str:
        """Identifies the inputs: the same plan gives the same lock."""
        h = hashlib.sha256()
        for part in (LOCK_FORMAT, self.scope, self.index_url, self.requirements_in, self.constraints):
            h.update(part.encode() + b"\0")
        if self.only_binary:
            h.update(b"only-binary\0")
        if self.build_constraints:
            h.update(b"build-constraints\0" + self.build_constraints.encode() + b"\0")
        return h.hexdigest()


def plan(config: Config, release: Release, distribution: Distribution, pins: PinSet,
         scope: Scope | None = None) -> LockPlan:
    scope = scope or release.scope
    extra = [p for p in pins.pins if p.extra]
    header = (f"# venvdeb: release {release.name} ({release.series}), {distribution.name}, "
              f"Python {distribution.python_version}, scope {scope}\n")
    if scope == "all":
        body = "".join(f"{p.requirement}\n" for p in pins.pins)
        requirements_in = header + body
        constraints = ""
    else:
        projects = config.projects_for(release.name, distribution.name)
        if not projects:
            raise ConfigError(
                f"{config.path}: no project has a version for release {release.name}",
                hint=f"add versions.\"{release.name}\" to a [projects.X] table or use --scope all")
        lines = [line for p in projects for line in p.lock_inputs(release.name)]
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
                    release.index_url,
                    target=f"{distribution.name} (Python {distribution.python_version})",
                    build_constraints="".join(f"{p.requirement}\n" for p in extra))


#: index pages and metadata fetched at once before pip-compile resolves, and the pages
#: again before it hashes (venvdeb.python.piptools_compile; bench/lock measures it; 0: off)
PREFETCH = 16


def options(lock_plan: LockPlan, cache_dir: Path, index_url: str | None = None) -> list[str]:
    """pip-compile's options and input, whatever runs it (``index_url``: where the
    release's index is seen from there, if not at its own URL)."""
    return [
        *((f"--venvdeb-prefetch={PREFETCH}",) if PREFETCH else ()),
        "--generate-hashes", "--allow-unsafe", "--strip-extras",
        "--no-header", "--no-emit-index-url", "--no-emit-trusted-host",
        "--resolver=backtracking", "--newline=LF",
        "--index-url", index_url or lock_plan.index_url,
        "--cache-dir", str(cache_dir),
        "--output-file", NEW_LOCK,
        *((f"--pip-args={' '.join(pip_args)}",) if (pip_args := _pip_args(lock_plan)) else ()),
        *(("--no-emit-options",) if lock_plan.only_binary else ()),
        "requirements.in",
    ]


def _pip_args(lock_plan: LockPlan) -> list[str]:
    return [*(("--only-binary=:all:",) if lock_plan.only_binary else ()),
            *(("--build-constraint", BUILD_CONSTRAINTS) if lock_plan.build_constraints else ())]


def argv(lock_plan: LockPlan, cache_dir: Path) -> list[str]:
    """pip-compile on the host: venvdeb's own interpreter and pip-tools."""
    return [sys.executable, "-m", "venvdeb.python.piptools_compile", *options(lock_plan, cache_dir)]


def is_current(lock_plan: LockPlan, lock_dir: Path) -> bool:
    """The lock in ``lock_dir`` was compiled from these very inputs."""
    stamp = lock_dir / "lock.inputs"
    return (lock_dir / "lock.txt").exists() and stamp.exists() \
        and stamp.read_text().strip() == lock_plan.digest


def compile_lock(lock_plan: LockPlan, lock_dir: Path, log: Path, pins: PinSet, *,
                 force: bool = False, where: chroot.Place = chroot.HOST) -> bool:
    """Write ``lock.txt`` in ``lock_dir`` (pip-compile running ``where``: the host, or
    the distribution's tree); return False when it was up to date."""
    stamp = lock_dir / "lock.inputs"
    lock_file = lock_dir / "lock.txt"
    if not force and is_current(lock_plan, lock_dir):
        return False
    lock_dir.mkdir(parents=True, exist_ok=True)
    # pip-compile writes a fresh file (it would prefer the pins of an existing
    # one); the previous lock stays in place until the new one is complete.
    new = lock_dir / NEW_LOCK
    new.unlink(missing_ok=True)
    write_atomic(lock_dir / "requirements.in", lock_plan.requirements_in)
    write_atomic(lock_dir / "constraints.txt", lock_plan.constraints)
    write_atomic(lock_dir / BUILD_CONSTRAINTS, lock_plan.build_constraints)
    _check_reachable(lock_plan.index_url)
    # Preparing an sdist's metadata runs its setup.py: pip-compile runs confined
    # (the sandbox user; it needs the index, so the network stays), in a scratch
    # directory with a cache of its own; the lock it writes is copied back. In a
    # distribution's tree, pip-tools is installed there first (venvdeb.python.locker).
    with where.scratch("lock") as box:
        for name in ("requirements.in", "constraints.txt", BUILD_CONSTRAINTS):
            sandbox.lend(lock_dir / name, box / name)
        if where.root is None:
            result = runner.run(where.confine(box, argv(lock_plan, box / "cache"), network=True),
                                log=log, cwd=box, env=where.environment(box), check=False,
                                what="pip-compile", heartbeat=30)
        else:
            # a local index (file://) is bound read-only into the scratch directory
            inside, where = chroot.index_in(where, box, lock_plan.index_url)
            result = locker.compile_in(where, box,
                                       options(lock_plan, chroot.INSIDE / "cache", inside),
                                       lock_plan.index_url, log, lock_plan.distribution)
        if result.returncode != 0:
            raise explain_failure(result.output, pins, log, lock_plan.index_url,
                                  target=lock_plan.target)
        write_atomic(new, sandbox.read_output(box / NEW_LOCK, "pip-compile"))
    header = f"# {LOCK_FORMAT} {lock_plan.digest}\n{lock_plan.requirements_in.splitlines()[0]}\n"
    write_atomic(new, header + new.read_text())
    parse_lock(new)  # refuse a lock we could not read back
    new.replace(lock_file)
    write_atomic(stamp, lock_plan.digest + "\n")
    return True


def _check_reachable(index_url: str) -> None:
    """A file:// index must be readable by the sandbox user pip-compile runs as."""
    if not index_url.startswith("file://"):
        return
    path = Path(urllib.parse.urlparse(index_url).path)
    blocked = sandbox.unreachable(path) if path.exists() else None
    if blocked is not None:
        raise ConfigError(
            f"the package index {index_url} is not readable by the user '{sandbox.USER}' "
            f"that locking runs as: {blocked} is closed to other users",
            hint=f"chmod o+rx {blocked} (or serve the index over http)")


_NO_VERSION = re.compile(r"Could not find a version that satisfies the requirement ([^\s]+)")
_CAUSE = re.compile(r"SpecifierRequirement\('([^']+)'\)(?:, parent=LinkCandidate\('[^']*/([^/#']+)#)?")
#: pip's words when the index cannot be reached (it then reports "conflicts": no candidates)
_UNREACHABLE = re.compile(r"[^\n]*(?:CERTIFICATE_VERIFY_FAILED|Max retries exceeded|Could not fetch "
                          r"URL|Temporary failure in name resolution|Network is unreachable)"
                          r"[^\n]*")
_CONFLICT = re.compile(r"The conflict is caused by:(.*?)(?:\n\n|To fix)", re.S)
#: pip's words for versions whose Requires-Python excludes the interpreter
_OTHER_PYTHON = re.compile(r"Ignored the following versions that require a different python "
                           r"version: ([^\n]+)")


def explain_failure(output: str, pins: PinSet, log: Path, index_url: str,
                    lister: Callable[[str, str], Sequence[IndexFile]] = index.project_files,
                    *, target: str = "") -> ResolutionError:
    """Turn pip-compile's output into one line naming the culprit.

    pip-tools hides pip's explanation of a ResolutionImpossible, so the names
    it mentions are looked up: a pin whose version the index lacks is named
    with the file and line that pins it.
    """
    unreachable = _UNREACHABLE.search(output)
    if unreachable:
        return ResolutionError(
            f"pip-compile could not reach the package index {index_url}: "
            f"{unreachable.group(0).strip()[:200]}",
            hint="check the network, proxy variables and CA certificates (SSL_CERT_FILE; "
                 "pip's own configuration is ignored)", log=log)
    wanted = [m.group(1) for m in _NO_VERSION.finditer(output)]
    other_python = _OTHER_PYTHON.search(output)
    if other_python and wanted:
        return ResolutionError(
            f"{wanted[0]} does not support the Python of {target or 'the target'}: the index "
            f"has it only for other Pythons ({other_python.group(1).strip()[:200]})",
            hint="exclude the project from that distribution (exclude_distributions, with the "
                 "reason), or pin a version that supports its Python", log=log)
    causes = [(m.group(1), m.group(2)) for m in _CAUSE.finditer(output)]
    names: list[NormalizedName] = []
    for text in [*wanted, *(c for c, _ in causes)]:
        name = canonicalize_name(re.split(r"[=<>!~\[;\s]", text, maxsplit=1)[0])
        if name not in names:
            names.append(name)
    by_name = {p.name: p for p in pins.pins}
    for name in names:
        pin = by_name.get(name)
        if pin is None:
            continue
        try:
            files = lister(index_url, name)
        except VenvdebError:
            files = ()
        versions = sorted({v for v in (_file_version(f.filename) for f in files) if v is not None})
        if Version(pin.version) not in versions:
            have = ", ".join(str(v) for v in versions[-5:]) or "none"
            return ResolutionError(
                f"the package index has no version {pin.version} of {name} (pinned at {pin.origin}); "
                f"it has {have}",
                hint="fix the pin, or point index_url at an index that has it", log=log)
    match = _CONFLICT.search(output)
    if match or causes:
        detail = " ".join(match.group(1).split()) if match else "; ".join(
            f"{req} (needed by {parent or 'the input'})" for req, parent in causes)
        pinned = [f"{n} pinned {by_name[n].version} at {by_name[n].origin}" for n in names
                  if n in by_name]
        where = f"; {', '.join(pinned)}" if pinned else ""
        return ResolutionError(f"conflicting requirements: {detail[:300]}{where}",
                               hint="relax or align the pins named above", log=log)
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    tail = next((line for line in reversed(lines) if "error" in line.lower()),
                lines[-1] if lines else "")
    return ResolutionError(f"pip-compile failed: {tail}", log=log)


def _file_version(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename, InvalidVersion):
        return None


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


def entries_for(work: Workdir, t: Target) -> tuple[LockEntry, ...]:
    """The lock of a release on a distribution, as ``venvdeb lock`` left it."""
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    if not lock_file.exists():
        raise ConfigError(f"no lock for release {t.release.name} on {t.distribution.name} "
                          f"({lock_file} is missing)",
                          hint=f"run 'venvdeb lock --release {t.release.name}' first")
    return parse_lock(lock_file)


def pinned(text: str) -> dict[str, str]:
    """``name==version`` lines of pip-compile's inputs (requirements.in, constraints.txt)
    as canonical name -> version; comments, options and ranges are skipped."""
    return piptools_compile.pinned_text(text)


def pinned_inputs(lock_dir: Path) -> dict[str, str]:
    """The pins the lock in ``lock_dir`` was compiled from (its input files, kept there)."""
    return piptools_compile.pinned([lock_dir / "constraints.txt", lock_dir / "requirements.in"])
