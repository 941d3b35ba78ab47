from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from debian import deb822
from debian.changelog import Changelog

from venvdeb.core import render


def _context() -> dict[str, object]:
    return {"source": "openstack-wheels-2026.1", "package": "openstack-wheels-2026.1",
            "architecture": "amd64", "maintainer": "A B <a@example.invalid>", "release": "2026.1",
            "series": "gazpacho", "distribution": "bookworm", "python_version": "3.11",
            "wheel_count": 132, "downloaded": 129, "built": 3,
            "root": "/usr/share/venvdeb/wheels/2026.1", "dpkg_deb_options": "-Zgzip -z1",
            "compression_reason": "reason", "copyright_year": "2026"}


def test_requirements_control_parses_back() -> None:
    files = render.render_tree("requirements", _context())
    source, binary = deb822.Deb822.iter_paragraphs(files["control"])
    assert source["Source"] == "openstack-wheels-2026.1"
    assert source["Build-Depends"] == "debhelper-compat (= 13)"
    assert source["Rules-Requires-Root"] == "no"
    assert binary["Package"] == "openstack-wheels-2026.1"
    assert binary["Architecture"] == "amd64"
    assert "132 wheels (129 downloaded, 3 built from sdists)" in binary["Description"]
    for line in binary["Description"].splitlines()[1:]:
        assert len(line) <= 79, line
    assert files["install"] == "repository/* /usr/share/venvdeb/wheels/2026.1/\n"
    assert files["source/format"] == "3.0 (native)\n"
    copyright_ = list(deb822.Deb822.iter_paragraphs(files["copyright"]))
    assert copyright_[0]["Format"].startswith("https://www.debian.org/doc/packaging-manuals/copyright-format")


def test_rules_is_valid_make_and_keeps_wheels_untouched(tmp_path: Path) -> None:
    files = render.render_tree("requirements", _context())
    assert "override_dh_strip_nondeterminism:\n" in files["rules"]
    assert "dh_builddeb -- -Zgzip -z1" in files["rules"]
    render.write_tree({"debian/" + k: v for k, v in files.items()}, tmp_path / "src")
    rules = tmp_path / "src" / "debian" / "rules"
    assert rules.stat().st_mode & 0o111
    dry = subprocess.run(["make", "-n", "-f", str(rules), "override_dh_builddeb"],
                         capture_output=True, text=True, cwd=tmp_path / "src")
    assert dry.returncode == 0, dry.stderr
    assert "dh_builddeb -- -Zgzip -z1" in dry.stdout


def test_missing_variable_is_an_error() -> None:
    context = _context()
    del context["release"]
    with pytest.raises(Exception, match="release"):
        render.render_tree("requirements", context)


def test_changelog_written_by_python_debian_wraps_lines() -> None:
    text = render.changelog("pkg", "2026.1.1+abcdef12", "bookworm", ["word " * 40],
                            "A B <a@example.invalid>", "Mon, 23 Nov 2026 10:00:00 +0000")
    log = Changelog(text)
    assert str(log.version) == "2026.1.1+abcdef12" and log.distributions == "bookworm"
    assert all(len(line) <= 80 for line in text.splitlines())
