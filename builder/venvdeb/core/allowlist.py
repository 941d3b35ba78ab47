"""What a config value may look like before it reaches a maintainer script,
sudoers, a systemd unit, make, a control file or a command line.

Every value of pipeline.toml that venvdeb renders into a file or passes to a
tool is checked against one of these kinds, whole (``fullmatch``: a trailing
newline does not pass), when the config loads. The templates quote on top
(``render``'s ``sh`` and ``systemd`` filters); these allowlists are what makes
an injection impossible rather than merely escaped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Kind:
    what: str          # "a Debian package name"
    example: str       # "nova-common"
    pattern: re.Pattern[str]

    def problem(self, value: str) -> str | None:
        """``None`` when ``value`` is of this kind, else what is wrong with it."""
        if self.pattern.fullmatch(value) and "/../" not in f"/{value}/" \
                and "//" not in value.split("://", 1)[-1]:
            return None
        return f"{value!r} is not {self.what} (like {self.example!r})"


def _kind(what: str, example: str, pattern: str) -> Kind:
    return Kind(what, example, re.compile(pattern))


_COMPONENT = r"[A-Za-z0-9_][A-Za-z0-9_.+-]*"

DEB_NAME = _kind("a Debian package name (a-z, 0-9, '+', '-', '.')", "nova-common",
                 r"[a-z0-9][a-z0-9+.-]+")
CODENAME = _kind("a Debian codename", "bookworm", r"[a-z][a-z0-9-]+")
ARCHITECTURE = _kind("a Debian architecture", "amd64", r"[a-z0-9][a-z0-9-]*")
UNIT_NAME = _kind("a systemd unit name without .service", "nova-conductor",
                  r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
USER = _kind("a system user or group name (a-z, 0-9, '_', '-'; up to 32)", "keystone",
             r"[a-z_][a-z0-9_-]{0,31}")
COMMAND = _kind("a command name of the venv", "nova-manage", r"[A-Za-z0-9][A-Za-z0-9_.+-]*")
ABSOLUTE_PATH = _kind("an absolute path of plain components (A-Z, a-z, 0-9, '_', '.', '+', "
                      "'-'; no '..', no trailing '/')", "/var/lib/nova", rf"(/{_COMPONENT})+")
TREE_PATH = _kind("a relative path inside the upstream tree (no leading '/', no '..')",
                  "etc/nova/api-paste.ini", rf"{_COMPONENT}(/{_COMPONENT})*")
DESCRIPTION = _kind("a one-line description of letters, digits, spaces and , . ( ) / + : ' _ - "
                    "(up to 80)", "OpenStack compute - conductor",
                    r"[A-Za-z0-9][A-Za-z0-9 ,.()/+:'_-]{0,79}")
ARGUMENT = _kind("a command-line argument of letters, digits and _ . / = : , @ + -",
                 "--config-file=/etc/nova/nova.conf", r"[A-Za-z0-9_./=:,@+-]+")
SUDO_ARGUMENT = _kind("a sudoers argument of letters, digits and _ . / + - (or a final '*')",
                      "/etc/nova/rootwrap.conf", r"[A-Za-z0-9_./+-]+|\*")
URL = _kind("an http(s):// or file:// URL of letters, digits and . _ ~ : / @ % + = - (an IPv6 "
            "host in [ ])", "https://pypi.org/simple",
            r"(https?|file)://(\[[0-9A-Fa-f:.]+\](:[0-9]+)?(/[A-Za-z0-9._~:/@%+=-]*)?"
            r"|[A-Za-z0-9._~:/@%+=-]+)")
GIT_URL = _kind("a git URL (https://, http://, git://, ssh:// or file://) of letters, digits "
                "and . _ ~ : / @ % + = -", "https://opendev.org/openstack/requirements",
                r"(https?|git|ssh|file)://[A-Za-z0-9._~:/@%+=-]+")
GIT_REF = _kind("a git branch or tag name", "stable/2026.1",
                r"[A-Za-z0-9_][A-Za-z0-9_.+-]*(/[A-Za-z0-9_][A-Za-z0-9_.+-]*)*")
PYPI_NAME = _kind("a Python distribution name", "python-ldap",
                  r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_SPEC = r"(===|==|>=|<=|~=|!=|<|>)[0-9][0-9A-Za-z.*+!-]*"
BUILD_REQUIREMENT = _kind("a requirement from the index: a name and version ranges, no marker, "
                          "no URL", "pbr>=1.3",
                          rf"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?({_SPEC}(,{_SPEC})*)?")
SERIES = _kind("a release series name", "gazpacho", r"[a-z][a-z0-9-]*")
RELEASE = _kind("a release name", "2026.1", r"[0-9]{4}\.[0-9]+|[a-z][a-z0-9.-]*")
LABEL = _kind("one line of letters, digits, spaces and , . ( ) / + : _ - (up to 100)",
              "venvdeb: OpenStack services", r"[A-Za-z0-9][A-Za-z0-9 ,.()/+:_-]{0,99}")
MAINTAINER = _kind("'Full Name <address>' on one line", "venvdeb packagers <pkg@example.org>",
                   r"[A-Za-z0-9][A-Za-z0-9 .,'()_-]* <[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+>")
MODE = _kind("an octal mode of three digits (no setuid, setgid or sticky bit)", "0640",
             r"0?[0-7]{3}")
VERSION = _kind("a version", "29.0.2", r"[0-9][0-9A-Za-z.+!-]*")
ADVISORY_ID = _kind("an advisory id: a prefix of capitals, a dash, then letters, digits and - . _",
                    "PYSEC-2023-206", r"[A-Z][A-Z0-9]{1,15}-[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
LICENSE = _kind("an SPDX license id or a license's name: letters, digits, spaces and . + ( ) - "
                "(up to 100)", "AGPL-3.0-only", r"[A-Za-z0-9][A-Za-z0-9 .+()-]{0,99}")
FINGERPRINT = _kind("a 40-hex-digit key fingerprint", "0123...", r"[0-9A-Fa-f]{40}")
WSGI_APPLICATION = _kind("'module:callable' or 'module:factory()'", "keystone.wsgi.api:application",
                         r"[A-Za-z_][\w.]*:[A-Za-z_]\w*(\(\))?")
