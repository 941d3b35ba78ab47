"""The repository over HTTP, as plain data: where nginx listens, what it serves,
its configuration, and whether its worker user may read the files.

Nodes need, from the top of a generation (venvdeb.archive.repository):
``dists/`` (the signed indexes), ``pool/`` (the packages), ``sources/`` (the
``.sources`` stanzas) and the keyring (``venvdeb-archive-keyring.gpg``, armored
as ``.asc``). Nothing else is served: not reprepro's ``conf/`` and ``db/``, nor
``venvdeb/`` (the history). Only GET and HEAD.

nginx serves ``<workdir>/repo``, the symlink itself: each request follows it
anew, so a publication's swap is seen at once, without a reload. Its worker
processes run as ``www-data`` (Debian's nginx default): every directory from
``/`` down to the repository must let that user pass, and the files read
(``refused`` says which one does not, and ``Refusal.hint`` what to chmod).
venvdeb.archive.nginx runs it; ``site_conf`` is the same server for a
system-wide nginx.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from venvdeb.archive import signing
from venvdeb.core.errors import ConfigError

WEB_USER = "www-data"
DEFAULT_LISTEN = "127.0.0.1:8080"
#: the top of a generation that nodes read, and how (nginx location match)
SERVED_DIRECTORIES = ("dists", "pool", "sources")
SERVED_FILES = (signing.KEYRING, signing.KEYRING.replace(".gpg", ".asc"))
#: the system-wide site ``venvdeb serve config`` prints
SITE_FILE = "/etc/nginx/sites-available/venvdeb"
_LISTEN_HINT = ("give --listen IP:PORT, e.g. 127.0.0.1:8080 (this machine only), "
                "0.0.0.0:8080 (every address) or [::]:8080")
#: what an nginx configuration may carry unquoted-safe inside double quotes
_SAFE_PATH = re.compile(r"/[A-Za-z0-9._/+@%=,~-]*")


def connect_host(host: str) -> str:
    """The address a client on this machine connects to for a server listening on the IP
    ``host``: loopback for a wildcard (0.0.0.0, ::), else ``host`` itself."""
    address = ipaddress.ip_address(host)
    if address.is_unspecified:
        return "127.0.0.1" if address.version == 4 else "::1"
    return host


@dataclass(frozen=True)
class Listen:
    """An IP address and a TCP port nginx listens on."""

    host: str
    port: int

    @property
    def directive(self) -> str:
        """nginx's ``listen`` value: ``127.0.0.1:8080``, ``[::]:8080``."""
        return f"{self._bracketed(self.host)}:{self.port}"

    @property
    def local_url(self) -> str:
        """Where this machine reaches the server (status, tests)."""
        return f"http://{self._bracketed(connect_host(self.host))}:{self.port}"

    @property
    def every_address(self) -> bool:
        """0.0.0.0 or ::"""
        return ipaddress.ip_address(self.host).is_unspecified

    def node_url(self, hostname: str) -> str:
        """The URL nodes use (``[repository] url``): the address listened on, or, for
        every address (0.0.0.0, ::), this machine's ``hostname``."""
        if self.every_address:
            return f"http://{hostname}:{self.port}"
        return f"http://{self._bracketed(self.host)}:{self.port}"

    @staticmethod
    def _bracketed(host: str) -> str:
        return f"[{host}]" if ":" in host else host


def listen(value: str) -> Listen:
    """``IP:PORT`` or ``[IPv6]:PORT``, validated: an IP address (not a name) and a
    port from 1 to 65535."""
    host, colon, port_text = value.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ConfigError(f"--listen {value!r}: an IPv6 address goes in brackets",
                          hint=_LISTEN_HINT)
    if not colon or not host or not port_text.isdigit():
        raise ConfigError(f"--listen {value!r} is not IP:PORT", hint=_LISTEN_HINT)
    port = int(port_text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"--listen {value!r}: {host!r} is not an IP address (nginx would "
                          f"resolve a name once, at start)", hint=_LISTEN_HINT) from None
    if address.is_multicast:
        raise ConfigError(f"--listen {value!r}: {host} is a multicast address",
                          hint=_LISTEN_HINT)
    if not 1 <= port <= 65535:
        raise ConfigError(f"--listen {value!r}: port {port} is not between 1 and 65535",
                          hint=_LISTEN_HINT)
    return Listen(str(address), port)


@dataclass(frozen=True)
class Instance:
    """The files of venvdeb's own nginx for one workdir, under ``<workdir>/http``."""

    workdir: Path

    @property
    def repo(self) -> Path:
        return self.workdir / "repo"

    @property
    def home(self) -> Path:
        return self.workdir / "http"

    @property
    def conf(self) -> Path:
        return self.home / "nginx.conf"

    @property
    def pid_file(self) -> Path:
        return self.home / "nginx.pid"

    @property
    def error_log(self) -> Path:
        return self.home / "error.log"

    @property
    def access_log(self) -> Path:
        return self.home / "access.log"

    @property
    def listen_file(self) -> Path:
        """The address last started with (status and stop read it)."""
        return self.home / "listen"

    @property
    def temp(self) -> Path:
        return self.home / "tmp"

    @property
    def log(self) -> Path:
        """venvdeb's log of the nginx commands it ran."""
        return self.home / "serve.log"


def quoted(path: Path) -> str:
    """``path`` for an nginx configuration; a path nginx would read as something else
    (``$`` is a variable, ``;`` ends a directive) is refused."""
    text = str(path)
    if not _SAFE_PATH.fullmatch(text):
        raise ConfigError(f"nginx cannot be given the path {text!r} (only letters, digits "
                          f"and . _ / + @ % = , ~ -)",
                          hint="use a --workdir whose absolute path has none of the others")
    return f'"{text}"'


def server(repo: Path, at: Listen, access_log: str) -> str:
    """The ``server`` block: ``repo`` read-only, only its served parts, GET and HEAD."""
    root = quoted(repo)
    dirs = "|".join(re.escape(d) for d in SERVED_DIRECTORIES)
    files = "|".join(re.escape(f) for f in SERVED_FILES)
    return f"""server {{
    listen {at.directive};
    server_name _;
    root {root};
    access_log {access_log};
    autoindex on;
    # reprepro makes no symbolic link in a generation: one there is not followed (the
    # root, <workdir>/repo, is one: followed, as the part before $document_root's end)
    disable_symlinks on from=$document_root;
    if ($request_method !~ ^(GET|HEAD)$) {{
        return 405;
    }}
    location = / {{
    }}
    location ~ ^/({dirs})/ {{
    }}
    location ~ ^/({files})$ {{
    }}
    # reprepro's conf/ and db/, venvdeb's history, anything else
    location / {{
        return 404;
    }}
}}
"""


def nginx_conf(instance: Instance, at: Listen) -> str:
    """The whole configuration of venvdeb's own nginx (``nginx -c``): run as root, its
    workers as www-data; pid, logs and temporary files under ``<workdir>/http``."""
    temp = instance.temp
    paths = "\n".join(f"    {kind}_temp_path {quoted(temp / kind)};"
                      for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    block = server(instance.repo, at, quoted(instance.access_log))
    return f"""# generated by venvdeb serve for {instance.workdir}; do not edit (it is rewritten)
user {WEB_USER};
worker_processes 2;
pid {quoted(instance.pid_file)};
lock_file {quoted(instance.home / "nginx.lock")};
error_log {quoted(instance.error_log)};

events {{
    worker_connections 512;
}}

http {{
    default_type application/octet-stream;
    types {{
        text/plain asc sources;
    }}
    sendfile on;
    server_tokens off;
{paths}

{_indent(block)}}}
"""


def site_conf(repo: Path, at: Listen) -> str:
    """The same server for a system-wide nginx (``/etc/nginx/sites-available/venvdeb``,
    linked from ``sites-enabled/``): Debian's nginx.conf runs its workers as www-data."""
    return (f"# {SITE_FILE}: generated by venvdeb serve config for {repo}\n"
            f"# enable: ln -s {SITE_FILE} /etc/nginx/sites-enabled/ && nginx -t && "
            f"systemctl reload nginx\n"
            + server(repo, at, "/var/log/nginx/venvdeb.access.log"))


def keyring_command(url: str, dest: str) -> str:
    """The line a node runs to fetch the archive keyring from the repository at ``url``
    into ``dest``: over HTTP with apt's own helper, which every Debian system has
    (curl is not in a minimal one) and which honours apt's proxy settings."""
    if url.startswith("file://"):
        return shlex.join(["install", "-D", "-m", "644",
                           f"{url[len('file://'):]}/{signing.KEYRING}", dest])
    return shlex.join(["/usr/lib/apt/apt-helper", "download-file", f"{url}/{signing.KEYRING}",
                       dest])


def _indent(text: str) -> str:
    return "".join(f"    {line}" if line.strip() else line for line in text.splitlines(True))


@dataclass(frozen=True)
class Node:
    """What ``stat`` says of one path the web user must reach."""

    path: Path
    mode: int
    uid: int
    gid: int
    owner: str = ""
    group: str = ""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gids: frozenset[int]


@dataclass(frozen=True)
class Refusal:
    """A path the web user cannot pass or read, and the chmod that lets it."""

    node: Node
    user: str
    need: str  # "pass" or "read"

    @property
    def message(self) -> str:
        who = f"{self.node.owner or self.node.uid}:{self.node.group or self.node.gid}"
        return (f"{self.user} (nginx's worker processes) cannot {self.need} {self.node.path} "
                f"(mode {stat.S_IMODE(self.node.mode):04o}, owner {who}): nodes would get "
                f"403 Forbidden")

    @property
    def hint(self) -> str:
        if self.need == "pass":
            return (f"chmod o+x {self.node.path} (others may then pass it, not list it), or "
                    f"use a --workdir under directories others may pass, e.g. /srv/venvdeb")
        return (f"chmod -R o+rX {self.node.path} (publishing with umask 077 made it "
                f"private: publish with umask 022)")


def _allowed(node: Node, user: Account, bits: int) -> bool:
    """Whether ``user`` has every permission of ``bits`` (r=4, x=1) on ``node``."""
    mode = stat.S_IMODE(node.mode)
    if node.uid == user.uid:
        have = mode >> 6
    elif node.gid in user.gids:
        have = mode >> 3
    else:
        have = mode
    return have & bits == bits


def refused(ancestors: Sequence[Node], served: Sequence[Node],
            user: Account) -> Refusal | None:
    """The first of ``ancestors`` (directories down to the repository) that ``user``
    cannot pass, or of ``served`` (the repository's directories and files at its top)
    that it cannot read; ``None`` when nginx's workers can serve it all."""
    for node in ancestors:
        if not _allowed(node, user, 1):
            return Refusal(node, user.name, "pass")
    for node in served:
        bits = 5 if stat.S_ISDIR(node.mode) else 4
        if not _allowed(node, user, bits):
            return Refusal(node, user.name, "read")
    return None
