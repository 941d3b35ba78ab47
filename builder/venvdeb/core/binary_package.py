"""The Debian side of a project: its distribution-named binary packages.

Each names the commands it links into /usr/bin, its systemd units, system
user, directories, config files, WSGI scripts and sudoers, under the names
Debian uses, so that puppet manifests keep working. Parsed from
``[[projects.X.packages]]`` in pipeline.toml and validated once.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from venvdeb.core.table import DEB_NAME_RE as _DEB_NAME_RE
from venvdeb.core.table import Table

_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]*$")
_MODE_RE = re.compile(r"^0?[0-7]{3}$")
_COMMAND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Directory:
    path: str
    owner: str
    group: str
    mode: str


@dataclass(frozen=True)
class ConfigFile:
    """A conffile under /etc: copied from the upstream tree (``source``) or
    generated at build time by oslo-config-generator (``generate``: the
    generator's config file in the upstream tree)."""

    path: str
    source: str | None
    generate: str | None
    owner: str
    group: str
    mode: str


@dataclass(frozen=True)
class Unit:
    name: str
    description: str
    command: str
    arguments: tuple[str, ...]
    user: str
    group: str


@dataclass(frozen=True)
class WsgiScript:
    path: str
    application: str  # "module:callable", or "module:factory()" to call a factory

    @property
    def module(self) -> str:
        return self.application.split(":")[0]

    @property
    def callable(self) -> str:
        return self.application.split(":")[1].removesuffix("()")

    @property
    def factory(self) -> bool:
        return self.application.endswith("()")


@dataclass(frozen=True)
class BinaryPackage:
    name: str
    description: str
    commands: tuple[str, ...]
    depends: tuple[str, ...]
    directories: tuple[Directory, ...]
    config_files: tuple[ConfigFile, ...]
    units: tuple[Unit, ...]
    wsgi_scripts: tuple[WsgiScript, ...]
    sudoers: tuple[str, ...]  # commands in the venv the user may run as root
    creates_user: bool
    #: how the install test runs each command (default ``--version``; empty: not run,
    #: only checked to link into the venv)
    smoke: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def smoke_command(self, command: str) -> tuple[str, ...]:
        return (command, *dict(self.smoke).get(command, ("--version",)))

    def smoke_commands(self) -> tuple[tuple[str, ...], ...]:
        return tuple(self.smoke_command(c) for c in self.commands if len(self.smoke_command(c)) > 1)

    @property
    def is_empty(self) -> bool:
        """Only dependencies (like Debian's python3-nova for ours): a metapackage."""
        return not (self.commands or self.directories or self.config_files or self.units
                    or self.wsgi_scripts or self.sudoers or self.creates_user)


def _mode(t: Table, key: str, default: str) -> str:
    mode = t.string(key, default)
    if not _MODE_RE.match(mode):
        raise t.fail(key, f"expected an octal mode like '0640', got {mode!r}")
    return mode.rjust(4, "0")


def _abs(t: Table, key: str, prefix: str = "/") -> str:
    path = t.string(key)
    if not path.startswith(prefix) or ".." in path.split("/") or "//" in path:
        raise t.fail(key, f"expected an absolute path under {prefix}, got {path!r}")
    return path


def parse_packages(t: Table, key: str, user: str | None) -> tuple[BinaryPackage, ...]:
    packages = []
    for pt in t.tables(key):
        packages.append(_package(pt, user))
        pt.done()
    names = [p.name for p in packages]
    for name in names:
        if names.count(name) > 1:
            raise t.fail(key, f"package {name!r} is defined twice")
    return tuple(packages)


def _package(t: Table, user: str | None) -> BinaryPackage:
    name = t.string("name")
    if not _DEB_NAME_RE.match(name):
        raise t.fail("name", f"{name!r} is not a Debian package name")
    commands = t.strings("commands", ())
    for command in commands:
        if not _COMMAND_RE.match(command):
            raise t.fail("commands", f"{command!r} is not a command name")
    directories = []
    for dt in t.tables("directories"):
        directories.append(Directory(_abs(dt, "path"), dt.string("owner", "root"),
                                     dt.string("group", "root"), _mode(dt, "mode", "0755")))
        dt.done()
    configs = []
    for ct in t.tables("config_files"):
        source, generate = ct.string("source", None), ct.string("generate", None)
        if (source is None) == (generate is None):
            raise ct.fail("source", "give exactly one of 'source' (a file of the upstream tree) "
                                    "or 'generate' (an oslo-config-generator config file)")
        configs.append(ConfigFile(_abs(ct, "path", "/etc/"), source, generate,
                                  ct.string("owner", "root"), ct.string("group", "root"),
                                  _mode(ct, "mode", "0644")))
        ct.done()
    units = []
    for ut in t.tables("units"):
        unit_name = ut.string("name")
        if not _DEB_NAME_RE.match(unit_name):
            raise ut.fail("name", f"{unit_name!r} is not a unit name")
        command = ut.string("command")
        if not _COMMAND_RE.match(command):
            raise ut.fail("command", f"{command!r} is not a command of the venv")
        unit_user = ut.string("user", user or "root")
        units.append(Unit(unit_name, ut.string("description", f"OpenStack {unit_name}"), command,
                          ut.strings("arguments", ()), unit_user, ut.string("group", unit_user)))
        ut.done()
    wsgi = []
    for wt in t.tables("wsgi_scripts"):
        app = wt.string("application")
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(\))?", app):
            raise wt.fail("application", f"expected 'module:callable' or 'module:factory()', "
                                         f"got {app!r}")
        wsgi.append(WsgiScript(_abs(wt, "path", "/usr/"), app))
        wt.done()
    sudoers = t.strings("sudoers", ())
    if sudoers and not user:
        raise t.fail("sudoers", "needs the project's 'user'")
    for owner in [d.owner for d in directories] + [c.group for c in configs]:
        if not _USER_RE.match(owner):
            raise t.fail("directories", f"{owner!r} is not a user or group name")
    smoke_t = t.get("smoke", dict, {}, "a table of command = \"arguments\"")
    smoke = []
    for command, args in sorted(smoke_t.items()):
        if command not in commands or not isinstance(args, str):
            raise t.fail("smoke", f"{command!r}: keys must be commands of this package and "
                                  f"values argument strings, like {{ cmd = \"--help\" }}")
        smoke.append((command, tuple(shlex.split(args))))
    return BinaryPackage(
        name=name,
        description=t.string("description", f"OpenStack {name}"),
        commands=commands,
        depends=t.strings("depends", ()),
        directories=tuple(directories),
        config_files=tuple(configs),
        units=tuple(units),
        wsgi_scripts=tuple(wsgi),
        sudoers=sudoers,
        creates_user=t.get("creates_user", bool, False, "true or false"),
        smoke=tuple(smoke),
    )
