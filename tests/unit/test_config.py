from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.core import config
from venvdeb.core.errors import ConfigError


def test_bundled_config_loads() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    assert sorted(cfg.releases) == ["2025.1", "2026.1"]
    bookworm = cfg.distribution("bookworm")
    assert bookworm.python == Path("/usr/bin/python3") and bookworm.python_version == "3.11"
    assert bookworm.python_range == ("3.11~", "3.12")
    assert cfg.release("2026.1").upper_constraints.is_file()
    keystone = cfg.projects["keystone"]
    assert keystone.requirement_for("2026.1") == "keystone[ldap]==29.0.2"
    assert keystone.version_for("2025.1") == "27.0.2"
    assert cfg.projects["cloudkitty"].version_for("2026.1") == "24.0.0"
    assert cfg.build_dependencies_for("Python_LDAP") == ("libldap2-dev", "libsasl2-dev", "python3-dev")
    assert cfg.build_requires_for("TestResources") == ("pbr>=1.3",)
    assert cfg.build_requires_for("keystone") == ()
    for release in cfg.releases.values():
        assert {p.split("==")[0] for p in release.extra_pins} == {"setuptools", "pip", "wheel", "certifi",
                                                                 "uv"}


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "reqs").mkdir(exist_ok=True)
    (tmp_path / "reqs" / "upper-constraints.txt").write_text("six===1.16.0\n")
    path = tmp_path / "pipeline.toml"
    path.write_text(text)
    return path


BASE = """
[repository]
origin = "o"
label = "l"
maintainer = "A B <a@example.invalid>"

[distributions.bookworm]
python = "/usr/bin/python3"
python_version = "3.11"
glibc = "2.36"

[releases."2026.1"]
series = "gazpacho"
requirements_dir = "reqs"
distributions = ["bookworm"]
{release}

[projects.keystone]
versions = {{ "2026.1" = "29.0.2" }}
{project}
"""


@pytest.mark.parametrize(("release", "project", "message"), [
    ('scope = 3', "", 'releases."2026.1".scope: expected a string, got int 3'),
    ('scope = "some"', "", 'releases."2026.1".scope: expected one of all, projects'),
    ('extra_pins = "setuptools"', "", "extra_pins: expected a list of strings, got str"),
    ('extra_pins = ["setuptools>=80"]', "", "must pin one exact version"),
    ('extra_pins = ["setup tools==1"]', "", "is not a requirement"),
    ('distributions = ["trixie"]', "", "unknown distribution 'trixie'"),
    ('colour = "blue"', "", 'releases."2026.1".colour: unknown key'),
    ("", 'extras = "ldap"', "projects.keystone.extras: expected a list of strings"),
    ("", 'versions = { "2027.1" = "30.0.0" }', ""),
])
def test_bad_values_name_file_key_and_value(tmp_path: Path, release: str, project: str,
                                            message: str) -> None:
    text = BASE.format(release=release, project=project)
    if 'versions = { "2027.1"' in project:
        text = text.replace('versions = { "2026.1" = "29.0.2" }\n', "")
        message = 'projects.keystone.versions."2027.1": unknown release'
    if release.startswith("distributions"):
        text = text.replace('distributions = ["bookworm"]\n', "")
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_requirements_dir_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.format(release="", project="").replace('"reqs"', '"nowhere"'))
    with pytest.raises(ConfigError,
                       match=r"requirements_dir: .*nowhere/upper-constraints.txt does not exist"):
        config.load(path)


def test_not_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, "[repository\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(path)


def test_unknown_release_lists_the_known(tmp_path: Path) -> None:
    cfg = config.load(_write(tmp_path, BASE.format(release="", project="")))
    with pytest.raises(ConfigError, match="unknown release '2031.1': pipeline.toml defines 2026.1"):
        cfg.release("2031.1")
    assert [p.name for p in cfg.projects_for("2026.1")] == ["keystone"]
    assert cfg.release("2026.1").scope == "projects"
    assert cfg.release("2026.1").index_url == "https://pypi.org/simple"


@pytest.mark.parametrize("value", ['["pbr @ https://example.invalid/pbr.whl"]',
                                   '["pbr; os_name == \'posix\'"]', '["pbr>=1.3\\n"]',
                                   '["pbr >=1.3 $(id)"]'])
def test_declared_build_requirements_are_names_and_ranges_only(tmp_path: Path, value: str) -> None:
    path = _write(tmp_path, BASE.format(release="", project="")
                  + f"\n[sdist_build_requires]\ntestresources = {value}\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(path) in str(info.value) and "sdist_build_requires.testresources" in str(info.value)
    assert "a requirement from the index" in str(info.value)


def test_declared_build_requirements_load(tmp_path: Path) -> None:
    path = _write(tmp_path, BASE.format(release="", project="")
                  + '\n[sdist_build_requires]\n"Pact" = ["pbr>=3.0", "setuptools>=17.1,<81"]\n')
    assert config.load(path).build_requires_for("pact") == ("pbr>=3.0", "setuptools>=17.1,<81")
