"""The exact closure of a project in the release's wheel repository.

pip resolves the project's source tree (with its extras) against the
wheelhouse alone, with the network cut, and reports what it would install;
the result becomes ``requirements.txt`` with each wheel's own hash.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from venvdeb.core import runner, sandbox
from venvdeb.core.errors import ResolutionError
from venvdeb.core.files import write_atomic
from venvdeb.python import chroot
from venvdeb.python.wheelhouse import Record


@dataclass(frozen=True)
class Closure:
    project: str
    records: tuple[Record, ...]  # every dependency, the project itself excluded

    def requirements(self, header: str) -> str:
        lines = [f"# {line}\n" for line in header.splitlines()]
        lines.append("--require-hashes\n")
        for r in sorted(self.records, key=lambda r: r.name):
            lines.append(f"{r.name}=={r.version} --hash=sha256:{r.sha256}\n")
        return "".join(lines)


_NOT_FOUND = re.compile(r"No matching distribution found for ([^\s]+)")


def resolve(source_dir: Path, extras: tuple[str, ...], project_name: str, files_dir: Path,
            records: tuple[Record, ...], log: Path, python_version: str,
            requirements: tuple[str, ...] = (), where: chroot.Place = chroot.HOST
            ) -> Closure:
    """``requirements``: what the project needs but does not declare (libvirt-python for
    nova-compute); they join the closure.

    Preparing the project's metadata runs its setup.py (upstream code): pip runs
    confined with the network cut, the target's own pip on its interpreter, on copies
    of the tree and the wheels in a scratch directory: on the host as the sandbox
    user, or in the distribution's tree (``where``, venvdeb.python.chroot)."""
    with where.scratch("closure") as box:
        tree = box / "src"
        shutil.copytree(source_dir, tree, symlinks=True)
        where.give(tree)
        wheels = sandbox.readable_dir(box / "files")
        # the lock's wheels only: the build lock's (which build sdists) may hold other
        # versions of the same names (pbr), never installed into a venv
        for wheel in records:
            path = files_dir / wheel.file
            if path.is_file() and not path.is_symlink():
                sandbox.lend(path, wheels / wheel.file)
        inside = where.inside(box)
        if where.root is not None:
            for sub in ("home", "tmp"):
                (box / sub).mkdir()
                where.give(box / sub)
        target = f"{inside / 'src'}[{','.join(extras)}]" if extras else str(inside / "src")
        env = where.environment(box, {"PBR_VERSION": python_version})
        result = runner.run(
            where.confine(box, [where.python, chroot.target_pip(where.root), "install",
                                "--dry-run", "--ignore-installed", "--use-pep517", "--quiet",
                                "--report", str(inside / "report.json"),
                                "--no-index", "--find-links", str(inside / "files"),
                                "--no-cache-dir", target, *requirements]),
            log=log, env=env, check=False, what="pip (closure)")
        if result.returncode != 0:
            missing = _NOT_FOUND.findall(result.output)
            if missing:
                raise ResolutionError(
                    f"{project_name} needs {', '.join(dict.fromkeys(missing))}, which the "
                    f"release's wheel repository does not have",
                    hint="the lock must be rebuilt with this project in scope: venvdeb lock, "
                         "venvdeb wheels, venvdeb reqdeb", log=log)
            raise ResolutionError(f"resolving the dependencies of {project_name} failed",
                                  hint="read the log", log=log)
        installs = json.loads(sandbox.read_output(box / "report.json", "pip (closure)"))["install"]
        own_url = f"file://{inside / 'src'}"
    by_key = {(r.name, r.version): r for r in records}
    chosen = []
    own = canonicalize_name(project_name)
    for item in installs:
        name = canonicalize_name(item["metadata"]["name"])
        version = item["metadata"]["version"]
        if name == own and "dir_info" in item.get("download_info", {}) or \
                item.get("download_info", {}).get("url", "").startswith(own_url):
            continue
        record = by_key.get((name, version))
        if record is None:
            raise ResolutionError(f"{project_name} resolved to {name} {version}, which is not "
                                  f"in the manifest of the wheel repository", log=log)
        chosen.append(record)
    return Closure(project_name, tuple(chosen))


def cache_key(source_sha256: str, extras: tuple[str, ...], project_name: str,
              python_version: str, requirements: tuple[str, ...],
              records: tuple[Record, ...], *, interpreter: str = "") -> str:
    """Everything the resolution depends on: the same inputs give the same closure.
    ``interpreter``: the target's Python (major.minor; markers follow it), part of
    the key when given (the same wheels resolve apart on 3.11 and 3.13)."""
    data: list[object] = [source_sha256, list(extras), project_name, python_version,
                          list(requirements), sorted((r.name, r.version, r.sha256) for r in records)]
    if interpreter:
        data.append(interpreter)
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


def cached(cache: Path, key: str, project_name: str,
           records: tuple[Record, ...]) -> Closure | None:
    """A closure resolved before from the same inputs (content-addressed: never stale)."""
    path = cache / f"{key}.json"
    if not path.exists():
        return None
    by_key = {(r.name, r.version): r for r in records}
    try:
        chosen = [by_key[(name, version)] for name, version in json.loads(path.read_text())]
    except (ValueError, KeyError, TypeError):
        return None  # damaged: resolve again
    return Closure(project_name, tuple(chosen))


def store(cache: Path, key: str, found: Closure) -> None:
    write_atomic(cache / f"{key}.json", json.dumps([(r.name, r.version) for r in found.records]))
