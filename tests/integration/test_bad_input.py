"""Each bad input ends with one clear line naming the culprit, a non-zero exit
and no package produced, tried the way a new user would."""
from __future__ import annotations

import pytest

from tests.conftest import RELEASE, Project, require_tools

pytestmark = pytest.mark.integration


def _error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("venvdeb: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _pipeline(project: Project, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    for stage in ("lock", "wheels", "reqdeb"):
        run = project.venvdeb(stage, "--release", RELEASE, capsys=capsys)
        if run.code != 0:
            return run.code, _error_line(run.err)
    raise AssertionError("the pipeline succeeded on bad input")


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_tools("dpkg-buildpackage", "lintian", "unshare")


@pytest.mark.parametrize("bad", ["fixture-native=== ", "fixture-native==>0.1.0", "fixture-native 0.1.0"])
def test_malformed_constraints_line(project: Project, capsys: pytest.CaptureFixture[str], bad: str) -> None:
    project.write(upper_constraints=f"fixture-lib===1.0.0\n{bad}\n")
    code, line = _pipeline(project, capsys)
    assert code != 0
    assert "upper-constraints.txt:2" in line and "fixture-native" in line
    assert not project.debs()


def test_conflicting_pins(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(upper_constraints="fixture-lib===1.0.0\nfixture-native===0.1.0\n",
                  extra_pins='["fixture-lib==1.1.0"]')
    code, line = _pipeline(project, capsys)
    assert code != 0
    assert "conflicting pins for fixture-lib" in line
    assert "upper-constraints.txt:1" in line and "extra_pins" in line
    assert not project.debs()


def test_pin_the_index_does_not_have(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(upper_constraints="fixture-lib===9.9.9\nfixture-native===0.1.0\n")
    code, line = _pipeline(project, capsys)
    assert code != 0
    assert "fixture-lib" in line and "9.9.9" in line
    assert "upper-constraints.txt:1" in line
    assert "log:" in line
    assert not project.debs()


def test_tampered_cached_wheel(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    for stage in ("lock", "wheels"):
        assert project.venvdeb(stage, "--release", RELEASE, capsys=capsys).code == 0
    [wheel] = project.workdir.glob("releases/*/*/wheelhouse/files/fixture_lib-*.whl")
    wheel.write_bytes(wheel.read_bytes()[:100])  # truncated
    for stage in ("reqdeb", "wheels"):
        run = project.venvdeb(stage, "--release", RELEASE, capsys=capsys)
        assert run.code != 0
        line = _error_line(run.err)
        assert wheel.name in line and "tampered with or truncated" in line
        assert f"delete {wheel}" in line
    assert not project.debs()


def test_unknown_release(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run = project.venvdeb("lock", "--release", "2031.2", capsys=capsys)
    assert run.code == 2
    line = _error_line(run.err)
    assert "unknown release '2031.2'" in line and RELEASE in line


def test_config_key_with_wrong_type(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(scope="3")
    run = project.venvdeb("lock", "--release", RELEASE, capsys=capsys)
    assert run.code == 2
    line = _error_line(run.err)
    assert str(project.config) in line
    assert f'releases."{RELEASE}".scope' in line and "expected a string, got int 3" in line


def test_sdist_that_fails_to_build(project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(projects=f'[projects.fixture-broken]\nversions = {{ "{RELEASE}" = "0.1.0" }}')
    code, line = _pipeline(project, capsys)
    assert code != 0
    assert "fixture-broken 0.1.0" in line
    assert "libldap2-dev" in line, "the missing header is recognised"
    assert '[sdist_build_dependencies] "fixture-broken"' in line, "the hint names the key to add"
    log = line.rsplit("(log: ", 1)[1].rstrip(")")
    assert "ldap.h: No such file or directory" in open(log).read()
    assert not project.debs()


def test_declared_debian_build_dependency_missing(
        project: Project, capsys: pytest.CaptureFixture[str]) -> None:
    project.write(sdist_deps='"fixture-native" = ["venvdeb-test-no-such-dev"]')
    code, line = _pipeline(project, capsys)
    assert code == 2, "a package the distribution lacks is a config error"
    assert str(project.config) in line
    assert '[sdist_build_dependencies] "fixture-native"' in line
    assert "bookworm has no package venvdeb-test-no-such-dev" in line
    assert not project.debs()
