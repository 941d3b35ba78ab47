"""pip-tools in a distribution's tree: what compiles a lock for a distribution that
is not the host's (``venvdeb.python.chroot``).

trixie has no python3-piptools. Each lock makes a venv of the tree's python3 in
its scratch directory and installs the very pip-tools that venvdeb's own venv
runs, its dependencies pinned at the versions installed there (read with
importlib.metadata), wheels only, from the release's index; then it runs
``piptools_compile.py`` (copied in: it imports only piptools) as a script. Host
and target locks are made by the same pip-tools and pip, so they differ only
where the interpreter does. The venv lives and dies with the scratch directory
(a few seconds of downloads): a venv kept between runs would be writable by the
uid that prepares sdists' metadata.
"""
from __future__ import annotations

import importlib.metadata
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from venvdeb.core import runner
from venvdeb.core.errors import HostError, ResolutionError
from venvdeb.python import chroot

PIP_TOOLS = "pip-tools"
SCRIPT = Path(__file__).with_name("piptools_compile.py")
VENV = "locker"
REQUIREMENTS = "locker.txt"


def pins(environment: Mapping[str, str] | None = None, project: str = PIP_TOOLS,
         lookup: Callable[[str], importlib.metadata.Distribution] = importlib.metadata.distribution
         ) -> tuple[str, ...]:
    """``project`` and what it needs (markers evaluated in ``environment``: this
    interpreter's by default), each ``name==version`` as installed here; a
    requirement not installed here is left to the resolver."""
    env = {k: str(v) for k, v in (environment or default_environment()).items()}
    found: dict[str, str] = {}
    todo = [project]
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        try:
            dist = lookup(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found[name] = f"{dist.metadata['Name']}=={dist.version}"
        for text in dist.requires or ():
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({**env, "extra": ""}):
                todo.append(req.name)
    return tuple(sorted(found.values(), key=str.lower))


@dataclass(frozen=True)
class Step:
    argv: tuple[str, ...]
    what: str
    network: bool


#: Where pip-tools comes from when the release's index is a local directory: the
#: index bin/setup installs venvdeb's own dependencies from.
TOOL_INDEX = "https://pypi.org/simple"


def tool_index(index_url: str) -> str:
    """The index pip-tools is installed from: the release's, unless it is a local
    directory (a release's own wheels, no pip-tools there): then ``TOOL_INDEX``."""
    return TOOL_INDEX if index_url.startswith("file://") else index_url


def steps(python: str, index_url: str, compile_options: Sequence[str]) -> tuple[Step, ...]:
    """Pure: the commands, as the tree sees them (the scratch directory on /build)."""
    inside = chroot.INSIDE
    venv_python = str(inside / VENV / "bin" / "python")
    return (
        Step((python, "-m", "venv", "--without-pip", str(inside / VENV)),
             "making the pip-tools venv", False),
        Step((venv_python, str(chroot.PIP_RUNNER), "install", "--only-binary=:all:",
              "--index-url", tool_index(index_url), "--cache-dir", str(inside / "cache"),
              "-r", str(inside / REQUIREMENTS)),
             "installing pip-tools into it", True),
        Step((venv_python, str(inside / SCRIPT.name), *compile_options), "pip-compile", True),
    )


def compile_in(where: chroot.Place, box: Path, compile_options: Sequence[str], index_url: str,
               log: Path, distribution: str) -> runner.Result:
    """Run pip-compile with ``compile_options`` in the tree ``where``, working in the
    scratch directory ``box`` (its inputs already there); pip-compile's result."""
    assert where.root is not None
    chroot.target_pip(where.root)
    for sub in ("home", "tmp", "cache"):  # the user's; the inputs stay root's, read-only
        (box / sub).mkdir()
        where.give(box / sub)
    wanted = pins()
    if not any(canonicalize_name(pin.split("==")[0]) == PIP_TOOLS for pin in wanted):
        raise HostError(f"locking for {distribution} installs into its tree the pip-tools that "
                        f"venvdeb runs with, and there is none beside venvdeb",
                        hint="install venvdeb with its dependencies (bin/setup)")
    shutil.copyfile(SCRIPT, box / SCRIPT.name)
    (box / REQUIREMENTS).write_text("".join(f"{pin}\n" for pin in wanted))
    for name in (SCRIPT.name, REQUIREMENTS):
        (box / name).chmod(0o644)
    env = where.environment(box)
    *prepare, pip_compile = steps(where.python, index_url, compile_options)
    for step in prepare:
        result = runner.run(where.confine(box, step.argv, network=step.network), log=log,
                            cwd=box, env=env, check=False, what=step.what)
        if result.returncode != 0:
            raise ResolutionError(f"locking for {distribution} in its tree failed ({step.what}: "
                                  f"{', '.join(wanted)})", log=log,
                                  hint="read the log: the index must have these wheels")
    return runner.run(where.confine(box, pip_compile.argv, network=True), log=log, cwd=box,
                      env=env, check=False, what=pip_compile.what, heartbeat=30)
