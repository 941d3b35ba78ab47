"""``venvdeb audit --online``: osv.dev through pip-audit, with the network cut (as on
an air-gapped build host, and as this test machine is for osv.dev anyway): one line,
exit 69; ``promote`` gated on the online source then refuses unless
``--allow-stale-audit`` names the last clean audit."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.conftest import RELEASE, checkout  # noqa: F401 (the fixture)
from tests.unit.test_audit import _workdir

pytestmark = pytest.mark.integration


def _cut(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "venvdeb", "--config",
         str(root / "pipeline.toml"), "--workdir", str(root / "work"), *args],
        capture_output=True, text=True, timeout=300)


def test_the_online_service_unreachable_is_one_line_and_exit_69(checkout: Path) -> None:  # noqa: F811
    if os.geteuid() != 0:
        pytest.skip("unshare -n needs root")
    _workdir(checkout, {"selenium": "3.141.0"}, None)
    cut = _cut(checkout, "audit", "--release", RELEASE, "--online")
    assert cut.returncode == 69, cut.stderr
    [line] = [x for x in cut.stderr.splitlines() if x.startswith("venvdeb: error:")]
    assert "the advisory service osv.dev (online, through pip-audit) cannot be reached: " \
           "Failed to resolve 'api.osv.dev'" in line, cut.stderr
    assert "Traceback" not in cut.stderr, "pip-audit's traceback stays in the log"
    config = checkout / "pipeline.toml"
    config.write_text(config.read_text() + "\n[audit]\nonline = true\n")
    refused = _cut(checkout, "promote", "--release", RELEASE)
    assert refused.returncode == 1, refused.stderr
    assert "promote: audit: the advisory service osv.dev (online, through pip-audit) cannot " \
           "be reached" in refused.stderr and "bring the advisory source back" in refused.stderr
