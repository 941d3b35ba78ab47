"""The real 2026.1 wheel repository, scoped to keystone and cloudkitty.

Reaches the package index (PyPI) for the lock and the wheels; then builds the
package offline, installs it with dpkg and installs keystone from it into a
fresh venv with the network cut. Slow: a few minutes; it runs in CI.
"""
from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from debian.debfile import DebFile

from builder.cli import main
from tests.conftest import ROOT, require_tools

pytestmark = [pytest.mark.integration, pytest.mark.network, pytest.mark.slow]
RELEASE = "2026.1"
INSTALLED = Path(f"/usr/share/venvdeb/wheels/{RELEASE}")


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    require_tools("dpkg-buildpackage", "lintian", "unshare", "dpkg")
    work = tmp_path_factory.mktemp("real-2026.1")
    for stage in ("lock", "wheels", "reqdeb"):
        code = main(["--config", str(ROOT / "pipeline.toml"), "--workdir", str(work), stage,
                     "--release", RELEASE])
        assert code == 0, f"venvdeb {stage} failed: see {work}/logs/{RELEASE}/"
    [built] = sorted(work.glob(f"releases/{RELEASE}/bookworm/reqdeb/*.deb"))
    yield built


def test_repository_holds_the_projects_closure(deb: Path) -> None:
    control = DebFile(str(deb)).debcontrol()
    assert control["Package"] == f"openstack-wheels-{RELEASE}"
    assert control["Architecture"] == "amd64"
    data = DebFile(str(deb)).data.tgz()
    manifest = json.load(data.extractfile(f"./{INSTALLED.relative_to('/')}/manifest.json"))  # type: ignore[arg-type]
    versions = {m["name"]: m["version"] for m in manifest}
    assert versions["keystone"] == "29.0.2" and versions["cloudkitty"] == "24.0.0"
    assert versions["setuptools"] == "80.10.2"
    origins = {m["name"]: m["origin"] for m in manifest}
    assert origins["python-ldap"] == "built", "keystone[ldap] needs python-ldap, an sdist"
    assert len(manifest) > 100


def test_keystone_installs_from_the_installed_package_offline(deb: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("dpkg -i needs root")
    subprocess.run(["dpkg", "-i", str(deb)], check=True, capture_output=True)
    try:
        venv = tmp_path / "venv"
        subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
        env = {"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null", "HOME": str(tmp_path)}
        install = subprocess.run(
            ["unshare", "-n", str(venv / "bin/pip"), "install", "--index-url",
             f"file://{INSTALLED}/simple", "keystone[ldap]==29.0.2"],
            env=env, capture_output=True, text=True)
        assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
        version = subprocess.run([str(venv / "bin/keystone-manage"), "--version"],
                                 capture_output=True, text=True)
        assert version.returncode == 0, version.stderr
        assert "29.0.2" in version.stdout + version.stderr
        subprocess.run([str(venv / "bin/python"), "-c", "import ldap, keystone"], check=True)
    finally:
        subprocess.run(["dpkg", "--purge", f"openstack-wheels-{RELEASE}"], check=True,
                       capture_output=True)
    assert not INSTALLED.exists(), "purge removes the repository"
