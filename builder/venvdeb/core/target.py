"""What a stage works on: a release on a distribution, and a project of it."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from venvdeb.core.config import Config, Distribution, Project, Release
from venvdeb.core.errors import ConfigError
from venvdeb.core.workdir import Workdir


@dataclass(frozen=True)
class Target:
    release: Release
    distribution: Distribution

    @property
    def logs(self) -> str:
        """``2026.1/bookworm``: where its stages' logs go (``Workdir.log``)."""
        return f"{self.release.name}/{self.distribution.name}"


def target(config: Config, release: str, distribution: str | None,
           work: Workdir | None = None) -> Target:
    """The release on a distribution; with ``work``, a release whose requirement files
    come from git reads the copy ``venvdeb requirements`` fetched into the workdir."""
    rel = config.release(release)
    if work is not None and rel.requirements_git:
        fetched = work.requirements(release)
        if not (fetched / "upper-constraints.txt").is_file():
            raise ConfigError(f"release {release} takes its requirement files from "
                              f"{rel.requirements_git} ({rel.requirements_branch}), not fetched",
                              hint=f"run 'venvdeb requirements --release {release}' first")
        rel = dataclasses.replace(rel, requirements_dir=fetched)
    dist_name = distribution or rel.distributions[0]
    if dist_name not in rel.distributions:
        raise ConfigError(f"release {release} is not built for distribution '{dist_name}' "
                          f"(its distributions: {', '.join(rel.distributions)})")
    return Target(rel, config.distribution(dist_name))


def project_for(config: Config, name: str, release: Release) -> Project:
    project = config.projects.get(name)
    if project is None:
        known = ", ".join(sorted(config.projects)) or "none"
        raise ConfigError(f"unknown project '{name}': {config.path.name} defines {known}",
                          hint=f"add a [projects.{name}] table to {config.path}")
    if project.version_for(release.name) is None and not project.upstream.ref_for(release.name):
        raise ConfigError(f"project {name} has no version for release {release.name}",
                          hint=f"add versions.\"{release.name}\" to [projects.{name}] in {config.path}")
    return project


def project_on(config: Config, name: str, t: Target) -> Project:
    """``project_for``, refusing a distribution the project excludes (with its reason)."""
    project = project_for(config, name, t.release)
    reason = project.excluded_from(t.distribution.name)
    if reason is not None:
        raise ConfigError(f"project {name} is not built for {t.distribution.name}: {reason}",
                          hint=f"remove {t.distribution.name} from projects.{name}."
                               f"exclude_distributions in {config.path} to build it")
    return project


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def default_build_jobs() -> int:
    return max(1, default_jobs() // 2)
