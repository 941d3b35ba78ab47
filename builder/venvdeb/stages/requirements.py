"""``venvdeb requirements``: a release's requirement files from its git branch."""
from __future__ import annotations

import tempfile
from pathlib import Path

from venvdeb.core import runner
from venvdeb.core.config import Config
from venvdeb.core.errors import ConfigError
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.workdir import Workdir

REQUIREMENT_FILES = ("upper-constraints.txt", "global-requirements.txt", "denylist.txt")


def _provenance_commit(work: Workdir, release: str) -> str | None:
    path = work.requirements(release) / "PROVENANCE"
    if not path.exists():
        return None
    for line in path.read_text().splitlines():
        if line.startswith("Commit: "):
            return line.split(": ", 1)[1].strip()
    return None


def plan_requirements(config: Config, work: Workdir, release_name: str) -> Planned:
    """Pure: the branch's head (git ls-remote) against the commit last fetched."""
    release = config.release(release_name)
    if not release.requirements_git or not release.requirements_branch:
        return Planned("requirements", release_name, False, f"reads {release.requirements_dir}")
    log = work.fresh_log(release_name, "requirements")
    out = runner.run(["git", "ls-remote", "--heads", release.requirements_git,
                      release.requirements_branch], log=log, what="git ls-remote").output.split()
    head = out[0] if out else "unknown"
    have = _provenance_commit(work, release_name)
    if have == head:
        return Planned("requirements", release_name, False, f"at {head[:10]}")
    return Planned("requirements", release_name, True,
                   f"{release.requirements_branch} is at {head[:10]}, fetched "
                   f"{have[:10] if have else 'never'}")


def run_requirements(config: Config, work: Workdir, release_name: str) -> Outcome:
    """Fetch the release's requirement files from its git branch into the workdir
    (written only when they change), with a PROVENANCE naming the commit."""
    release = config.release(release_name)
    if not release.requirements_git or not release.requirements_branch:
        return Outcome("requirements", release_name,
                       f"requirements: {release_name} reads {release.requirements_dir} (no "
                       f"requirements_git in the config)", changed=False)
    log = work.fresh_log(release_name, "requirements")
    dest = work.requirements(release_name)
    with tempfile.TemporaryDirectory(prefix="venvdeb-req-") as tmp:
        checkout = Path(tmp) / "r"
        runner.run(["git", "clone", "--quiet", "--depth", "1", "--branch",
                    release.requirements_branch, release.requirements_git, str(checkout)],
                   log=log, what="git clone (requirements)")
        commit = runner.run(["git", "rev-parse", "HEAD"], log=log, cwd=checkout).output.strip()
        if not (checkout / "upper-constraints.txt").is_file():
            raise ConfigError(f"{release.requirements_git} ({release.requirements_branch}) has "
                              f"no upper-constraints.txt at its top",
                              hint=f"fix releases.\"{release_name}\".requirements_git")
        dest.mkdir(parents=True, exist_ok=True)
        changed = []
        for name in REQUIREMENT_FILES:
            if (checkout / name).is_file():
                text = (checkout / name).read_text()
                if not (dest / name).exists() or (dest / name).read_text() != text:
                    (dest / name).write_text(text)
                    changed.append(name)
        (dest / "PROVENANCE").write_text(
            f"Repository: {release.requirements_git}\nBranch: {release.requirements_branch}\n"
            f"Commit: {commit}\n")
    state = f"updated {', '.join(changed)}" if changed else "up to date"
    return Outcome("requirements", release_name,
                   f"requirements: {state} from {release.requirements_branch} at {commit[:10]} "
                   f"in {dest}", changed=bool(changed))
