"""Several distributions in one config: what each one's interpreter, versions,
builder and lintian are, and the errors that name what to change."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.test_config import BASE, _write
from venvdeb.core import config, host
from venvdeb.core.errors import ConfigError
from venvdeb.core.target import Target, project_on
from venvdeb.debian import builders
from venvdeb.qa import lintian

TRIXIE = """
[distributions.trixie]
python = "/usr/bin/python3"
python_version = "{python}"
glibc = "2.41"
{extra}
"""


def _load(tmp_path: Path, python: str = "3.13", extra: str = "", project: str = "") -> config.Config:
    text = BASE.format(release="", project=project) + TRIXIE.format(python=python, extra=extra)
    return config.load(_write(tmp_path, text.replace('distributions = ["bookworm"]',
                                                     'distributions = ["bookworm", "trixie"]')))


def test_known_codenames_carry_their_debian_version(tmp_path: Path) -> None:
    cfg = _load(tmp_path)
    assert cfg.distribution("bookworm").version_tag == "deb12"
    assert cfg.distribution("trixie").version_tag == "deb13"
    assert cfg.distribution("trixie").python_range == ("3.13~", "3.14")
    bundled = config.load(Path(__file__).parents[2] / "pipeline.toml")
    assert bundled.distribution("trixie").python_version == "3.13"


@pytest.mark.parametrize(("python", "extra", "message"), [
    ("3.11", "", 'distributions.trixie.python_version: trixie\'s python3 is 3.13, not 3.11'),
    ("3.13", "debian_version = 12", "distributions.trixie.debian_version: trixie is Debian 13"),
    ("3.13", 'debian_version = "13"', "expected Debian's major version, an integer"),
])
def test_a_distribution_that_is_not_itself_is_refused(tmp_path: Path, python: str, extra: str,
                                                      message: str) -> None:
    with pytest.raises(ConfigError) as info:
        _load(tmp_path, python, extra)
    assert message in str(info.value) and "pipeline.toml" in str(info.value)


def test_an_unknown_codename_names_its_debian_version(tmp_path: Path) -> None:
    text = BASE.format(release="", project="") + TRIXIE.format(python="3.14", extra="") \
        .replace("distributions.trixie", "distributions.forky")
    with pytest.raises(ConfigError, match=r"distributions.forky.debian_version: venvdeb does not "
                                          r"know which Debian version forky is") as info:
        config.load(_write(tmp_path, text))
    assert "set debian_version" in (info.value.hint or "")
    cfg = config.load(_write(tmp_path, text.replace('glibc = "2.41"',
                                                    'glibc = "2.41"\ndebian_version = 14')))
    assert cfg.distribution("forky").version_tag == "deb14"


def test_a_project_excluded_from_a_distribution_says_why(tmp_path: Path) -> None:
    cfg = _load(tmp_path, project='exclude_distributions = { trixie = "needs Python before 3.13" }')
    keystone = cfg.projects["keystone"]
    assert keystone.excluded_from("trixie") == "needs Python before 3.13"
    assert [p.name for p in cfg.projects_for("2026.1", "bookworm")] == ["keystone"]
    assert cfg.projects_for("2026.1", "trixie") == ()
    t = Target(cfg.release("2026.1"), cfg.distribution("trixie"))
    with pytest.raises(ConfigError, match="project keystone is not built for trixie: needs "
                                          "Python before 3.13"):
        project_on(cfg, "keystone", t)
    assert project_on(cfg, "keystone", Target(cfg.release("2026.1"),
                                               cfg.distribution("bookworm"))) is keystone
    with pytest.raises(ConfigError, match=r"exclude_distributions.sid: unknown distribution"):
        _load(tmp_path, project='exclude_distributions = { sid = "x" }')
    with pytest.raises(ConfigError, match=r"exclude_distributions.trixie: .*one-line"):
        _load(tmp_path, project='exclude_distributions = { trixie = "a\\nb" }')


def test_host_codename_reads_os_release(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nVERSION_CODENAME=trixie\n')
    assert host.codename(os_release) == "trixie"
    (tmp_path / "none").write_text("NAME=x\n")
    assert host.codename(tmp_path / "none") == ""
    assert host.codename(tmp_path / "missing") == ""


def test_the_builder_follows_the_distribution(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _load(tmp_path)
    bookworm, trixie = cfg.distribution("bookworm"), cfg.distribution("trixie")
    monkeypatch.setattr(host, "codename", lambda: "bookworm")
    monkeypatch.setattr(host, "running_python", lambda: "3.11")
    assert host.native(bookworm) and not host.native(trixie)
    monkeypatch.setattr(host, "running_python", lambda: "3.12")
    assert not host.native(bookworm), "venvdeb on another Python"
    monkeypatch.setattr(host, "running_python", lambda: "3.11")
    assert builders.choose(None, bookworm) == "local"
    assert builders.choose(None, trixie) == "sbuild"
    assert builders.choose("sbuild", bookworm) == "sbuild"
    with pytest.raises(ConfigError, match=r"the local builder builds for this host's "
                                          r"distribution \(bookworm, .*not for trixie"):
        builders.choose("local", trixie)
    # the host's lintian for the host's distribution: no tree is made
    assert lintian.tree_for(bookworm, tmp_path / "log") is None


def test_the_pipeline_builds_every_release_on_each_of_its_distributions(tmp_path: Path) -> None:
    from venvdeb import pipeline
    cfg = _load(tmp_path)
    assert pipeline.pairs(cfg, ["2026.1"], None) == [("2026.1", "bookworm"), ("2026.1", "trixie")]
    assert pipeline.pairs(cfg, ["2026.1"], ["trixie"]) == [("2026.1", "trixie")]
    with pytest.raises(ConfigError, match="unknown distribution 'sid'"):
        pipeline.pairs(cfg, ["2026.1"], ["sid"])
