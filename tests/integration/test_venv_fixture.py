"""Venv debs of the fixture service, really built offline with dh-virtualenv
from the fixture release's requirements package, and lintian-clean."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from debian.deb822 import Deb822
from debian.debfile import DebFile

from tests.conftest import RELEASE, Project, require_tools
from tests.integration import sbom_checks

pytestmark = pytest.mark.integration

SERVICE = f"""
[projects.fixture-service]
versions = {{ "{RELEASE}" = "1.0.0" }}
user = "fixture"

[[projects.fixture-service.packages]]
name = "fixture-service"
description = "fixture service"
creates_user = true
commands = ["fixture-manage", "fixture-service"]
directories = [
    {{ path = "/etc/fixture", owner = "root", group = "fixture", mode = "0750" }},
    {{ path = "/var/lib/fixture", owner = "fixture", group = "fixture", mode = "0750" }},
    {{ path = "/var/log/fixture", owner = "fixture", group = "adm", mode = "0750" }},
]
config_files = [
    {{ path = "/etc/fixture/fixture.conf", source = "etc/fixture.conf.sample", owner = "root", group = "fixture", mode = "0640" }},
]
units = [{{ name = "fixture-service", command = "fixture-service", description = "fixture daemon" }}]
wsgi_scripts = [{{ path = "/usr/lib/cgi-bin/fixture-service", application = "fixture_service.wsgi:application" }}]
sudoers = [{{ command = "fixture-manage", arguments = ["/etc/fixture/fixture.conf", "*"] }}]

[[projects.fixture-service.packages]]
name = "python3-fixture-service"
description = "fixture service library package, named like Debian's"
depends = ["fixture-service"]
"""
VENV = f"/opt/venvs/fixture-service-{RELEASE}"


BUILD_PINS = '["setuptools==66.1.1", "wheel==0.38.4"]'  # Debian's own wheels of them


def service_project(project: Project, projects: str = SERVICE) -> Project:
    project.write(projects=projects, extra_pins=BUILD_PINS)
    return project


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, fixture_index: Path) -> Project:
    require_tools("dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare")
    base = tmp_path_factory.mktemp("service")
    project = service_project(Project(base / "checkout", fixture_index, base / "work"))
    from venvdeb.cli import main
    for args in (["lock"], ["wheels"], ["reqdeb"], ["build", "fixture-service"]):
        code = main(["--config", str(project.config), "--workdir", str(project.workdir),
                     *args, "--release", RELEASE])
        assert code == 0, f"venvdeb {args[0]} failed: see {project.workdir}/logs"
    return project


def _debs(project: Project) -> dict[str, Path]:
    found = project.workdir.glob(f"releases/{RELEASE}/bookworm/projects/fixture-service/*.deb")
    return {DebFile(str(d)).debcontrol()["Package"]: d for d in found}


def _files(deb: Path) -> dict[str, object]:
    tar = DebFile(str(deb)).data.tgz()
    return {m.name.lstrip("."): m for m in tar.getmembers()}


def test_packages_and_their_relations(built: Project) -> None:
    debs = _debs(built)
    assert set(debs) == {f"venv-fixture-service-{RELEASE}", "fixture-service",
                         "python3-fixture-service"}
    venv = DebFile(str(debs[f"venv-fixture-service-{RELEASE}"])).debcontrol()
    assert venv["Version"] == "90:1.0.0-0+deb12u1"
    assert "python3 (>= 3.11~), python3 (<< 3.12)" in venv["Depends"]
    named = DebFile(str(debs["fixture-service"])).debcontrol()
    assert named["Architecture"] == "all"
    depends = [d.strip() for d in named["Depends"].split(",")]
    assert f"venv-fixture-service-{RELEASE} (= 90:1.0.0-0+deb12u1)" in depends and "adduser" in depends
    lib = DebFile(str(debs["python3-fixture-service"])).debcontrol()
    assert "fixture-service (= 90:1.0.0-0+deb12u1)" in lib["Depends"]


def test_venv_package_holds_the_venv_with_shebangs_into_it(built: Project) -> None:
    deb = _debs(built)[f"venv-fixture-service-{RELEASE}"]
    files = _files(deb)
    assert f"{VENV}/bin/python" in files
    assert f"{VENV}/lib/python3.11/site-packages/fixture_lib/__init__.py" in files
    assert f"{VENV}/lib/python3.11/site-packages/fixture_service/cli.py" in files
    tar = DebFile(str(deb)).data.tgz()
    scripts = 0
    for name, member in files.items():
        if name.startswith(f"{VENV}/bin/") and member.isfile():  # type: ignore[attr-defined]
            head = tar.extractfile(member).read(200)  # type: ignore[arg-type,union-attr]
            if head.startswith(b"#!"):
                scripts += 1
                first = head.split(b"\n")[0].decode()
                assert first.startswith(f"#!{VENV}/bin/python"), (name, first)
    assert scripts >= 2  # fixture-manage, fixture-service (no pip: the closure only)
    assert not [n for n in files if "/site-packages/pip/" in n], "pip stays out of the venv"
    build_path = str(built.workdir).encode()
    leaking = [name for name, member in files.items() if member.isfile()  # type: ignore[attr-defined]
               and build_path in tar.extractfile(member).read()]  # type: ignore[arg-type,union-attr]
    assert not leaking, f"the build path leaks into {leaking[:5]}"


def test_the_venv_package_ships_its_sbom(built: Project) -> None:
    """CycloneDX, valid, uncompressed in /usr/share/doc; its components are exactly the
    venv's .dist-info directories, with the hashes of the requirements package's wheels
    and the orig tarball; fixture-lib's own SBOM (PEP 770) referenced where it lands."""
    out = built.workdir / "releases" / RELEASE / "bookworm"
    [reqdeb] = sorted(out.glob("reqdeb/*.deb"))
    [orig] = sorted(out.glob("projects/fixture-service/*.orig.tar.gz"))
    doc = sbom_checks.check(_debs(built)[f"venv-fixture-service-{RELEASE}"], reqdeb, orig,
                            VENV, RELEASE)
    by_name = {c["name"]: c for c in doc["components"]}
    assert set(by_name) == {"fixture-service", "fixture-lib"}
    assert sorted(r["type"] for r in by_name["fixture-lib"]["externalReferences"]) == \
        ["bom", "distribution"]


def test_named_package_links_units_config_and_user(built: Project) -> None:
    deb = _debs(built)["fixture-service"]
    files = _files(deb)
    link = files["/usr/bin/fixture-manage"]
    assert link.issym() and link.linkname == f"{VENV}/bin/fixture-manage"  # type: ignore[attr-defined]
    assert "/etc/fixture/fixture.conf" in files
    assert "/usr/lib/cgi-bin/fixture-service" in files
    assert files["/usr/lib/cgi-bin/fixture-service"].mode == 0o755  # type: ignore[attr-defined]
    assert files["/etc/sudoers.d/fixture-service"].mode == 0o440  # type: ignore[attr-defined]
    unit_path = "/lib/systemd/system/fixture-service.service"
    tar = DebFile(str(deb)).data.tgz()
    unit = tar.extractfile(files[unit_path]).read().decode()  # type: ignore[arg-type,union-attr]
    assert f"ExecStart={VENV}/bin/fixture-service" in unit and "User=fixture" in unit
    sudoers = tar.extractfile(files["/etc/sudoers.d/fixture-service"]).read().decode()  # type: ignore[arg-type,union-attr]
    assert f'secure_path="{VENV}/bin:' in sudoers
    assert f"fixture ALL = (root) NOPASSWD: {VENV}/bin/fixture-manage /etc/fixture/fixture.conf *" \
        in sudoers.splitlines()
    control = DebFile(str(deb)).control
    assert "/etc/fixture/fixture.conf" in control.get_content("conffiles").decode()  # type: ignore[union-attr]
    for script in ("postinst", "postrm"):
        text = control.get_content(script).decode()  # type: ignore[union-attr]
        check = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    postinst = control.get_content("postinst").decode()  # type: ignore[union-attr]
    assert "adduser --quiet --system --ingroup fixture" in postinst
    assert "set_file_perms root fixture 0640 /etc/fixture/fixture.conf" in postinst
    assert "set_dir_perms root fixture 0750 /etc/fixture" in postinst
    assert "rm -rf /var/lib/fixture" in control.get_content("postrm").decode()  # type: ignore[union-attr]


def test_the_linked_command_runs_from_the_unpacked_venv(built: Project, tmp_path: Path) -> None:
    deb = _debs(built)[f"venv-fixture-service-{RELEASE}"]
    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    run = subprocess.run([f"{root}{VENV}/bin/python", "-c",
                          "import fixture_service.cli as c; c.manage()"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "fixture-manage 1.0.0 with fixture-lib 1.0.0" in run.stdout


def test_source_package_is_quilt_with_orig_tarball(built: Project) -> None:
    [dsc] = built.workdir.glob(f"releases/{RELEASE}/bookworm/projects/fixture-service/*.dsc")
    fields = Deb822(dsc.read_text())
    assert fields["Format"] == "3.0 (quilt)"
    assert fields["Build-Depends"].split(",")[-1].strip() == f"openstack-wheels-{RELEASE}"
    assert "fixture-service_1.0.0.orig.tar.gz" in fields["Files"]


def test_rerun_is_up_to_date(built: Project, capsys: pytest.CaptureFixture[str]) -> None:
    run = built.venvdeb("build", "fixture-service", "--release", RELEASE, capsys=capsys)
    assert run.code == 0, run.err
    assert "build: up to date" in run.out


def test_sbuild_gives_the_same_bytes_as_local(built: Project, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    require_tools("sbuild", "mmdebstrap")
    other = Project(built.root, built.index, tmp_path / "work")
    shutil.copytree(built.workdir, other.workdir, ignore=shutil.ignore_patterns("*.deb"))
    shutil.copytree(built.workdir / "releases" / RELEASE / "bookworm" / "reqdeb",
                    other.workdir / "releases" / RELEASE / "bookworm" / "reqdeb",
                    dirs_exist_ok=True)
    run = other.venvdeb("build", "fixture-service", "--release", RELEASE, "--builder", "sbuild",
                        capsys=capsys)
    assert run.code == 0, run.err
    local, chroot = _debs(built), _debs(other)
    assert set(local) == set(chroot)
    for package, deb in local.items():
        assert chroot[package].read_bytes() == deb.read_bytes(), package


def test_check_reproducible_builds_twice_and_compares(
        built: Project, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = Project(built.root, built.index, tmp_path / "work")
    shutil.copytree(built.workdir, other.workdir)
    run = other.venvdeb("build", "fixture-service", "--release", RELEASE, "--check-reproducible",
                        "--no-lintian", capsys=capsys)
    assert run.code == 0, run.err
    assert "reproducible: both builds gave byte-identical packages" in run.err
    for package, deb in _debs(built).items():
        assert _debs(other)[package].read_bytes() == deb.read_bytes(), package
