"""Shared by the unit tests that run ``cli.main``: a checkout with a one-project config."""
from __future__ import annotations

from pathlib import Path

import pytest

RELEASE = "2099.1"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    req = tmp_path / "requirements" / RELEASE
    req.mkdir(parents=True)
    (req / "upper-constraints.txt").write_text("fixture-lib===1.0.0\n")
    (tmp_path / "pipeline.toml").write_text(f"""
[repository]
origin = "t"
label = "t"
maintainer = "venvdeb tests <tests@venvdeb.invalid>"
index_url = "file://{tmp_path}/no-index"

[distributions.bookworm]
python = "/usr/bin/python3"
python_version = "3.11"
glibc = "2.36"

[releases."{RELEASE}"]
series = "fixture"
requirements_dir = "requirements/{RELEASE}"
scope = "all"
distributions = ["bookworm"]

[projects.fixture-app]
versions = {{ "{RELEASE}" = "1.0.0" }}

[[projects.fixture-app.packages]]
name = "fixture-app"
commands = ["fixture-app"]
""")
    return tmp_path
