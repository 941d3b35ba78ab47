"""Typed errors, raised deep and caught once by the CLI.

Each carries one line for the user (what failed, naming the file, key,
package or line) and, where it helps, a hint (what to do) and a log path.
"""
from __future__ import annotations

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


class RepositoryLocked(VenvdebError):
    """Another run holds the repository for longer than the wait allows."""

    exit_code = 75  # EX_TEMPFAIL: try again later


class InstallTestFailed(VenvdebError):
    """A package did not install, run or purge cleanly in a clean chroot."""
