"""The Debian side of a project: its distribution-named binary packages.

Each names the commands it links into /usr/bin, its systemd units, system
user, directories, config files, WSGI scripts and sudoers, under the names
Debian uses, so that puppet manifests keep working. Parsed from
``[[projects.X.packages]]`` in pipeline.toml and validated once.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass

from venvdeb.core import allowlist
from venvdeb.core.table import Table


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
class UwsgiService:
    """An API service run as Debian runs its own: Debian's uWSGI with the python3
    plugin, under the unit name Debian uses, its settings in ``ini``
    (``/etc/<project>/<name>-uwsgi.ini``, a conffile that puppet's
    ``<project>::wsgi::uwsgi`` edits), serving ``wsgi_script`` on ``port``. The
    venv is named only in the unit (``--virtualenv``), never in the conffile: an
    edited ini kept across a release upgrade still runs the new venv."""

    name: str
    description: str
    wsgi_script: str
    port: int
    ini: str
    log: str
    chdir: str
    user: str
    group: str


@dataclass(frozen=True)
class SudoRule:
    """A command of the venv the service user may run as root, with its first
    arguments pinned (OpenStack's ``nova-rootwrap /etc/nova/rootwrap.conf *``)."""

    command: str
    arguments: tuple[str, ...]


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
    sudoers: tuple[SudoRule, ...]  # what the user may run as root
    creates_user: bool
    uwsgi: tuple[UwsgiService, ...] = ()
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
                    or self.wsgi_scripts or self.sudoers or self.creates_user or self.uwsgi)

    @property
    def unit_names(self) -> tuple[str, ...]:
        """Every systemd unit it ships: daemons and uWSGI services."""
        return (*(u.name for u in self.units), *(u.name for u in self.uwsgi))

    @property
    def log_directories(self) -> tuple[str, ...]:
        """Its directories under /var/log: logrotate rotates ``*.log`` in each."""
        return tuple(d.path for d in self.directories if d.path.startswith("/var/log/"))


def _mode(t: Table, key: str, default: str, *, writable_by_others: bool = False) -> str:
    mode = t.string(key, default, kind=allowlist.MODE).rjust(4, "0")
    forbidden = 0o002 if writable_by_others else 0o022
    if int(mode, 8) & forbidden:
        who = "others" if writable_by_others else "its group or others"
        raise t.fail(key, f"mode {mode} lets {who} write: a service user could then "
                          f"replace what root reads")
    return mode


def _abs(t: Table, key: str, prefixes: tuple[str, ...]) -> str:
    """An absolute path strictly below one of ``prefixes`` (e.g. ``/etc/``)."""
    path = t.string(key, kind=allowlist.ABSOLUTE_PATH)
    if not any(path.startswith(p) and len(path) > len(p) for p in prefixes):
        raise t.fail(key, f"{path!r} must be below {' or '.join(prefixes)}")
    return path


#: Where a package may declare directories: below these, never one of them.
DIRECTORY_ROOTS = ("/etc/", "/var/lib/", "/var/log/", "/var/cache/", "/srv/")


def parse_packages(t: Table, key: str, user: str | None, project: str,
                   home: str | None) -> tuple[BinaryPackage, ...]:
    packages = []
    for pt in t.tables(key):
        packages.append(_package(pt, user, project, home))
        pt.done()
    names = [p.name for p in packages]
    for name in names:
        if names.count(name) > 1:
            raise t.fail(key, f"package {name!r} is defined twice")
    for package in packages:
        for depend in package.depends:
            if depend not in names:
                raise t.fail(key, f"{package.name}: depends on {depend!r}, which is not a "
                                  f"package of this project (defined: {', '.join(names)})")
    _check_directories(t, key, packages)
    _check_sudoers(t, key, packages)
    _check_uwsgi(t, key, packages)
    return tuple(packages)


def _check_uwsgi(t: Table, key: str, packages: list[BinaryPackage]) -> None:
    """A uWSGI service serves a WSGI script of the project, logs and keeps its ini
    in directories the project declares, under a unit name used once."""
    scripts = {w.path for p in packages for w in p.wsgi_scripts}
    directories = {d.path for p in packages for d in p.directories}
    units = [name for p in packages for name in p.unit_names]
    for package in packages:
        for service in package.uwsgi:
            if units.count(service.name) > 1:
                raise t.fail(key, f"{package.name}: unit {service.name!r} is declared twice")
            if service.wsgi_script not in scripts:
                raise t.fail(key, f"{package.name}: uwsgi {service.name}: wsgi_script "
                                  f"{service.wsgi_script!r} is not one of the project's "
                                  f"wsgi_scripts ({', '.join(sorted(scripts)) or 'none'})")
            for path in (service.ini, service.log):
                parent = path.rsplit("/", 1)[0]
                if parent not in directories:
                    raise t.fail(key, f"{package.name}: uwsgi {service.name}: {path} needs the "
                                      f"directory {parent} declared in the project's "
                                      f"'directories'")


def _check_directories(t: Table, key: str, packages: list[BinaryPackage]) -> None:
    """Nothing the package sets owners on may sit inside a directory that a
    service user owns: it could swap it for a link between check and chown."""
    declared = [d for p in packages for d in p.directories]
    paths = [d.path for d in declared]
    for path in paths:
        if paths.count(path) > 1:
            raise t.fail(key, f"directory {path!r} is declared twice")
    user_owned = [d.path for d in declared if d.owner != "root"]
    children = [*paths, *(c.path for p in packages for c in p.config_files)]
    for child in children:
        for parent in user_owned:
            if child.startswith(parent + "/"):
                raise t.fail(key, f"{child!r} is inside {parent!r}, which a service user owns: "
                                  f"give {parent!r} owner root, or do not declare {child!r}")


def _check_sudoers(t: Table, key: str, packages: list[BinaryPackage]) -> None:
    """A path a sudo rule pins must be a config file root owns (so the service
    user cannot point its command at a file of its own)."""
    config_paths = {c.path for p in packages for c in p.config_files}
    for package in packages:
        for rule in package.sudoers:
            for argument in rule.arguments:
                if argument.startswith("/") and argument not in config_paths:
                    raise t.fail(key, f"{package.name}: sudoers {rule.command}: {argument!r} is "
                                      f"not a config file of this project (config_files: "
                                      f"{', '.join(sorted(config_paths)) or 'none'})")


def _uwsgi(t: Table, user: str | None, project: str, home: str | None) -> list[UwsgiService]:
    services = []
    for ut in t.tables("uwsgi"):
        name = ut.string("name", kind=allowlist.UNIT_NAME)
        if not user or not home:
            raise ut.fail("name", "a uWSGI service runs as the project's 'user': set it")
        port = ut.get("port", int, what="a TCP port number")
        if not 1024 <= port <= 65535:
            raise ut.fail("port", f"expected a port from 1024 to 65535, got {port}")
        services.append(UwsgiService(
            name=name,
            description=ut.string("description", f"OpenStack {name}", kind=allowlist.DESCRIPTION),
            wsgi_script=_abs(ut, "wsgi_script", ("/usr/lib/",)),
            port=port,
            ini=f"/etc/{project}/{name}-uwsgi.ini",
            log=f"/var/log/{project}/{name}.log",
            chdir=home,
            user=user,
            group=user))
        ut.done()
    return services


def _package(t: Table, user: str | None, project: str, home: str | None) -> BinaryPackage:
    name = t.string("name", kind=allowlist.DEB_NAME)
    commands = t.strings("commands", (), kind=allowlist.COMMAND)
    directories = []
    for dt in t.tables("directories"):
        path = _abs(dt, "path", DIRECTORY_ROOTS)
        owner = dt.string("owner", "root", kind=allowlist.USER)
        if path.startswith("/etc/") and owner != "root":
            raise dt.fail("owner", f"{path} is a configuration directory: it must be owned by "
                                   f"root (give the service user read access with group and "
                                   f"mode, e.g. group = \"{owner}\", mode = \"0750\"), got "
                                   f"{owner!r}")
        directories.append(Directory(path, owner, dt.string("group", "root", kind=allowlist.USER),
                                     _mode(dt, "mode", "0755", writable_by_others=True)))
        dt.done()
    configs = []
    for ct in t.tables("config_files"):
        source = ct.string("source", None, kind=allowlist.TREE_PATH)
        generate = ct.string("generate", None, kind=allowlist.TREE_PATH)
        if (source is None) == (generate is None):
            raise ct.fail("source", "give exactly one of 'source' (a file of the upstream tree) "
                                    "or 'generate' (an oslo-config-generator config file)")
        owner = ct.string("owner", "root", kind=allowlist.USER)
        if owner != "root":
            raise ct.fail("owner", f"config files are owned by root (a service user that owns "
                                   f"its configuration can rewrite it); give it read access with "
                                   f"group and mode, got owner {owner!r}")
        configs.append(ConfigFile(_abs(ct, "path", ("/etc/",)), source, generate, owner,
                                  ct.string("group", "root", kind=allowlist.USER),
                                  _mode(ct, "mode", "0644")))
        ct.done()
    units = []
    for ut in t.tables("units"):
        unit_name = ut.string("name", kind=allowlist.UNIT_NAME)
        command = ut.string("command", kind=allowlist.COMMAND)
        if command not in commands:
            raise t.fail("units", f"{unit_name}: runs {command!r}, which is not one of this "
                                  f"package's commands ({', '.join(commands) or 'none'}): add "
                                  f"it to 'commands' (its link in /usr/bin is what the unit "
                                  f"runs through the venv)")
        unit_user = ut.string("user", user or "root", kind=allowlist.USER)
        units.append(Unit(unit_name,
                          ut.string("description", f"OpenStack {unit_name}",
                                    kind=allowlist.DESCRIPTION),
                          command, ut.strings("arguments", (), kind=allowlist.ARGUMENT), unit_user,
                          ut.string("group", unit_user, kind=allowlist.USER)))
        ut.done()
    wsgi = []
    for wt in t.tables("wsgi_scripts"):
        app = wt.string("application", kind=allowlist.WSGI_APPLICATION)
        wsgi.append(WsgiScript(_abs(wt, "path", ("/usr/lib/",)), app))
        wt.done()
    sudoers = []
    for st in t.tables("sudoers"):
        command = st.string("command", kind=allowlist.COMMAND)
        arguments = st.strings("arguments", kind=allowlist.SUDO_ARGUMENT)
        if not arguments or arguments[0] == "*" or "*" in arguments[:-1]:
            raise st.fail("arguments", "pin at least the first argument (e.g. the command's "
                                       "config file: [\"/etc/nova/rootwrap.conf\", \"*\"]); "
                                       "'*' may only come last")
        sudoers.append(SudoRule(command, arguments))
        st.done()
    if sudoers and not user:
        raise t.fail("sudoers", "needs the project's 'user'")
    smoke_t = t.get("smoke", dict, {}, "a table of command = \"arguments\"")
    smoke = []
    for command, args in sorted(smoke_t.items()):
        if command not in commands or not isinstance(args, str):
            raise t.fail("smoke", f"{command!r}: keys must be commands of this package and "
                                  f"values argument strings, like {{ cmd = \"--help\" }}")
        words = tuple(shlex.split(args))
        for word in words:
            t.check("smoke", word, allowlist.ARGUMENT)
        smoke.append((command, words))
    return BinaryPackage(
        name=name,
        description=t.string("description", f"OpenStack {name}", kind=allowlist.DESCRIPTION),
        commands=commands,
        depends=t.strings("depends", (), kind=allowlist.DEB_NAME),
        directories=tuple(directories),
        config_files=tuple(configs),
        units=tuple(units),
        wsgi_scripts=tuple(wsgi),
        sudoers=tuple(sudoers),
        creates_user=t.get("creates_user", bool, False, "true or false"),
        smoke=tuple(smoke),
        uwsgi=tuple(_uwsgi(t, user, project, home)),
    )
