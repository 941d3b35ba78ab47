"""Where every output lives, under one ``--workdir`` (default ``build/``), and the
caches shared by every workdir (``~/.cache/venvdeb``)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def shared_cache() -> Path:
    """Chroot tarballs and apt's archives, shared by every workdir: ``$VENVDEB_CACHE``
    or ``$XDG_CACHE_HOME/venvdeb`` (``~/.cache/venvdeb``)."""
    base = os.environ.get("VENVDEB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "venvdeb")
    return Path(base)


@dataclass(frozen=True)
class Workdir:
    root: Path
    #: where logs go; a dry run points them outside the workdir, which it must not change
    logs: Path | None = None

    def target(self, release: str, distribution: str) -> Path:
        return self.root / "releases" / release / distribution

    def lock_dir(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "lock"

    def lock_file(self, release: str, distribution: str) -> Path:
        return self.lock_dir(release, distribution) / "lock.txt"

    def build_lock_dir(self, release: str, distribution: str) -> Path:
        """The build lock: what the release's sdists need to build (venvdeb.python.build_lock)."""
        return self.target(release, distribution) / "build-lock"

    def wheelhouse(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "wheelhouse"

    def sdists(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "sdists"

    def reqdeb(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "reqdeb"

    def requirements(self, release: str) -> Path:
        """A release's requirement files as ``venvdeb requirements`` fetched them from git."""
        return self.root / "releases" / release / "requirements"

    def tool(self, distribution: str) -> Path:
        """The venvdeb package's own build outputs."""
        return self.root / "tool" / distribution

    @property
    def log_root(self) -> Path:
        return self.logs or self.root / "logs"

    def log(self, release: str, stage: str) -> Path:
        return self.log_root / release / f"{stage}.log"

    def fresh_log(self, release: str, stage: str) -> Path:
        """The stage's log, the previous run's kept as ``<stage>.log.1``."""
        path = self.log(release, stage)
        try:
            path.replace(path.with_name(path.name + ".1"))
        except FileNotFoundError:  # none yet, or another run of the stage just moved it
            pass
        return path

    def log_dir(self, release: str, stage: str) -> Path:
        """One log per item of a stage (e.g. per sdist build)."""
        return self.log_root / release / stage

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def versions(self) -> Path:
        """The version ledger (venvdeb.core.versions)."""
        return self.state / "versions.json"

    @property
    def checks(self) -> Path:
        return self.state / "checks.json"

    @property
    def repo(self) -> Path:
        """The apt repository nodes read: a symlink to its current generation."""
        return self.root / "repo"

    @property
    def keys(self) -> Path:
        """The GnuPG home of the managed signing key."""
        return self.root / "keys" / "gnupg"

    @property
    def incoming(self) -> Path:
        """The publisher's: uploads of builds in flight, one directory each (buildbot)."""
        return self.root / "incoming"

    def upload(self, release: str, distribution: str, name: str) -> Path:
        """A project's last upload for the publisher (venvdeb.archive.upload)."""
        return self.target(release, distribution) / "uploads" / name

    def project(self, release: str, distribution: str, name: str) -> Path:
        return self.target(release, distribution) / "projects" / name
