"""``venvdeb requirements``: a release's requirement files from its git branch."""
from __future__ import annotations

import tempfile
from pathlib import Path

from venvdeb.core import runner
from venvdeb.core.config import Config
from venvdeb.core.errors import ConfigError
from venvdeb.core.files import write_if_changed
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.workdir import Workdir
from venvdeb.python import constraints

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
    out = runner.run(["git", "ls-remote", "--heads", "--", release.requirements_git,
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
    (written only when they change), with a PROVENANCE naming the commit.

    The branch is fetched without a checkout and each file is read as a git blob:
    only regular files are accepted (a symlink could point at any file of this
    host), and each must parse before anything is written."""
    release = config.release(release_name)
    if not release.requirements_git or not release.requirements_branch:
        return Outcome("requirements", release_name,
                       f"requirements: {release_name} reads {release.requirements_dir} (no "
                       f"requirements_git in the config)", changed=False)
    log = work.fresh_log(release_name, "requirements")
    dest = work.requirements(release_name)
    where = f"{release.requirements_git} ({release.requirements_branch})"
    hint = f"fix the branch, or releases.\"{release_name}\".requirements_git"
    with tempfile.TemporaryDirectory(prefix="venvdeb-req-") as tmp:
        repo = Path(tmp) / "r.git"
        runner.run(["git", "clone", "--quiet", "--bare", "--depth", "1", "--branch",
                    release.requirements_branch, "--", release.requirements_git, str(repo)],
                   log=log, what="git clone (requirements)")
        commit = runner.run(["git", "rev-parse", "HEAD"], log=log, cwd=repo).output.strip()
        listed = runner.run(["git", "ls-tree", "-z", "HEAD", "--", *REQUIREMENT_FILES],
                            log=log, cwd=repo, what="git ls-tree").output
        texts = {}
        for name, (mode, blob) in _entries(listed).items():
            if mode not in _REGULAR:
                raise ConfigError(f"{where}: {name} is {_KINDS.get(mode, f'git mode {mode}')}, "
                                  f"not a regular file: refused", hint=hint)
            texts[name] = runner.run(["git", "cat-file", "blob", blob], log=log, cwd=repo,
                                     what="git cat-file").output
    if "upper-constraints.txt" not in texts:
        raise ConfigError(f"{where} has no upper-constraints.txt at its top", hint=hint)
    _check_syntax(texts, where)
    changed = [name for name, text in texts.items() if write_if_changed(dest / name, text)]
    write_if_changed(dest / "PROVENANCE",
                     f"Repository: {release.requirements_git}\nBranch: "
                     f"{release.requirements_branch}\nCommit: {commit}\n")
    state = f"updated {', '.join(changed)}" if changed else "up to date"
    return Outcome("requirements", release_name,
                   f"requirements: {state} from {release.requirements_branch} at {commit[:10]} "
                   f"in {dest}", changed=bool(changed))


#: git's modes of a regular file (plain and executable)
_REGULAR = ("100644", "100755")
_KINDS = {"120000": "a symlink", "160000": "a submodule", "040000": "a directory"}


def _entries(ls_tree: str) -> dict[str, tuple[str, str]]:
    """``git ls-tree -z`` output: path -> (mode, object)."""
    out = {}
    for record in filter(None, ls_tree.split("\0")):
        meta, _, path = record.partition("\t")
        mode, _, obj = meta.split(" ")
        out[path] = (mode, obj)
    return out


def _check_syntax(texts: dict[str, str], where: str) -> None:
    """Each file parses as what it claims to be (errors name ``<repo> (<branch>) file:line``)."""
    constraints.parse_pin_lines(texts["upper-constraints.txt"].splitlines(),
                                f"{where} upper-constraints.txt")
    if "global-requirements.txt" in texts:
        constraints.check_requirement_lines(texts["global-requirements.txt"],
                                            f"{where} global-requirements.txt")
    if "denylist.txt" in texts:
        constraints.check_denylist(texts["denylist.txt"], f"{where} denylist.txt")
