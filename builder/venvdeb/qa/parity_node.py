"""The facts of ``venvdeb.qa.parity`` on a booted node.

``measure`` makes a node (``minbase`` with systemd), fetches what the
projects' packages need while it may use the network (Debian's mirror, and for
our side the candidate packages as a local repository: ours win by their
epoch), boots it, installs the packages offline as an operator would
(``apt-get install``, debconf noninteractive), waits for the units to settle,
then reads the facts: files, users and dpkg's database from the node's tree
(real root reads it from here), unit states and listening ports from the node.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from debian import deb822

from venvdeb.core import images
from venvdeb.core.config import Distribution
from venvdeb.core.errors import StateFileError
from venvdeb.core.files import read_json, write_if_changed
from venvdeb.core.workdir import shared_cache
from venvdeb.qa import candidates, chroot, node, parity
from venvdeb.qa.parity import NODE, Fact, Scope

#: as an operator installs, debconf answered by its defaults; fsync skipped (a throwaway node)
APT = ("env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "-y", "--no-install-recommends",
       "-o", "Dpkg::Options::=--force-unsafe-io")
UNIT_FILE = re.compile(r"^/(?:usr/)?lib/systemd/system/([^/]+\.(?:service|socket|timer))$")
INIT_SCRIPT = re.compile(r"^/etc/init\.d/([^/]+)$")
#: under /etc, but facts of another aspect (unit enablement, SysV links of an init script)
NOT_ETC = re.compile(r"^etc/(?:systemd/system/[^/]+\.wants/|rc[0-6S]\.d/)")
SETTLE = 60.0  # seconds at most for units to start and ports to open after the install


@dataclass(frozen=True)
class Measured:
    facts: tuple[Fact, ...]
    timings: tuple[tuple[str, float], ...]  # (step, seconds)
    state: str  # systemctl is-system-running after the install


def node_image(dist: Distribution, log: Path) -> Path:
    return images.tarball("minbase", dist.name, dist.architecture, dist.mirror,
                          shared_cache() / "chroot", log, packages=node.NODE_PACKAGES,
                          what="mmdebstrap (node)")


@contextmanager
def _tree(dist: Distribution, debs: Sequence[Path], log: Path) -> Iterator[chroot.Chroot]:
    """A fresh node tree; with ``debs``, seeing them as a local apt repository."""
    with ExitStack() as stack:
        binds: list[chroot.Bind] = []
        if debs:
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="venvdeb-parity-")))
            candidates.repo(tuple(debs), tmp / "repo", log)
            binds.append(chroot.Bind(tmp / "repo", candidates.CANDIDATES))
        box = stack.enter_context(chroot.session(node_image(dist, log), log, binds,
                                                 apt_cache=shared_cache() / "apt-archives"))
        if debs:
            candidates.enable(box)
        yield box


def measure(dist: Distribution, the_scopes: Sequence[Scope], debs: Sequence[Path],
            ports: Sequence[int], log: Path, *, cache: Path | None = None) -> Measured:
    """Install every scope's packages on one booted node (``debs``: ours, else
    Debian's) and read the facts. With ``cache``, facts measured before for the very
    same packages (apt's plan, name and version of each) by the same code are
    taken from there instead of booting: Debian's side changes only with the mirror."""
    install = [name for s in the_scopes for name in s.install]
    timings: list[tuple[str, float]] = []
    started = time.monotonic()

    def lap(step: str) -> None:
        nonlocal started
        timings.append((step, time.monotonic() - started))
        started = time.monotonic()

    with _tree(dist, debs, log) as box:
        box.run(["apt-get", "update"], network=True, what="apt-get update")
        box.run([*APT, "install", "--download-only", *install], network=True,
                what="apt-get install --download-only")
        kept = None
        if cache is not None:
            plan = box.run([*APT, "install", "--simulate", *install], what="apt-get -s").output
            kept = cache / f"{closure_key(plan, the_scopes, ports)}.json"
        lap("prepare")
        if kept is not None and kept.is_file():
            return _load(kept, timings)
        with node.booted(box, log) as booted:
            lap("boot")
            booted.run([*APT, "install", *install], what="apt-get install (on the node)")
            lap("install")
            units = unit_owners(box.root, the_scopes)
            states = _settle(booted, tuple(units), tuple(ports))
            lap("settle")
            facts = [*tree_facts(box.root, the_scopes),
                     *(Fact(units[u], "unit", u, v) for u, v in states.items()),
                     *_ports(booted, units)]
            state = booted.state()
    measured = Measured(tuple(sorted(facts)), tuple(timings), state)
    if kept is not None:
        _store(kept, measured)
    return measured


#: the code that gathers facts: a change to it measures again
GATHERER = hashlib.sha256(b"".join(Path(m.__file__ or "").read_bytes()
                                   for m in (parity, sys.modules[__name__]))).hexdigest()


def closure_key(simulated: str, the_scopes: Sequence[Scope], ports: Sequence[int]) -> str:
    """What the facts of a node depend on: every package apt installs, with its
    version (``apt-get -s`` says ``Inst name (version ...``), what was asked, the code."""
    installs = sorted(line.split(" [")[0] for line in simulated.splitlines()
                      if line.startswith("Inst "))
    text = json.dumps([GATHERER, installs, [dataclasses.astuple(s) for s in the_scopes],
                       sorted(ports)])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _store(path: Path, measured: Measured) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_if_changed(path, json.dumps({
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "state": measured.state, "timings": measured.timings,
        "facts": [dataclasses.astuple(f) for f in measured.facts]}, indent=1) + "\n")


def _load(path: Path, timings: list[tuple[str, float]]) -> Measured:
    data = read_json(path, hint=f"delete {path}: the node is measured again")
    try:
        facts = tuple(Fact(*f) for f in data["facts"])
        return Measured(facts, (*timings, *((f"{step} (then)", s) for step, s in data["timings"])),
                        f"{data['state']} when measured, {data['measured']}; the same packages "
                        f"since (cached in {path})")
    except (KeyError, TypeError) as exc:
        raise StateFileError(f"{path} is not a parity record (bad or missing {exc})",
                             hint=f"delete {path}: the node is measured again") from None


# --- the tree, read from here ------------------------------------------------------------------

def _entries(root: Path, table: str) -> list[list[str]]:
    return [line.split(":") for line in (root / "etc" / table).read_text().splitlines()
            if line.count(":") >= 3]


def _mine(name: str, scope: Scope) -> bool:
    """A name of ``scope``'s: its user, or the project's name (alone or before -._)."""
    return name == scope.user or re.match(rf"{re.escape(scope.project)}(?:[-._]|$)", name) \
        is not None


def installed(root: Path) -> dict[str, str]:
    """Installed package -> its source package, from dpkg's database."""
    out = {}
    with (root / "var/lib/dpkg/status").open(encoding="utf-8") as status:
        for para in deb822.Deb822.iter_paragraphs(status):
            if para.get("Status", "").endswith(" installed"):
                out[para["Package"]] = para.get("Source", para["Package"]).split(" ")[0]
    return out


def owned(root: Path, packages: Sequence[str]) -> frozenset[str]:
    """The paths dpkg lists for ``packages``."""
    info = root / "var/lib/dpkg/info"
    paths: set[str] = set()
    for package in packages:
        for listing in (info / f"{package}.list", *info.glob(f"{package}:*.list")):
            if listing.exists():
                paths.update(listing.read_text().splitlines())
    return frozenset(paths)


def _ours(root: Path, scope: Scope) -> tuple[list[str], frozenset[str]]:
    packages = sorted(p for p, source in installed(root).items() if source == scope.source)
    return packages, owned(root, packages)


def unit_owners(root: Path, the_scopes: Sequence[Scope]) -> dict[str, str]:
    """The units the scopes' packages install (an init script without a unit is
    one too: systemd generates it), unit -> project."""
    out: dict[str, str] = {}
    for scope in the_scopes:
        for path in sorted(_ours(root, scope)[1]):
            unit = UNIT_FILE.match(path)
            script = INIT_SCRIPT.match(path)
            if unit:
                out[unit.group(1)] = scope.project
            elif script:
                out.setdefault(f"{script.group(1)}.service", scope.project)
    return out


def tree_facts(root: Path, the_scopes: Sequence[Scope]) -> list[Fact]:
    """Packages, users, groups, /etc and /usr/bin of each scope, read in the tree."""
    users = {int(e[2]): e[0] for e in _entries(root, "passwd") if e[2].isdigit()}
    groups = {int(e[2]): e[0] for e in _entries(root, "group") if e[2].isdigit()}
    base_uid, base_gid = os.stat(root).st_uid, os.stat(root).st_gid  # the node's root
    facts = []
    for scope in the_scopes:
        packages, files = _ours(root, scope)
        facts += [Fact(scope.project, "package", p, "installed") for p in packages]
        facts += [Fact(scope.project, "user", e[0], f"home {e[5]}, shell {e[6]}")
                  for e in _entries(root, "passwd") if len(e) > 6 and _mine(e[0], scope)]
        facts += [Fact(scope.project, "group", e[0], f"members {e[3] or '(none)'}")
                  for e in _entries(root, "group") if _mine(e[0], scope)]
        facts += [Fact(scope.project, "command", Path(p).name, "yes") for p in sorted(files)
                  if p.startswith("/usr/bin/") and os.path.lexists(root / p.lstrip("/"))]
        for dirpath, dirnames, filenames in os.walk(root / "etc"):
            dirnames.sort()
            for name in (*dirnames, *sorted(filenames)):
                path = Path(dirpath) / name
                rel = str(path.relative_to(root))
                if NOT_ETC.match(rel):
                    continue
                st = path.lstat()
                if not is_etc(scope, f"/{rel}", files, stat.S_ISDIR(st.st_mode)):
                    continue
                kind = "dir" if stat.S_ISDIR(st.st_mode) else \
                    "link" if stat.S_ISLNK(st.st_mode) else "file"
                owner = users.get(st.st_uid - base_uid, str(st.st_uid - base_uid))
                group = groups.get(st.st_gid - base_gid, str(st.st_gid - base_gid))
                facts.append(Fact(scope.project, "etc", f"/{rel}",
                                  f"{kind} {owner}:{group} {stat.S_IMODE(st.st_mode):04o}"))
    return facts


def is_etc(scope: Scope, path: str, files: frozenset[str], directory: bool) -> bool:
    """``path`` (absolute, under /etc) is ``scope``'s: a file of its packages, or named
    after it (a directory only so: /etc/logrotate.d is not keystone's)."""
    if NOT_ETC.match(path.lstrip("/")) or not path.startswith("/etc/"):
        return False
    return (path in files and not directory) or \
        any(_mine(part, scope) for part in path.split("/")[2:])


# --- on the booted node ------------------------------------------------------------------------

def _states(booted: node.Node, units: Sequence[str]) -> dict[str, str]:
    """unit -> 'enabled, active' (``systemctl is-enabled``, ``is-active``)."""
    out = {}
    for unit in units:
        said = [booted.run(["systemctl", verb, unit], check=False, what=f"systemctl {verb}")
                .output.strip().splitlines() for verb in ("is-enabled", "is-active")]
        out[unit] = ", ".join(s[-1] if s else "unknown" for s in said)
    return out


LISTENER = re.compile(r"^\S+\s+\d+\s+\d+\s+(\S+):(\d+)\s+\S+\s*(.*)$")
PROCESS = re.compile(r'\("([^"]+)",pid=(\d+),')


def listeners(ss_output: str) -> dict[int, tuple[str, tuple[int, ...]]]:
    """``ss -ltnpH``: port -> (first process name, pids)."""
    out: dict[int, tuple[str, tuple[int, ...]]] = {}
    for line in ss_output.splitlines():
        match = LISTENER.match(line.strip())
        if not match:
            continue
        processes = PROCESS.findall(match.group(3))
        name, pids = out.get(int(match.group(2)), ("", ()))
        out[int(match.group(2))] = (name or (processes[0][0] if processes else "?"),
                                    tuple(sorted({*pids, *(int(p) for _, p in processes)})))
    return out


def cgroup_unit(cgroup_line: str) -> str | None:
    """The unit of a ``/proc/PID/cgroup`` line (``0::/system.slice/x.service``)."""
    parts = [p for p in cgroup_line.strip().split(":", 2)[-1].split("/") if p]
    units = [p for p in parts if re.search(r"\.(?:service|socket|scope)$", p)]
    return units[-1] if units else None


def _ports(booted: node.Node, units: dict[str, str]) -> list[Fact]:
    found = listeners(booted.run(["ss", "-ltnpH"], what="ss -ltnp").output)
    facts = []
    for port, (process, pids) in sorted(found.items()):
        unit = None
        for pid in pids:
            read = booted.run(["cat", f"/proc/{pid}/cgroup"], check=False, what="cgroup")
            unit = cgroup_unit(read.output.splitlines()[-1]) if read.returncode == 0 and \
                read.output.strip() else None
            if unit:
                break
        facts.append(Fact(units.get(unit or "", NODE), "port", f"tcp/{port}",
                          unit or f"process {process}"))
    return facts


def _settle(booted: node.Node, units: tuple[str, ...], ports: tuple[int, ...]
            ) -> dict[str, str]:
    """The units' states once none is still starting and the expected ports listen
    (or ``SETTLE`` seconds passed: then as they are)."""
    deadline = time.monotonic() + SETTLE
    while True:
        states = _states(booted, units)
        listening = listeners(booted.run(["ss", "-ltnpH"], what="ss -ltnp").output)
        starting = any(s.endswith(("activating", "reloading")) for s in states.values())
        if (not starting and all(p in listening for p in ports)) or time.monotonic() > deadline:
            return states
        time.sleep(2)
