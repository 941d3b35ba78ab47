"""Bad input for venv packages: one clear line, a non-zero exit, and nothing
that looks like a finished package left in the output."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import RELEASE, Project, require_tools
from tests.fixtures.make_index import SERVICE
from tests.integration.test_venv_fixture import SERVICE as SERVICE_TOML
from tests.integration.test_venv_fixture import service_project

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, fixture_index: Path) -> Project:
    """A release with its requirements package built, shared by the tests below."""
    require_tools("dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare", "git")
    base = tmp_path_factory.mktemp("bad")
    project = service_project(Project(base / "checkout", fixture_index, base / "work"))
    from venvdeb.cli import main
    for stage in ("lock", "wheels", "reqdeb"):
        assert main(["--config", str(project.config), "--workdir", str(project.workdir), stage,
                     "--release", RELEASE]) == 0
    return project


@pytest.fixture
def project(prepared: Project, tmp_path: Path) -> Project:
    """The prepared release in a workdir of its own, with the config as written."""
    copy = Project(prepared.root, prepared.index, tmp_path / "work")
    shutil.copytree(prepared.workdir, copy.workdir)
    service_project(copy)
    return copy


def _error(project: Project, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    run = project.venvdeb(*args, "--release", RELEASE, capsys=capsys)
    assert run.code != 0, run.out
    lines = [line for line in run.err.splitlines() if line.startswith("venvdeb: error:")]
    assert len(lines) == 1, run.err
    out = project.workdir / "releases" / RELEASE / "bookworm" / "projects"
    assert not list(out.glob("*/*.deb")), "no package may be left behind"
    return lines[0]


def git_upstream(tmp_path: Path, *, extra_dependency: str | None = None) -> str:
    """A bare repository playing the upstream: tag 1.0.0, then one commit on stable."""
    work = tmp_path / "upstream"
    shutil.copytree(SERVICE, work)
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_AUTHOR_DATE": "2024-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2024-01-01T00:00:00Z",
           "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=work, env=env, check=True, capture_output=True)

    git("init", "-q", "-b", f"stable/{RELEASE}")
    git("add", "-A")
    git("commit", "-q", "-m", "1.0.0")
    git("tag", "1.0.0")
    readme = work / "README.md"
    readme.write_text(readme.read_text() + "\nA fix on the stable branch.\n")
    if extra_dependency:
        pyproject = work / "pyproject.toml"
        pyproject.write_text(pyproject.read_text().replace(
            'dependencies = ["fixture-lib>=1.0"]',
            f'dependencies = ["fixture-lib>=1.0", "{extra_dependency}"]'))
    git("commit", "-q", "-am", "stable fix")
    bare = tmp_path / "upstream.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True, env=env)
    return f"file://{bare}"


def with_git(url: str, ref: str = f"stable/{RELEASE}") -> str:
    return SERVICE_TOML.replace(
        'user = "fixture"',
        f'user = "fixture"\nupstream = {{ git = "{url}", refs = {{ "{RELEASE}" = "{ref}" }} }}')


def test_unknown_project(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    line = _error(project, capsys, "build", "fixture-nosuch")
    assert "unknown project 'fixture-nosuch'" in line and "fixture-service" in line


def test_version_the_lock_does_not_contain(project: Project,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    service_project(project, SERVICE_TOML.replace('= "1.0.0" }', '= "1.0.1" }', 1))
    line = _error(project, capsys, "source", "fixture-service")
    assert f"fixture-service 1.0.1 (projects.fixture-service) is not in the {RELEASE} lock" in line
    assert "it has 1.0.0" in line


def test_git_ref_that_does_not_exist(project: Project, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    url = git_upstream(tmp_path)
    service_project(project, with_git(url, "stable/nope"))
    line = _error(project, capsys, "source", "fixture-service")
    assert f"cannot fetch 'stable/nope' of {url}" in line and "log:" in line


def test_dependencies_missing_from_the_requirements_package(
        project: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    service_project(project, with_git(git_upstream(tmp_path, extra_dependency="fixture-lint")))
    line = _error(project, capsys, "source", "fixture-service")
    assert "fixture-service needs fixture-lint" in line
    assert "the lock must be rebuilt" in line


def test_linking_a_command_the_venv_does_not_have(project: Project,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    service_project(project, SERVICE_TOML.replace(
        '"fixture-manage", "fixture-service"]',
        '"fixture-manage", "fixture-service", "fixture-nope"]'))
    line = _error(project, capsys, "build", "fixture-service")
    assert "the venv has no command 'fixture-nope'" in line
    assert "stage dpkg-buildpackage" in line and "build-fixture-service.log" in line


def test_conffile_missing_from_the_upstream_tree_is_named_before_the_build(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    """(A build failure naming its stage and log: test_linking_a_command_the_venv_does_not_have.)"""
    service_project(project, SERVICE_TOML.replace("etc/fixture.conf.sample", "etc/missing.sample"))
    line = _error(project, capsys, "build", "fixture-service")
    assert "/etc/fixture/fixture.conf comes from 'etc/missing.sample' of the upstream tree, " \
           "which is not a regular file there" in line
    assert not list(project.workdir.glob("releases/*/*/fixture-service/*.deb"))


def test_git_upstream_builds(project: Project, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    service_project(project, with_git(git_upstream(tmp_path)))
    run = project.venvdeb("build", "fixture-service", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    out = project.workdir / "releases" / RELEASE / "bookworm" / "projects" / "fixture-service"
    names = sorted(p.name for p in out.glob("*.deb"))
    assert names == ["fixture-service_1.0.0.post1-0+deb12u1_all.deb",
                     "python3-fixture-service_1.0.0.post1-0+deb12u1_all.deb",
                     f"venv-fixture-service-{RELEASE}_1.0.0.post1-0+deb12u1_amd64.deb"]
