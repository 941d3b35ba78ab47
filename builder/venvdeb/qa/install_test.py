"""The install test: a project's packages on a clean system, then purged.

The plan (what to install and what must hold afterwards) is computed from the
config alone; ``run`` carries it out in a chroot that sees the candidate
packages as a local apt repository: downloads there with the network, then the
install, the checks and the purge on that chroot booted with systemd as PID 1
(``venvdeb.qa.node``, no network), so that units start, as on an operator's
node, and stop on purge; it reports what it saw, or the failing unit's journal.
"""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from venvdeb.core import runner
from venvdeb.core.binary_package import ConfigFile, Directory
from venvdeb.core.config import Project
from venvdeb.core.errors import CommandFailed, InstallTestFailed
from venvdeb.core.progress import say
from venvdeb.python.bytecode import UNCOMPILED, compiled_on_the_node
from venvdeb.qa import candidates
from venvdeb.qa import chroot as chroot_mod
from venvdeb.qa import node as node_mod
from venvdeb.qa import units as units_mod


@dataclass(frozen=True)
class InstallPlan:
    project: str
    install: tuple[str, ...]  # the distribution-named packages, as an operator installs them
    versions: tuple[tuple[str, str], ...]  # every package of the project, version expected
    reqdeb: tuple[str, str]  # the requirements package (a build dependency), tested alone
    wheel_index: str  # what it must install
    venv_path: str
    commands: tuple[tuple[str, ...], ...]  # run, each must exit 0
    links: tuple[str, ...]  # /usr/bin/<command>, each must resolve into the venv
    units: tuple[str, ...]  # daemons: ExecStart is a command of the venv
    uwsgi: tuple[tuple[str, str, str], ...]  # (unit, ini, wsgi script): uWSGI on the venv
    users: tuple[str, ...]
    directories: tuple[Directory, ...]
    config_files: tuple[ConfigFile, ...]


def plan(project: Project, release: str, version: str, reqdeb: tuple[str, str]) -> InstallPlan:
    packages = project.packages
    install = tuple(p.name for p in packages) or (project.venv_package(release),)
    versions = ((project.venv_package(release), version), *((p.name, version) for p in packages))
    users = tuple(sorted({project.user for p in packages if p.creates_user and project.user}))
    return InstallPlan(
        project=project.name,
        install=install,
        versions=versions,
        reqdeb=reqdeb,
        wheel_index=f"/usr/share/venvdeb/wheels/{release}/simple/index.html",
        venv_path=project.venv_path(release),
        commands=tuple(argv for p in packages for argv in p.smoke_commands()),
        links=tuple(f"/usr/bin/{c}" for p in packages for c in p.commands),
        units=tuple(u.name for p in packages for u in p.units),
        uwsgi=tuple((u.name, u.ini, u.wsgi_script) for p in packages for u in p.uwsgi),
        users=users,
        directories=tuple(d for p in packages for d in p.directories),
        config_files=tuple(c for p in packages for c in p.config_files),
    )


def _ids(root: Path, table: str) -> dict[int, str]:
    out = {}
    for line in (root / "etc" / table).read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[2].isdigit():
            out[int(fields[2])] = fields[0]
    return out


def _owner_problems(box: chroot_mod.Chroot, path: str, owner: str, group: str,
                    mode: str) -> list[str]:
    target = box.path(path)
    if not target.exists():
        return [f"{path} is missing"]
    st = target.stat()
    uid, gid = box.uid(st.st_uid), box.gid(st.st_gid)  # as the chroot's root sees them
    users, groups = _ids(box.root, "passwd"), _ids(box.root, "group")
    have = (users.get(uid, str(uid)), groups.get(gid, str(gid)),
            f"{st.st_mode & 0o7777:04o}")
    want = (owner, group, mode)
    return [] if have == want else [f"{path} is {':'.join(have[:2])} {have[2]}, "
                                    f"expected {owner}:{group} {mode}"]


def _exec_start(root: Path, unit: str) -> list[str] | None:
    """The words of ``unit``'s ExecStart= (its prefixes stripped)."""
    for base in ("lib/systemd/system", "usr/lib/systemd/system"):
        path = root / base / f"{unit}.service"
        if path.exists():
            for line in path.read_text().splitlines():
                if line.startswith("ExecStart="):
                    return line.split("=", 1)[1].lstrip("-@+!:").split()
    return None


def _unit_exec(root: Path, unit: str) -> str | None:
    words = _exec_start(root, unit)
    return words[0] if words else None


def _uwsgi_problems(root: Path, unit: str, ini: str, script: str, venv_path: str) -> list[str]:
    """A uWSGI unit runs Debian's uWSGI on our venv, with its ini and WSGI script."""
    words = _exec_start(root, unit)
    if not words:
        return [f"unit {unit}.service is missing or has no ExecStart"]
    problems = []
    if not (root / words[0].lstrip("/")).exists():
        problems.append(f"{unit}.service runs {words[0]}, which is not installed")
    for option, value in (("--virtualenv", venv_path), ("--ini", ini)):
        if option not in words or words[words.index(option) + 1 : words.index(option) + 2] != [value]:
            problems.append(f"{unit}.service does not pass {option} {value}")
    for path in (ini, script):
        if not (root / path.lstrip("/")).is_file():
            problems.append(f"{path} of {unit}.service is missing")
    return problems


def _new_since(root: Path, path: str, before: frozenset[str]) -> bool:
    """``path`` exists in the chroot and did not before (through /lib -> usr/lib aliases)."""
    target = root / path.lstrip("/")
    if not target.exists():
        return False
    real = Path(os.path.realpath(target))
    if not real.is_relative_to(root):
        return False
    rel = str(real.relative_to(root))
    return rel not in before and rel + "/" not in before


class _Runs(Protocol):
    """Where a step runs: the chroot before it boots, or the booted node."""

    def run(self, argv: Sequence[str], *, what: str | None = None,
            check: bool = True) -> runner.Result: ...


def _step(on: _Runs, subject: str, what: str, argv: list[str]) -> str:
    """A step that must succeed: its failure fails the install test of ``subject``."""
    try:
        return on.run(argv, what=what).output
    except CommandFailed as exc:
        raise InstallTestFailed(f"install test of {subject}: {what} failed "
                                f"({exc.hint or 'see the log'})", log=exc.log) from None


def _fetch(box: chroot_mod.Chroot, subject: str, what: str, argv: list[str]) -> str:
    """A step with the network (``apt-get update``, downloads): in the chroot before
    it boots, never while maintainer scripts run."""
    try:
        return box.run(argv, what=what, network=True).output
    except CommandFailed as exc:
        raise InstallTestFailed(f"install test of {subject}: {what} failed "
                                f"({exc.hint or 'see the log'})", log=box.log) from None


def _install(box: chroot_mod.Chroot, subject: str, args: list[str]) -> None:
    """``apt-get install ARGS``: everything fetched with the network, then installed
    (maintainer scripts run) with it cut."""
    argv = ["apt-get", "install", "-y", "--no-install-recommends", *args]
    _fetch(box, subject, "apt-get install --download-only",
           [*argv[:3], "--download-only", *argv[3:]])
    _step(box, subject, "apt-get install (offline)", argv)


#: How long a unit must stay up after install to count as running (Restart=on-failure
#: would otherwise hide a service that dies at once), and how long it may take to start.
SETTLE = 3.0
START_TIMEOUT = 60.0


def _unit_state(on: node_mod.Node, unit: str) -> dict[str, str]:
    out = on.run(["systemctl", "show", "-p", "LoadState,ActiveState,SubState,NRestarts,"
                  "UnitFileState", f"{unit}.service"], what=f"systemctl show {unit}",
                 check=False).output
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def _journal(on: node_mod.Node, unit: str, lines: int = 15) -> str:
    """The end of ``unit``'s journal (the whole of it goes to the log)."""
    out = on.run(["journalctl", "--no-pager", "-o", "cat", "-n", "200", "-u",
                  f"{unit}.service"], what=f"journalctl -u {unit}", check=False).output
    return " | ".join(out.strip().splitlines()[-lines:]) or "(its journal is empty)"


def running_problems(on: node_mod.Node, units: Sequence[str]) -> list[str]:
    """Each of ``units`` enabled, and active without a restart ``SETTLE`` seconds after it
    started (a unit still activating is waited for); a unit that is not: its journal."""
    problems = []
    deadline = time.monotonic() + START_TIMEOUT
    time.sleep(SETTLE)
    for unit in units:
        state = _unit_state(on, unit)
        while state.get("ActiveState") in ("activating", "reloading") and \
                time.monotonic() < deadline:
            time.sleep(0.5)
            state = _unit_state(on, unit)
        if state.get("UnitFileState") != "enabled":
            problems.append(f"{unit}.service is {state.get('UnitFileState') or 'not installed'},"
                            f" not enabled")
        if state.get("ActiveState") != "active" or state.get("NRestarts", "0") != "0":
            problems.append(
                f"{unit}.service did not start: {state.get('ActiveState', '?')} "
                f"({state.get('SubState', '?')}, restarted {state.get('NRestarts', '?')} times); "
                f"its journal: {_journal(on, unit)}")
    return problems


def stopped_problems(on: node_mod.Node, units: Sequence[str]) -> list[str]:
    """After the purge: each of ``units`` stopped and gone from systemd."""
    problems = []
    for unit in units:
        state = _unit_state(on, unit)
        if state.get("ActiveState") not in ("inactive", None) or \
                state.get("LoadState") != "not-found":
            problems.append(f"{unit}.service is {state.get('LoadState')} and "
                            f"{state.get('ActiveState')} after the purge; its journal: "
                            f"{_journal(on, unit)}")
    return problems


#: Modules of a venv that may lack bytecode after its postinst (a wheel's file for
#: another Python, which py3compile would skip too), as a share of all of them.
UNCOMPILED_SHARE = 0.01


def bytecode(root: Path, venv_path: str) -> tuple[int, list[str], int, list[str]]:
    """After the install: how many modules the venv's lib/ holds that its postinst
    compiles, and those it left without bytecode (``__pycache__/NAME.<tag>.pyc`` beside
    ``NAME.py``); how many it leaves uncompiled (the wheels' test suites:
    ``venvdeb.python.bytecode``), and those of them that have bytecode all the same."""
    lib = root / venv_path.lstrip("/") / "lib"
    modules, missing, tests, compiled_tests = 0, [], 0, []
    for top, dirs, files in os.walk(lib):
        if os.path.basename(top) == "__pycache__":
            continue
        cache = os.path.join(top, "__pycache__")
        cached = ({n.rsplit(".", 2)[0] for n in os.listdir(cache) if n.endswith(".pyc")}
                  if "__pycache__" in dirs else set())
        for name in files:
            if not name.endswith(".py"):
                continue
            path = "/" + os.path.relpath(os.path.join(top, name), root)
            if compiled_on_the_node(path):
                modules += 1
                if name[:-3] not in cached:
                    missing.append(path)
            else:
                tests += 1
                if name[:-3] in cached:
                    compiled_tests.append(path)
    return modules, missing, tests, compiled_tests


def bytecode_problems(root: Path, venv_path: str) -> tuple[list[str], str]:
    """The postinst compiled the venv's modules but the wheels' test suites (as
    py3compile does Debian's): problems, and the line of what was seen."""
    modules, missing, tests, compiled_tests = bytecode(root, venv_path)
    seen = (f"bytecode for {modules - len(missing):,} of {modules:,} modules (the "
            f"postinst's), {f'{len(compiled_tests):,}' if compiled_tests else 'none'} for "
            f"the {tests:,} of test suites")
    problems = []
    if modules and len(missing) > UNCOMPILED_SHARE * modules:
        problems.append(f"{len(missing):,} of {modules:,} modules of {venv_path} have no "
                        f"bytecode after the install (its postinst compiles them), e.g. "
                        f"{', '.join(sorted(missing)[:3])}")
    if compiled_tests:
        problems.append(f"{len(compiled_tests):,} modules of test suites in {venv_path} have "
                        f"bytecode after the install (its postinst skips them: compileall -x "
                        f"{UNCOMPILED}), e.g. {', '.join(sorted(compiled_tests)[:3])}")
    return problems, seen


#: What booting a node changes in its tree (systemd's state, the masks): not the packages'.
NODE_CHURN = ("etc/systemd/system/", "var/lib/systemd/", "var/lib/dbus/", "etc/machine-id",
              "var/lib/private/", "etc/.updated", "var/.updated")


def run(the_plan: InstallPlan, box: chroot_mod.Chroot) -> list[str]:
    """Fetch with the network, then on the node booted from ``box``: install (units start
    as on an operator's node), verify, purge (units stop), look for leftovers; the lines
    of what was seen."""
    root = box.root
    skip = (candidates.CANDIDATES, "var/cache/apt/archives")
    before = chroot_mod.snapshot(root, skip=skip)
    candidates.enable(box)
    seen: list[str] = []
    problems: list[str] = []
    subject = the_plan.project
    package, version = the_plan.reqdeb
    argv = ["apt-get", "install", "-y", "--no-install-recommends"]

    say(f"check: apt-get install {' '.join(the_plan.install)} on a booted node")
    _fetch(box, subject, "apt-get update", ["apt-get", "update"])
    for args in (list(the_plan.install), [f"{package}={version}"]):
        _fetch(box, subject, "apt-get install --download-only",
               [*argv[:3], "--download-only", *argv[3:], *args])
    all_units = (*the_plan.units, *(u for u, _, _ in the_plan.uwsgi))
    with node_mod.booted(box, box.log) as on:
        def step(what: str, command: list[str]) -> str:
            return _step(on, subject, what, command)

        step("apt-get install (offline, on the booted node)", [*argv, *the_plan.install])
        installed = dict(line.split("\t", 1) for line in step(
            "dpkg-query", ["dpkg-query", "-W", "-f", "${Package}\t${Version}\n"]).splitlines()
            if "\t" in line)
        for name, want in the_plan.versions:
            if installed.get(name) != want:
                problems.append(f"{name} is {installed.get(name, 'not installed')}, "
                                f"expected {want}")
        seen.append(f"installed {len(the_plan.versions)} packages")
        compiled, line = bytecode_problems(root, the_plan.venv_path)
        problems.extend(compiled)
        seen.append(line)
        for command in the_plan.commands:
            try:
                out = on.run(list(command), what=" ".join(command)).output.strip().splitlines()
                seen.append(f"ran {' '.join(command)}: {out[-1] if out else '(no output)'}")
            except CommandFailed as exc:
                problems.append(f"{' '.join(command)} failed ({exc.hint})")
        links = list(the_plan.links)
        units = {u: _unit_exec(root, u) for u in the_plan.units}
        for unit, exec_start in units.items():
            if exec_start is None:
                problems.append(f"unit {unit}.service is missing or has no ExecStart")
        for unit, ini, script in the_plan.uwsgi:
            problems += _uwsgi_problems(root, unit, ini, script, the_plan.venv_path)
        unit_problems = units_mod.verify(
            lambda argv: on.run(list(argv), check=False, what="systemd-analyze verify"),
            root, all_units)
        unit_problems += running_problems(on, all_units)
        problems.extend(unit_problems)
        if all_units and not unit_problems:
            seen.append(f"{len(all_units)} units pass systemd-analyze verify, enabled and "
                        f"running" + (f" ({len(the_plan.uwsgi)} under uWSGI on the venv)"
                                      if the_plan.uwsgi else ""))
        targets = links + [e for e in units.values() if e]
        if targets:
            resolved = step("readlink", ["readlink", "-f", *targets]).split()
            for path, real in zip(targets, resolved, strict=True):
                if not real.startswith(the_plan.venv_path + "/"):
                    problems.append(f"{path} resolves to {real}, not into {the_plan.venv_path}")
            seen.append(f"{len(links)} commands and {len(units)} units point into "
                        f"{the_plan.venv_path}")
        passwd = {line.split(":")[0] for line in (root / "etc/passwd").read_text().splitlines()}
        group = {line.split(":")[0] for line in (root / "etc/group").read_text().splitlines()}
        for user in the_plan.users:
            if user not in passwd or user not in group:
                problems.append(f"user and group {user} are not both present")
        for d in the_plan.directories:
            problems += _owner_problems(box, d.path, d.owner, d.group, d.mode)
        for c in the_plan.config_files:
            problems += _owner_problems(box, c.path, c.owner, c.group, c.mode)
        seen.append(f"users {', '.join(the_plan.users) or '(none)'}, "
                    f"{len(the_plan.directories)} directories and "
                    f"{len(the_plan.config_files)} config files as configured")
        ours = [p for p, _ in the_plan.versions]
        owned = step("dpkg -L", ["dpkg", "-L", *ours]).splitlines()
        say(f"check: apt-get purge {' '.join(ours)}")
        step("apt-get purge", ["apt-get", "purge", "-y", *ours])
        # what only ours pulled in goes too, even what the node's own packages merely
        # suggest (iproute2 suggests python3)
        step("apt-get autoremove", ["apt-get", "autoremove", "--purge", "-y", "-o",
                                    "APT::AutoRemove::SuggestsImportant=false"])
        stopped = stopped_problems(on, all_units)
        problems.extend(stopped)
        if all_units and not stopped:
            seen.append(f"the purge stopped its {len(all_units)} units")
        step("apt-get install (offline, on the booted node)",
             [*argv, f"{package}={version}"])
        if not (root / the_plan.wheel_index.lstrip("/")).is_file():
            problems.append(f"{package} {version} did not install {the_plan.wheel_index}")
        owned += step("dpkg -L", ["dpkg", "-L", package]).splitlines()
        step(f"apt-get purge {package}", ["apt-get", "purge", "-y", package])
        seen.append(f"{package} {version} installed its index and purged")
    candidates.disable(box)
    after = chroot_mod.snapshot(root, skip=skip)
    left = [p for p in chroot_mod.leftovers(before, after) if not p.startswith(NODE_CHURN)]
    left += [p for p in owned if p.startswith("/") and p not in ("/", "/.")
             and _new_since(root, p, before)]
    if left:
        shown = ", ".join(sorted(set(left))[:10])
        problems.append(f"left behind after purge: {shown}"
                        + (f" and {len(set(left)) - 10} more" if len(set(left)) > 10 else ""))
    else:
        seen.append("purge left nothing behind")
    if problems:
        raise InstallTestFailed(f"install test of {the_plan.project}: {'; '.join(problems)}",
                                log=box.log)
    return seen


@dataclass(frozen=True)
class ToolPlan:
    """The install test of a tool's package (venvdeb's own): install it with its
    dependencies from the distribution's mirror, run it, purge it."""

    package: str
    smoke: tuple[tuple[str, ...], ...]  # each must exit 0
    owned: tuple[str, ...]  # path prefixes of its files that the purge must remove


def run_tool(the_plan: ToolPlan, box: chroot_mod.Chroot) -> list[str]:
    """What was seen; InstallTestFailed on the first problem."""
    seen: list[str] = []
    package = the_plan.package

    def step(what: str, argv: list[str]) -> str:
        return _step(box, package, what, argv)

    candidates.enable(box)
    say(f"check: apt-get install {package} in a clean chroot (pulls the tools it drives)")
    _fetch(box, package, "apt-get update", ["apt-get", "update"])
    _install(box, package, [package])
    seen.append(f"installed {package}")
    for argv in the_plan.smoke:
        out = step(" ".join(argv), list(argv)).strip().splitlines()
        seen.append(f"ran {' '.join(argv)}: {out[0] if out else '(no output)'}")
    owned = [p for p in step("dpkg -L", ["dpkg", "-L", package]).splitlines()
             if p.startswith(the_plan.owned)]
    step("apt-get purge", ["apt-get", "purge", "-y", package])
    left = [p for p in owned if box.path(p).exists() and not box.path(p).is_dir()]
    left += [p for p in the_plan.owned if p.endswith("/") and box.path(p).exists()]
    if left:
        raise InstallTestFailed(f"install test of {package}: purge left "
                                f"{', '.join(left[:5])}", log=box.log)
    seen.append(f"purge removed its {len(owned)} files")
    return seen
