"""venvdeb's own Debian package, as data: vendored wheels, control fields, setup.py."""
from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.core import config
from venvdeb.core.errors import ConfigError
from venvdeb.debian import tool_package

#: Essential: yes on bookworm; policy 3.5 says not to depend on them unversioned
ESSENTIAL = {"bash", "coreutils", "dash", "diffutils", "dpkg", "findutils", "grep", "gzip",
             "hostname", "login", "perl-base", "sed", "tar", "util-linux", "debianutils",
             "base-files", "base-passwd", "bsdutils", "init-system-helpers", "ncurses-bin",
             "libc-bin", "mount", "sysvinit-utils"}


def test_vendored_wheels_are_pip_tools_and_what_it_imports_each_pinned_by_hash() -> None:
    wheels = {w.name: w for w in tool_package.parse_vendor(tool_package.templates() / "vendor.txt")}
    assert set(wheels) == {"pip-tools", "pip", "build", "click", "packaging", "pyproject-hooks",
                           # the SBOMs (venvdeb.debian.sbom) and what the library imports
                           "cyclonedx-python-lib", "license-expression", "boolean-py",
                           "packageurl-python", "py-serializable", "defusedxml",
                           "sortedcontainers", "typing-extensions"}
    assert wheels["pip-tools"].version == "7.6.2" and wheels["pip"].version == "26.3"
    for w in wheels.values():
        assert w.hashes and all(len(h) == 64 for h in w.hashes), w


def test_a_vendor_entry_without_hash_is_refused_naming_file_and_entry(tmp_path: Path) -> None:
    bad = tmp_path / "vendor.txt"
    bad.write_text("pip==26.3 \\\n    --hash=sha256:" + "a" * 64 + "\nclick==8.5.1\n")
    with pytest.raises(ConfigError, match=r"vendor.txt:3: lock entry 'click==8.5.1' has no sha256"):
        tool_package.parse_vendor(bad)


def _plan(root: Path, files: tuple[str, ...]) -> tool_package.ToolPlan:
    cfg = config.load(ROOT / "pipeline.toml")
    return tool_package.plan(cfg, cfg.distributions["bookworm"], root, files)


def test_depends_name_the_tools_and_no_essential_package() -> None:
    the_plan = _plan(ROOT, ("builder/venvdeb/cli.py",))
    for tool in ("dh-virtualenv", "sbuild", "mmdebstrap", "lintian", "reprepro", "python3-debian",
                 "buildbot-worker", "debhelper"):
        assert tool in the_plan.depends
    assert not ESSENTIAL & set(the_plan.depends)
    cfg = config.load(ROOT / "pipeline.toml")
    assert the_plan.recommends == cfg.all_build_dependencies() and "libldap2-dev" in \
        the_plan.recommends


def test_the_digest_follows_file_content(tmp_path: Path) -> None:
    (tmp_path / "builder" / "venvdeb").mkdir(parents=True)
    (tmp_path / "builder" / "venvdeb" / "cli.py").write_text("one\n")
    first = _plan(tmp_path, ("builder/venvdeb/cli.py",)).digest
    assert _plan(tmp_path, ("builder/venvdeb/cli.py",)).digest == first
    (tmp_path / "builder" / "venvdeb" / "cli.py").write_text("two\n")
    assert _plan(tmp_path, ("builder/venvdeb/cli.py",)).digest != first


def test_setup_py_and_stdeb_cfg(tmp_path: Path) -> None:
    the_plan = _plan(ROOT, ("builder/venvdeb/cli.py",))
    rendered = tool_package.render_setup(the_plan, "0.1.0.3+abcdef12")
    compile(rendered["setup.py"], "setup.py", "exec")
    assert 'version="0.1.0.3+abcdef12"' in rendered["setup.py"]
    assert '"venvdeb = venvdeb.cli:main"' in rendered["setup.py"]
    cfg = configparser.ConfigParser()
    cfg.read_string(rendered["stdeb.cfg"])
    d = cfg["DEFAULT"]
    assert d["Package3"] == "venvdeb" and d["Source"] == "venvdeb" and d["Suite3"] == "bookworm"
    assert d["Depends3"].split(", ") == list(tool_package.DEPENDS)
    assert d["Maintainer"] == "venvdeb packagers <packagers@venvdeb.invalid>"


def test_tracked_files_of_the_checkout_exclude_tests_and_build_output(tmp_path: Path) -> None:
    files = tool_package.tracked_files(ROOT, tmp_path / "log")
    assert "builder/venvdeb/cli.py" in files and "pipeline.toml" in files
    assert "debian-templates/venv/rules.j2" in files
    assert "requirements-repo/releases/2026.1/upper-constraints.txt" in files
    assert not [f for f in files if f.startswith(("tests/", "build/", ".venv/", "bench/"))]


def test_outside_a_git_checkout_it_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a venvdeb git checkout"):
        tool_package.tracked_files(tmp_path, tmp_path / "log")


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.name=t", "-c", "user.email=t@x.invalid",
                    *args], check=True, capture_output=True)


def test_untracked_files_stay_out_and_a_dirty_tree_is_named(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    (root / "builder" / "venvdeb").mkdir(parents=True)
    (root / "builder" / "venvdeb" / "cli.py").write_text("# cli\n")
    (root / "README.md").write_text("readme\n")
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "init")
    # dropped into the tree, not ignored, never added: it must not be packaged
    (root / "builder" / "venvdeb" / "planted.py").write_text("import os\n")
    (root / "README.md").write_text("changed, not committed\n")
    log = tmp_path / "log"
    assert tool_package.tracked_files(root, log) == ("README.md", "builder/venvdeb/cli.py")
    assert tool_package.uncommitted(root, log) == ("README.md",)
    (root / "builder" / "venvdeb" / "host.py").symlink_to("/etc/hostname")
    _git(root, "add", "builder/venvdeb/host.py")
    with pytest.raises(ConfigError, match="tracked symbolic links .*builder/venvdeb/host.py"):
        tool_package.tracked_files(root, log)
