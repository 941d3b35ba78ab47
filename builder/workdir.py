"""Where every output lives, under one ``--workdir`` (default ``build/``)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workdir:
    root: Path

    def target(self, release: str, distribution: str) -> Path:
        return self.root / "releases" / release / distribution

    def lock_dir(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "lock"

    def lock_file(self, release: str, distribution: str) -> Path:
        return self.lock_dir(release, distribution) / "lock.txt"

    def wheelhouse(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "wheelhouse"

    def sdists(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "sdists"

    def reqdeb(self, release: str, distribution: str) -> Path:
        return self.target(release, distribution) / "reqdeb"

    def log(self, release: str, stage: str) -> Path:
        return self.root / "logs" / release / f"{stage}.log"

    def fresh_log(self, release: str, stage: str) -> Path:
        """The stage's log, the previous run's kept as ``<stage>.log.1``."""
        path = self.log(release, stage)
        if path.exists():
            path.replace(path.with_name(path.name + ".1"))
        return path

    def log_dir(self, release: str, stage: str) -> Path:
        """One log per item of a stage (e.g. per sdist build)."""
        return self.root / "logs" / release / stage

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def state(self) -> Path:
        return self.root / "state"

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

    def project(self, release: str, distribution: str, name: str) -> Path:
        return self.target(release, distribution) / "projects" / name
