"""``venvdeb requirements`` from a git branch it does not trust: only regular files,
each parsing as what it claims to be, reach the workdir."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import RELEASE, Project, require_tools

pytestmark = pytest.mark.integration
BRANCH = f"stable/{RELEASE}"


def _git(work: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "PATH": "/usr/bin:/bin", "HOME": str(work)}
    return subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True,
                          text=True).stdout


def _branch(project: Project, tmp_path: Path, hostile: str = "") -> Path:
    """A repository holding the project's requirement files on ``BRANCH``; ``hostile``:
    one of them replaced ("symlink:<file>", "submodule:<file>", "line:<text>")."""
    require_tools("git")
    work = tmp_path / "requirements-git"
    work.mkdir()
    _git(work, "init", "-q", "-b", BRANCH)
    for name in ("upper-constraints.txt", "global-requirements.txt", "denylist.txt"):
        (work / name).write_bytes((project.requirements / name).read_bytes())
    kind, _, target = hostile.partition(":")
    if kind == "symlink":  # a file of this host, with content that would parse
        secret = tmp_path / "host-secret"
        secret.write_text("fixture-lib===1.0.0\n")
        (work / target).unlink()
        (work / target).symlink_to(secret)
    elif kind == "line":
        with (work / "upper-constraints.txt").open("a") as f:
            f.write(target + "\n")
    _git(work, "add", "-A")
    if kind == "submodule":
        _git(work, "rm", "-q", "--cached", target)
        _git(work, "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},{target}")
    _git(work, "commit", "-q", "-m", "release files")
    project.write(release_extra=f'requirements_git = "file://{work}"\n'
                                f'requirements_branch = "{BRANCH}"')
    return work


def _fetched(project: Project) -> list[str]:
    return sorted(p.name for p in (project.workdir / "releases" / RELEASE / "requirements")
                  .glob("*"))


def test_a_branch_of_regular_files_is_fetched(project: Project, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _branch(project, tmp_path)
    run = project.venvdeb("requirements", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    assert _fetched(project) == ["PROVENANCE", "denylist.txt", "global-requirements.txt",
                                 "upper-constraints.txt"]
    fetched = project.workdir / "releases" / RELEASE / "requirements" / "upper-constraints.txt"
    assert fetched.read_text() == (project.requirements / "upper-constraints.txt").read_text()


@pytest.mark.parametrize(("hostile", "says"), [
    ("symlink:upper-constraints.txt", "upper-constraints.txt is a symlink"),
    ("symlink:denylist.txt", "denylist.txt is a symlink"),
    ("submodule:global-requirements.txt", "global-requirements.txt is a submodule"),
    ("line:fixture-native>=0.1", "upper-constraints.txt:6: 'fixture-native>=0.1' is not an exact pin"),
])
def test_a_hostile_branch_is_refused_and_nothing_is_packaged(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        hostile: str, says: str) -> None:
    work = _branch(project, tmp_path, hostile)
    run = project.venvdeb("requirements", "--release", RELEASE, capsys=capsys)
    assert run.code != 0
    [line] = [x for x in run.err.splitlines() if x.startswith("venvdeb: error:")]
    assert f"file://{work} ({BRANCH})" in line and says in line, line
    assert _fetched(project) == [], "nothing of a refused branch reaches the workdir"
    run = project.venvdeb("reqdeb", "--release", RELEASE, capsys=capsys)
    assert run.code != 0 and "not fetched" in run.err
    assert not project.debs()
