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
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-2026.1")


@pytest.fixture(scope="module")
def deb(work: Path) -> Iterator[Path]:
    require_tools("dpkg-buildpackage", "lintian", "unshare", "dpkg")
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


VENV = f"/opt/venvs/keystone-{RELEASE}"


def test_keystone_venv_packages(deb: Path, work: Path, tmp_path: Path) -> None:
    """The acceptance of the venv packages: keystone 29.0.2 from the 2026.1 repository."""
    require_tools("dh_virtualenv")
    code = main(["--config", str(ROOT / "pipeline.toml"), "--workdir", str(work), "build",
                 "keystone", "--release", RELEASE])
    assert code == 0, f"venvdeb build keystone failed: see {work}/logs/{RELEASE}/build-keystone.log"
    out = work / "releases" / RELEASE / "bookworm" / "projects" / "keystone"
    debs = {DebFile(str(d)).debcontrol()["Package"]: d for d in out.glob("*.deb")}
    assert set(debs) == {f"venv-keystone-{RELEASE}", "keystone"}
    venv = DebFile(str(debs[f"venv-keystone-{RELEASE}"]))
    assert "python3 (>= 3.11~), python3 (<< 3.12)" in venv.debcontrol()["Depends"]
    assert venv.debcontrol()["Version"].startswith("90:29.0.2-")
    members = {m.name.lstrip("."): m for m in venv.data.tgz().getmembers()}
    tar = venv.data.tgz()
    for name, member in members.items():
        if name.startswith(f"{VENV}/bin/") and member.isfile():
            head = tar.extractfile(member).read(100)  # type: ignore[union-attr]
            if head.startswith(b"#!"):
                assert head.startswith(f"#!{VENV}/bin/python".encode()), name
    named = DebFile(str(debs["keystone"]))
    files = {m.name.lstrip("."): m for m in named.data.tgz().getmembers()}
    assert files["/usr/bin/keystone-manage"].linkname == f"{VENV}/bin/keystone-manage"
    assert "/etc/keystone/keystone.conf" in files and "/usr/lib/cgi-bin/keystone" in files
    conf = named.data.tgz().extractfile(files["/etc/keystone/keystone.conf"]).read().decode()  # type: ignore[union-attr]
    assert "[fernet_tokens]" in conf, "generated by oslo-config-generator from the venv"
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[f"venv-keystone-{RELEASE}"]), str(root)], check=True)
    version = subprocess.run([f"{root}{VENV}/bin/python", f"{root}{VENV}/bin/keystone-manage",
                              "--version"], capture_output=True, text=True)
    assert version.returncode == 0, version.stderr
    assert "29.0.2" in version.stdout + version.stderr
