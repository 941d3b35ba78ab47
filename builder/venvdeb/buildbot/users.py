"""Who may log in to the buildbot web UI, and who is an admin.

A TOML file outside git (the settings' ``users``; default ``users.toml`` beside the
settings file), written by ``venvdeb buildbot passwd``, which reads the password
from stdin, never from its command line::

    [users.alice]
    password = "scrypt:16384:8:1:<salt>:<hash>"   # never the password itself
    roles = ["admin"]

Anyone may view; a user of this file may force ordinary builds; only a user with
the ``admin`` role may promote to production, stop or cancel builds, or use any
other control action. The master reads the file at each login, so a change applies
to the next login without a restart.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import stat
import tomllib
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core.errors import ConfigError
from venvdeb.core.files import write_private
from venvdeb.core.table import Table

ADMIN = "admin"
#: the roles a users file may give; every user of the file also has USER
ROLES = (ADMIN,)
USER = "user"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MIN_PASSWORD = 12
#: scrypt's cost (n, r, p): ~50 ms and 16 MiB per login on these machines
COST = (2**14, 8, 1)


@dataclass(frozen=True)
class User:
    name: str
    password: str  # the scrypt hash, as in the file
    roles: tuple[str, ...] = ()

    @property
    def groups(self) -> list[str]:
        """The roles buildbot's authz sees (``RolesFromGroups``)."""
        return [USER, *self.roles]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, salt: bytes | None = None) -> str:
    n, r, p = COST
    salt = salt if salt is not None else os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt:{n}:{r}:{p}:{_b64(salt)}:{_b64(key)}"


def _parse_hash(hashed: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = hashed.split(":")
    if len(parts) != 6 or parts[0] != "scrypt":
        return None
    try:
        n, r, p = (int(x) for x in parts[1:4])
        salt, key = base64.b64decode(parts[4], validate=True), \
            base64.b64decode(parts[5], validate=True)
    except ValueError:
        return None
    if n < 2 or n & (n - 1) or not 1 <= r <= 64 or not 1 <= p <= 16 or len(key) < 16:
        return None
    return n, r, p, salt, key


def verify(hashed: str, password: str) -> bool:
    parsed = _parse_hash(hashed)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    got = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=len(key),
                         maxmem=256 * n * r * p + (1 << 20))
    return hmac.compare_digest(got, key)


def check_private(path: Path) -> None:
    """A file of secrets (users' hashes, workers' passwords) must not be writable by
    others (anyone could make themselves admin) nor readable by every user."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o022 or mode & 0o004:
        raise ConfigError(f"{path}: readable or writable by other users (mode {mode:04o})",
                          hint=f"chmod 600 {path}")


def load(path: Path) -> dict[str, User]:
    """The users of the file; none when it does not exist (the UI is then view-only)."""
    if not path.exists():
        return {}
    try:
        check_private(path)
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the buildbot users file {path}: {exc}") from None
    top = Table(path, "", raw)
    out = {}
    for name, t in top.table("users", {}).subtables():
        if not NAME_RE.fullmatch(name):
            raise top.fail("users", f"user name {name!r} must match {NAME_RE.pattern}")
        password = t.string("password")
        if _parse_hash(password) is None:
            raise t.fail("password", "expected a hash written by 'venvdeb buildbot passwd' "
                                     "(scrypt:N:R:P:SALT:HASH), never a password")
        roles = t.strings("roles", ())
        for role in roles:
            if role not in ROLES:
                raise t.fail("roles", f"unknown role {role!r} (known: {', '.join(ROLES)})")
        t.done()
        out[name] = User(name, password, tuple(roles))
    top.done()
    return out


def render(users: dict[str, User]) -> str:
    lines = ["# buildbot web UI users (venvdeb buildbot passwd); keep out of git, mode 0600", ""]
    for user in sorted(users.values(), key=lambda u: u.name):
        roles = ", ".join(f'"{r}"' for r in user.roles)
        lines += [f"[users.{user.name}]", f'password = "{user.password}"', f"roles = [{roles}]",
                  ""]
    return "\n".join(lines)


def set_user(path: Path, name: str, password: str, roles: tuple[str, ...]) -> User:
    """Add ``name`` to the users file, or change its password and roles."""
    if not NAME_RE.fullmatch(name):
        raise ConfigError(f"user name {name!r} must match {NAME_RE.pattern}")
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"the password for {name} is shorter than {MIN_PASSWORD} characters",
                          hint="give a longer one on stdin")
    for role in roles:
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    users = load(path)
    users[name] = User(name, hash_password(password), roles)
    write_private(path, render(users))
    return users[name]
