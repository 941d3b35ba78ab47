"""Typed errors, raised deep and caught once by the CLI.

Each carries one line for the user (what failed, naming the file, key,
package or line) and, where it helps, a hint (what to do) and a log path.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


class VenvdebError(Exception):
    """Base of every error the CLI reports as one clear line."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, log: Path | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.log = log

    def __str__(self) -> str:
        return self.message


class ConfigError(VenvdebError):
    """pipeline.toml or a requirements file is invalid (names file, key/line, value)."""

    exit_code = 2


class ResolutionError(VenvdebError):
    """pip-tools could not compile the release into a lock."""


class IndexError_(VenvdebError):
    """The package index lacks something the lock needs, or cannot be read."""


class HashMismatch(VenvdebError):
    """A downloaded or cached file does not match the lock's hash."""


class BuildDependencyMissing(VenvdebError):
    """A sdist needs Debian build dependencies that are not installed."""


class SdistBuildFailed(VenvdebError):
    """A sdist could not be built into a wheel."""


class CommandFailed(VenvdebError):
    """An external command exited non-zero."""


class LintianFailed(VenvdebError):
    """lintian reported errors or warnings that are not overridden."""


class SigningError(VenvdebError):
    """The signing key is missing, unusable, or a signature does not verify."""


class PublishError(VenvdebError):
    """A package cannot go into the repository (unchecked, older, same version
    with other content, corrupt); the repository is left as it was."""


class ServeError(VenvdebError):
    """The web server cannot serve the repository (its user cannot read it, the
    address is in use, nginx is missing or refuses its configuration)."""


class RepositoryLocked(VenvdebError):
    """Another run holds the repository for longer than the wait allows."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class InstallTestFailed(VenvdebError):
    """A package did not install, run or purge cleanly in a clean chroot."""


class ParityFailed(VenvdebError):
    """Our packages differ from Debian's in a way the documentation does not list."""


class AdvisoriesFound(VenvdebError):
    """Known advisories affect pins of the release (venvdeb audit)."""

    exit_code = 3


class LicensesBlocked(VenvdebError):
    """Pins of the release declare a license the config blocks (venvdeb licenses)."""

    exit_code = 3


class AdvisoriesUnavailable(VenvdebError):
    """No advisory source could be read: the audit says nothing either way."""

    exit_code = 69  # EX_UNAVAILABLE


class StateFileError(VenvdebError):
    """A file venvdeb wrote into the workdir (a ledger, a build record, a manifest)
    is truncated or unreadable: it names the file and what to do."""


class HostError(VenvdebError):
    """The host refused a file operation (no space, read-only, no permission, no
    such directory): it names the path; what was there before is left intact."""


_SPACE = ("free space on that filesystem and rerun the same command: it resumes, and the "
          "files of the previous run are intact")
_HINTS = {errno.ENOSPC: _SPACE, errno.EDQUOT: _SPACE}
#: where the path is the workdir or inside it
_WORKDIR_HINTS = {
    errno.EROFS: "give a writable --workdir (that filesystem is read-only)",
    errno.EACCES: "give a --workdir this user may write, or fix its permissions",
    errno.EPERM: "give a --workdir this user may write, or fix its permissions",
    errno.ENOENT: "give a --workdir on a real, writable filesystem",
    errno.ENOTDIR: "a part of that path is a file: give another --workdir",
}
#: elsewhere (a tool, a file the config names)
_OTHER_HINTS = {
    errno.ENOENT: "check that it exists (a missing program: run bin/setup)",
    errno.EACCES: "fix its permissions",
    errno.EPERM: "fix its permissions",
}


def host_error(exc: OSError, workdir: Path) -> HostError:
    """``exc`` as one line naming its path (the workdir when the system call named
    none) and a hint by its errno and whether the path is the workdir's."""
    path = Path(os.fsdecode(exc.filename)) if exc.filename is not None else workdir
    mine = _within(path, workdir) or _within(workdir, path)
    hint = _HINTS.get(exc.errno or 0) or (_WORKDIR_HINTS if mine else _OTHER_HINTS).get(
        exc.errno or 0, "fix the host and rerun the same command")
    return HostError(f"{exc.strerror or exc}: {path}", hint=hint)


def _within(path: Path, parent: Path) -> bool:
    return os.path.abspath(path).startswith(os.path.abspath(parent).rstrip("/") + "/") \
        or os.path.abspath(path) == os.path.abspath(parent)
