"""keystone for real: the 2025.1 (bookworm) and 2026.1 (bookworm and trixie) pipelines
into one signed repository, then what operators do with it on clean systems.

Reaches PyPI (lock, wheels) and the Debian mirror (chroots). One run of ``venvdeb
pipeline keystone --release 2025.1 --release 2026.1 --promote``, started in the
background when the session's collection ends (tests/conftest.py: it runs beside the
other modules' tests; the tests that need it run last); then: the requirements package
installs keystone offline; the venv packages' contents; a node configured with the
printed lines; the upgrade 2025.1 -> 2026.1 keeping a local conffile edit, and the
downgrade back, on a booted node; a booted bookworm node dist-upgraded to trixie with
keystone running;
an operator's puppet manifest for Debian's keystone applied unchanged on two booted
nodes, one with Debian's keystone (the control), one with ours; then `venvdeb parity
keystone cloudkitty` against Debian's own packages, on two booted nodes. Slow; it runs
in CI.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from debian.debfile import DebFile

import venvdeb
from tests.conftest import REAL_PIPELINE, ROOT, require_tools
from tests.integration import sbom_checks
from venvdeb.core import config as config_mod
from venvdeb.core import images, runner
from venvdeb.core.target import target
from venvdeb.core.workdir import Workdir, shared_cache
from venvdeb.qa import chroot, node
from venvdeb.stages import publish

pytestmark = [pytest.mark.integration, pytest.mark.network, pytest.mark.slow]
RELEASE = "2026.1"
OLD = "2025.1"
INSTALLED = Path(f"/usr/share/venvdeb/wheels/{RELEASE}")


def start_pipeline(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """The whole job for keystone, 2025.1 (bookworm) and 2026.1 (bookworm and trixie), up
    to production, started in the background when the session's collection ends
    (tests/conftest.py), in a fresh workdir; ``VENVDEB_TEST_WORKDIR`` reuses one (the
    pipeline then reruns in it). Its output goes to ``<workdir>.out`` and ``.err``."""
    reuse = os.environ.get("VENVDEB_TEST_WORKDIR")
    path = Path(reuse) if reuse else base / "real"
    path.mkdir(parents=True, exist_ok=True)
    # bound into nodes whose root is a mapped id: it reads the repository as anyone
    # may (pytest makes its directories 0700; keys/ inside stays 0700)
    path.chmod(0o755)
    with path.with_suffix(".out").open("wb") as out, path.with_suffix(".err").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "venvdeb", "--config", str(ROOT / "pipeline.toml"),
             "--workdir", str(path), "pipeline", "keystone", "--release", OLD, "--release",
             RELEASE, "--promote"], stdout=out, stderr=err, cwd=ROOT, start_new_session=True)
    return proc, path


@pytest.fixture(scope="module")
def work(request: pytest.FixtureRequest) -> Path:
    """The workdir of the pipeline started with the session."""
    started = request.config.stash.get(REAL_PIPELINE, None)
    assert started is not None, "the session did not start the pipeline (tests/conftest.py)"
    return started[1]


@pytest.fixture(scope="module")
def pipeline(request: pytest.FixtureRequest, work: Path) -> str:
    """The pipeline's output, once it has finished."""
    require_tools("dpkg-buildpackage", "dh_virtualenv", "lintian", "unshare", "dpkg",
                  "mmdebstrap", "reprepro", "gpg", "gpgv", "apt-ftparchive")
    proc, _ = request.config.stash[REAL_PIPELINE]
    code = proc.wait()
    assert code == 0, work.with_suffix(".err").read_text(errors="replace")[-4000:]
    return work.with_suffix(".out").read_text()


@pytest.fixture(scope="module")
def deb(work: Path, pipeline: str) -> Path:
    [built] = sorted(work.glob(f"releases/{RELEASE}/bookworm/reqdeb/*.deb"))
    return built


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


def test_keystone_ships_an_sbom_that_matches_its_venv(deb: Path, work: Path) -> None:
    """venv-keystone-2026.1's SBOM: valid CycloneDX 1.6; its components exactly the
    venv's .dist-info directories (names and versions), each wheel's sha256 that of
    the file in openstack-wheels-2026.1, keystone's that of its orig tarball."""
    out = work / "releases" / RELEASE / "bookworm" / "projects" / "keystone"
    [venv_deb] = sorted(out.glob(f"venv-keystone-{RELEASE}_*.deb"))
    [orig] = sorted(out.glob("keystone_*.orig.tar.gz"))
    doc = sbom_checks.check(venv_deb, deb, orig, VENV, RELEASE)
    by_name = {c["name"]: c for c in doc["components"]}
    assert by_name["keystone"]["version"] == "29.0.2" and len(by_name) > 100
    assert "pip" not in by_name, "the venv holds the closure and keystone only"
    licensed = [c for c in doc["components"] if c.get("licenses")]
    assert len(licensed) >= 0.9 * len(by_name), "nearly every wheel declares its license"


# --- on clean nodes ---------------------------------------------------------------------------

MIRROR = "http://deb.debian.org/debian"


def _config_and_work(work: Path) -> tuple[config_mod.Config, Workdir]:
    return config_mod.load(ROOT / "pipeline.toml"), Workdir(work)


def _node_lines(work: Path, release: str, distribution: str | None = None) -> list[str]:
    cfg, wd = _config_and_work(work)
    return publish.operator_lines(cfg, wd, target(cfg, release, distribution), "production",
                                  ["keystone"])


TOKEN_REQUEST = """
import json, urllib.request
body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
    "name": "admin", "domain": {"id": "default"}, "password": "admin-secret"}}},
    "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
request = urllib.request.Request("http://127.0.0.1:5000/v3/auth/tokens",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
with urllib.request.urlopen(request, timeout=30) as answer:
    print("status", answer.status, "token", bool(answer.headers["X-Subject-Token"]))
"""


OLD_VENV = f"/opt/venvs/keystone-{OLD}"
#: apt on the node keeps the operator's edited conffiles (what an upgrade prompts for)
CONFOLD = "-o Dpkg::Options::=--force-confold"


#: what an operator does after installing keystone (puppet's keystone::db::sync and
#: ::bootstrap do it): a database, keys, the admin, a restart
KEYSTONE_SETUP = "\n".join([
    "sed -i 's|^#connection = <None>|connection = sqlite:////var/lib/keystone/"
    "keystone.db|' /etc/keystone/keystone.conf",
    "su -s /bin/sh keystone -c 'keystone-manage db_sync'",
    "keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone",
    "keystone-manage credential_setup --keystone-user keystone --keystone-group keystone",
    "su -s /bin/sh keystone -c 'keystone-manage bootstrap --bootstrap-password "
    "admin-secret --bootstrap-public-url http://127.0.0.1:5000/v3'",
    "systemctl restart keystone",
])


def _token(booted: node.Node, python: str) -> str:
    """A token request until uWSGI's workers have loaded the application (30 s)."""
    answer = ""
    for _ in range(30):
        answer = booted.run([python, "-c", TOKEN_REQUEST], check=False,
                            what="token request").output
        if "status 201" in answer:
            break
        booted.run(["sleep", "1"])
    return answer


def _serving(booted: node.Node) -> list[str]:
    """keystone.service's main process: its command line, checked to run as keystone."""
    main = booted.run(["systemctl", "show", "-P", "MainPID", "keystone"]).output.strip()
    assert main != "0", booted.run(["systemctl", "status", "keystone"], check=False).output
    assert booted.run(["stat", "-c", "%U", f"/proc/{main}"]).output.strip() == "keystone"
    return booted.run(["cat", f"/proc/{main}/cmdline"]).output.split("\0")


def _suite(release: str) -> str:
    return (f"sed -i 's/^Suites: .*/Suites: bookworm-{release}/' "
            "/etc/apt/sources.list.d/venvdeb.sources")


def test_keystone_service_on_a_booted_node_through_a_release_upgrade(
        pipeline: str, work: Path, tmp_path: Path) -> None:
    """A node set up with the printed lines for 2025.1, systemd as PID 1: `apt-get install
    keystone` starts keystone.service under Debian's uWSGI on the 2025.1 venv; after db_sync
    and bootstrap it issues tokens. The release upgrade as Debian documents it (switch the
    suite, `apt-get install keystone`, `keystone-manage db_sync`) restarts it into the 2026.1
    venv, keeping the operator's conffile edit; tokens again; the 2025.1 venv is purged while
    it runs. Then the downgrade back, and a conffile swapped for a link is not followed."""
    log = tmp_path / "node.log"
    image = images.tarball("minbase", "bookworm", "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=node.NODE_PACKAGES, what="mmdebstrap (node)")
    with chroot.session(image, log, [chroot.Bind(work, str(work))],
                        apt_cache=shared_cache() / "apt-archives") as box:
        # the node has no network once booted: what both releases need is fetched first
        lines = _node_lines(work, OLD)
        _sh(box, "\n".join([*(line for line in lines if not line.startswith("apt-get update &&")),
                            _suite(RELEASE), "apt-get update",
                            "apt-get install -y --download-only keystone",
                            _suite(OLD), "apt-get update",
                            "apt-get install -y --download-only keystone"]))
        with node.booted(box, log) as booted:
            assert booted.state() == "running"
            # the printed line, as the operator runs it (apt-get update: our file:// suite)
            installed = booted.sh(f"{lines[-1]} -y", what="printed install line", check=False)
            assert installed.returncode == 0, installed.output[-3000:]
            assert booted.run(["systemctl", "is-enabled", "keystone"]).output.strip() == "enabled"
            assert booted.run(["systemctl", "is-active", "keystone"], check=False
                              ).output.strip() == "active", log.read_text()[-3000:]
            args = _serving(booted)
            assert args[0] == "/usr/bin/uwsgi_python311" and f"--virtualenv{OLD_VENV}" in \
                "".join(args), args
            done = booted.sh(KEYSTONE_SETUP, what="db_sync, bootstrap, restart", check=False)
            assert done.returncode == 0, done.output[-3000:]
            assert "status 201 token True" in _token(booted, f"{OLD_VENV}/bin/python")
            old_version = booted.run(["dpkg-query", "-W", "-f", "${Version}", "keystone"]
                                     ).output.strip()
            assert old_version.startswith("90:27.0.2-"), old_version

            # the release upgrade, running: the operator's keystone.conf edit stays
            upgrade = booted.sh(f"{_suite(RELEASE)} && apt-get update && apt-get install -y "
                                f"{CONFOLD} keystone", what="the release upgrade", check=False)
            assert upgrade.returncode == 0, upgrade.output[-3000:]
            args = _serving(booted)
            assert f"--virtualenv{VENV}" in "".join(args), "restarted into the 2026.1 venv"
            conf = box.path("/etc/keystone/keystone.conf").read_text()
            assert "connection = sqlite:////var/lib/keystone/keystone.db" in conf
            assert box.path("/etc/keystone/keystone.conf.dpkg-dist").exists()
            synced = booted.sh("su -s /bin/sh keystone -c 'keystone-manage db_sync'",
                               what="db_sync 2026.1", check=False)
            assert synced.returncode == 0, synced.output[-3000:]
            assert "status 201 token True" in _token(booted, f"{VENV}/bin/python")
            # the old venv goes while the service runs on the new one
            purge = booted.run(["apt-get", "purge", "-y", f"venv-keystone-{OLD}"], check=False)
            assert purge.returncode == 0, purge.output[-3000:]
            assert not box.path(OLD_VENV).exists()
            assert booted.run(["systemctl", "is-active", "keystone"], check=False
                              ).output.strip() == "active"
            assert "status 201 token True" in _token(booted, f"{VENV}/bin/python")
            assert booted.run(["readlink", "-f", "/usr/bin/keystone-manage", "/usr/bin/"
                               "keystone-status"]).output.split() == [
                f"{VENV}/bin/keystone-manage", f"{VENV}/bin/keystone-status"]
            wsgi = box.path("/usr/lib/cgi-bin/keystone").read_text()
            assert VENV in wsgi and OLD_VENV not in wsgi

            # and back: the 2025.1 suite, an explicit downgrade, the edit still there
            down = booted.sh(f"{_suite(OLD)} && apt-get update && apt-get install -y {CONFOLD} "
                             f"--allow-downgrades keystone={old_version}", what="downgrade",
                             check=False)
            assert down.returncode == 0, down.output[-3000:]
            assert booted.run(["readlink", "-f", "/usr/bin/keystone-manage"]
                              ).output.strip() == f"{OLD_VENV}/bin/keystone-manage"
            assert f"--virtualenv{OLD_VENV}" in "".join(_serving(booted))
            assert "connection = sqlite" in box.path("/etc/keystone/keystone.conf").read_text()
            # a compromised service swaps its conffile for a link to a root-only file; the
            # next configure (here a reinstall) must not hand the link's target over
            assert booted.run(["stat", "-c", "%U:%G %a", "/etc/keystone",
                               "/etc/keystone/keystone.conf"]).output.split("\n")[:2] == \
                ["root:keystone 750", "root:keystone 640"]
            out = booted.sh("printf secret > /etc/venvdeb-target && chmod 0600 "
                            "/etc/venvdeb-target && mv /etc/keystone/keystone.conf "
                            "/etc/keystone/keystone.conf.real && ln -s /etc/venvdeb-target "
                            f"/etc/keystone/keystone.conf && apt-get install -y {CONFOLD} "
                            "--reinstall --allow-downgrades keystone 2>&1", what="reinstall")
            assert "/etc/keystone/keystone.conf is a symbolic link" in out.output
            assert booted.run(["stat", "-c", "%U:%G %a", "/etc/venvdeb-target"]
                              ).output.strip() == "root:root 600"
            pid = booted.pid
        assert not Path(f"/proc/{pid}").exists(), "the node is powered off"


@contextmanager
def _node(work: Path, log: Path, packages: tuple[str, ...] = ()) -> Iterator[chroot.Chroot]:
    image = images.tarball("minbase", "bookworm", "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=packages)
    with chroot.session(image, log, [chroot.Bind(work, str(work))],
                        apt_cache=shared_cache() / "apt-archives") as box:
        box.put("/etc/apt/apt.conf.d/90yes", 'APT::Get::Assume-Yes "true";\n')
        yield box


def _sh(box: chroot.Chroot, script: str, *, bounded: bool = True) -> str:
    """An operator's shell on the node: with the network (apt, the index)."""
    result = box.sh(script, what="test script", check=False, network=True, bounded=bounded)
    assert result.returncode == 0, result.output[-4000:]
    return result.output


def test_pipeline_printed_the_node_lines(pipeline: str, work: Path) -> None:
    for dist in ("bookworm", TRIXIE):
        lines = _node_lines(work, RELEASE, dist)
        assert f"Suites: {dist}-{RELEASE}" in lines
        for line in lines:
            assert "  " + line in pipeline.splitlines()
    assert "keystone" in pipeline and "passed" in pipeline


TRIXIE = "trixie"


def test_a_clean_trixie_node_installs_keystone_from_the_printed_lines(
        pipeline: str, work: Path, tmp_path: Path) -> None:
    """The lines the pipeline printed for trixie, as an operator runs them on a clean
    trixie system: keystone 2026.1 from trixie-2026.1, its venv on Python 3.13."""
    log = tmp_path / "node.log"
    image = images.tarball("minbase", TRIXIE, "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=node.NODE_PACKAGES, what="mmdebstrap (trixie node)")
    lines = _node_lines(work, RELEASE, TRIXIE)
    with chroot.session(image, log, [chroot.Bind(work, str(work))],
                        apt_cache=shared_cache() / "apt-archives") as box:
        _sh(box, "\n".join([*lines[:-1], f"{lines[-1]} -y"]))
        assert box.run(["keystone-manage", "--version"]).output.strip() == "29.0.2"
        assert box.run([f"{VENV}/bin/python", "-c", "import sys; print('%d.%d' % "
                        "sys.version_info[:2])"]).output.strip() == "3.13"
        version = box.run(["dpkg-query", "-W", "-f", "${Version}", "keystone"]).output
        assert version.startswith("90:29.0.2-0+deb13u"), version
#: apt on the node while it is still bookworm: trixie's suites are known (fetched before
#: it boots, offline after) but never chosen until the operator switches
NOT_YET = f"""Package: *
Pin: release n={TRIXIE}
Pin-Priority: -10

Package: *
Pin: release n={TRIXIE}-{RELEASE}
Pin-Priority: -10
"""


def _stanza(lines: list[str]) -> str:
    """The .sources stanza of printed node lines (between the here-document's markers)."""
    start = next(i for i, line in enumerate(lines) if line.startswith("cat > "))
    end = lines.index("EOF", start)
    return "\n".join(lines[start + 1:end]) + "\n"


def test_a_bookworm_node_with_keystone_dist_upgrades_to_trixie(pipeline: str, work: Path,
                                                               tmp_path: Path) -> None:
    """keystone 2026.1 from bookworm-2026.1 on a booted bookworm node, its database set up
    and tokens issued; then Debian's release notes' upgrade: every bookworm suite switched
    to trixie (Debian's and ours: trixie-2026.1), `apt update`, `apt upgrade
    --without-new-pkgs`, `apt full-upgrade`. keystone ends on our trixie package, its venv
    on Python 3.13, 29.0.2, the operator's keystone.conf kept, nothing of ours broken or
    held, and keystone.service active on the new venv, issuing tokens. The node has no
    network once booted: what the upgrade needs is fetched before, by the same install
    and upgrade rehearsed in a throwaway chroot up to apt's download (the apt cache is
    shared)."""
    log = tmp_path / "node.log"
    image = images.tarball("minbase", "bookworm", "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=node.NODE_PACKAGES, what="mmdebstrap (node)")
    lines = _node_lines(work, RELEASE, "bookworm")
    trixie_lines = _node_lines(work, RELEASE, TRIXIE)
    configure = [line for line in lines if not line.startswith("apt-get update &&")]
    # what the upgrade will fetch, exactly: the same upgrade in a throwaway chroot of the
    # same image, with the network, up to apt's download (into the shared apt cache)
    with chroot.session(image, log, [chroot.Bind(work, str(work))],
                        apt_cache=shared_cache() / "apt-archives") as rehearsal:
        _sh(rehearsal, "\n".join([
            *configure, "apt-get update", "apt-get install -y keystone",
            "sed -i 's/bookworm/trixie/g' /etc/apt/sources.list "
            "/etc/apt/sources.list.d/venvdeb.sources",
            "apt-get update", "apt-get full-upgrade -y --download-only"]))
    with chroot.session(image, log, [chroot.Bind(work, str(work))],
                        apt_cache=shared_cache() / "apt-archives") as box:
        box.put("/etc/apt/sources.list.d/debian-trixie.sources",
                f"Types: deb\nURIs: {MIRROR}\nSuites: {TRIXIE}\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n")
        box.put("/etc/apt/sources.list.d/venvdeb-trixie.sources", _stanza(trixie_lines))
        box.put("/etc/apt/preferences.d/not-yet", NOT_YET)
        # trixie's lists beside bookworm's (pinned away until the switch), and the
        # bookworm install's packages; the upgrade's came with the apt cache
        _sh(box, "\n".join([*configure, "apt-get update",
                            "apt-get install -y --download-only keystone"]))
        with node.booted(box, log) as booted:
            installed = booted.sh("apt-get install -y keystone", what="install", check=False)
            assert installed.returncode == 0, installed.output[-3000:]
            before = booted.run(["dpkg-query", "-W", "-f", "${Version}", "keystone"]
                                ).output.strip()
            assert "+deb12u" in before, before
            done = booted.sh(KEYSTONE_SETUP, what="db_sync, bootstrap, restart", check=False)
            assert done.returncode == 0, done.output[-3000:]
            assert "status 201 token True" in _token(booted, f"{VENV}/bin/python")

            # the release notes' way: every bookworm suite becomes trixie's
            upgrade = booted.sh("\n".join([
                "rm /etc/apt/preferences.d/not-yet /etc/apt/sources.list.d/debian-trixie.sources"
                " /etc/apt/sources.list.d/venvdeb-trixie.sources",
                "sed -i 's/bookworm/trixie/g' /etc/apt/sources.list "
                "/etc/apt/sources.list.d/venvdeb.sources",
                "apt-get update || true",  # offline: the lists fetched before boot stay
                f"apt-get upgrade -y {CONFOLD} --without-new-pkgs",
                f"apt-get full-upgrade -y {CONFOLD}"]), what="dist-upgrade", check=False)
            assert upgrade.returncode == 0, upgrade.output[-4000:]
            assert "VERSION_CODENAME=trixie" in box.path("/etc/os-release").read_text()
            after = booted.run(["dpkg-query", "-W", "-f", "${Version}\n", "keystone",
                                f"venv-keystone-{RELEASE}"]).output.split()
            assert all("+deb13u" in v for v in after) and len(after) == 2, after
            python = booted.run([f"{VENV}/bin/python", "-c", "import sys; "
                                 "print('%d.%d' % sys.version_info[:2])"]).output.strip()
            assert python == "3.13"
            assert booted.run(["keystone-manage", "--version"]).output.strip() == "29.0.2"
            conf = box.path("/etc/keystone/keystone.conf").read_text()
            assert "connection = sqlite:////var/lib/keystone/keystone.db" in conf
            assert booted.run(["dpkg", "--audit"]).output.strip() == ""
            assert booted.run(["apt-mark", "showhold"]).output.strip() == ""
            assert booted.run(["apt-get", "check"], check=False).returncode == 0
            states = booted.run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}${Package}\n",
                                 "keystone", f"venv-keystone-{RELEASE}"]).output.split("\n")
            assert [s for s in states if s and not s.startswith("ii ")] == [], states
            assert booted.run(["systemctl", "is-active", "keystone"], check=False
                              ).output.strip() == "active", log.read_text()[-3000:]
            args = _serving(booted)
            assert args[0] == "/usr/bin/uwsgi_python3" and f"--virtualenv{VENV}" in \
                "".join(args), args
            assert "status 201 token True" in _token(booted, f"{VENV}/bin/python")


def test_a_worker_installs_venvdeb_with_apt_and_locks_like_the_checkout(pipeline: str,
                                                                        work: Path,
                                                                        tmp_path: Path) -> None:
    """The venvdeb package (stdeb) from the signed repository: its vendored pip-tools locks
    2026.1 to the same pins as the checkout's .venv did."""
    assert re.search(rf"^venvdeb +{re.escape(venvdeb.__version__)}\+deb12u\d+\.[0-9a-f]{{8}}-1 "
                     r".*passed +passed$", pipeline, re.M), \
        "the pipeline's table lists the venvdeb package, checked"
    log = tmp_path / "worker.log"
    with _node(work, log) as box:
        # the keyring and sources lines only: a worker installs venvdeb, not keystone
        _sh(box, "\n".join([*_node_lines(work, RELEASE)[:-1], "apt-get update"]))
        # its Recommends are the sdist build dependencies: locking needs them too
        # (libvirt-python asks pkg-config for its build requirements)
        _sh(box, "apt-get install --no-install-recommends venvdeb $(apt-cache show venvdeb | "
                 "sed -n 's/^Recommends: //p' | tr -d ,)")
        assert "usage: venvdeb" in _sh(box, "venvdeb --help")
        # the code a buildbot master checks before it lets a worker build: the checkout's
        assert f"(code {venvdeb.code_digest()})" in _sh(box, "venvdeb --version")
        # this machine's CA bundle: the network here may re-sign PyPI's TLS with its own CA
        host_ca = Path("/etc/ssl/certs/ca-certificates.crt")
        if host_ca.exists():
            box.put(str(host_ca), host_ca.read_text())
        # a worker makes namespaces of its own (its sandbox): root keeps every capability
        _sh(box, f"venvdeb --workdir /tmp/w lock --release {RELEASE}", bounded=False)
        theirs = box.path(f"/tmp/w/releases/{RELEASE}/bookworm/lock/lock.txt").read_text()
    ours = (work / "releases" / RELEASE / "bookworm" / "lock" / "lock.txt").read_text()

    def pins(text: str) -> set[str]:
        return {line.split()[0] for line in text.splitlines() if "==" in line.split(" ")[0]}

    assert pins(theirs) == pins(ours) and len(pins(ours)) > 100


ROOTWRAP_TEST_FILTER = "[Filters]\nid: CommandFilter, id, root\n"


def test_nova_common_sudo_runs_rootwrap_only_with_its_own_config(pipeline: str, work: Path,
                                                                   tmp_path: Path) -> None:
    """nova's packages (built here without lintian: only the sudo rules are under test) in a
    clean chroot with sudo: the nova user may run rootwrap with /etc/nova/rootwrap.conf and
    nothing else; nova cannot replace that file."""
    result = subprocess.run(
        [sys.executable, "-m", "venvdeb", "--config", str(ROOT / "pipeline.toml"), "--workdir",
         str(work), "build", "nova", "--release", RELEASE, "--no-lintian"],
        capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-4000:]
    debs = sorted(str(d) for d in work.glob(f"releases/{RELEASE}/bookworm/**/*.deb")
                  if d.name.split("_")[0] in ("venv-nova-2026.1", "python3-nova", "nova-common"))
    assert len(debs) == 3, debs
    log = tmp_path / "node.log"
    with _node(work, log) as box:
        _sh(box, f"apt-get update && apt-get install --no-install-recommends sudo {' '.join(debs)}")
        _sh(box, "visudo -cf /etc/sudoers.d/nova-common && usermod -s /bin/sh nova")
        assert _sh(box, "stat -c '%U:%G %a' /etc/nova /etc/nova/rootwrap.conf /etc/nova/rootwrap.d"
                   ).split("\n")[:3] == ["root:nova 750", "root:root 644", "root:root 755"]
        # positive control: a filter the operator (root) adds, run through sudo and rootwrap
        box.put("/etc/nova/rootwrap.d/venvdeb-test.filters", ROOTWRAP_TEST_FILTER)
        allowed = box.run(["su", "nova", "-c",
                           "sudo -n nova-rootwrap /etc/nova/rootwrap.conf id -u"], check=False)
        assert allowed.returncode == 0 and allowed.output.strip().splitlines()[-1] == "0", \
            allowed.output
        # nova's own rootwrap config: refused by sudo itself
        box.put("/tmp/evil.conf", "[DEFAULT]\nfilters_path=/tmp\n")
        refused = box.run(["su", "nova", "-c", "sudo -n nova-rootwrap /tmp/evil.conf id"],
                          check=False)
        assert refused.returncode != 0, refused.output
        assert "password is required" in refused.output or "not allowed" in refused.output, \
            refused.output
        # nor can nova put a filter or config of its own where rootwrap reads
        touch = box.run(["su", "nova", "-c", "touch /etc/nova/rootwrap.d/evil.filters"],
                        check=False)
        assert touch.returncode != 0 and "Permission denied" in touch.output, touch.output


# --- puppet, unchanged, on booted nodes (issue 13) ---------------------------------------------

#: What an operator writes for Debian's keystone with Debian's puppet modules, every keystone
#: default left alone (manage_service, enabled, sync_db): applied byte for byte on both nodes.
PUPPET_MANIFEST = """\
class { 'mysql::server': }
class { 'keystone::db::mysql': password => 'keystone-db-secret' }
class { 'keystone::db':
  database_connection => 'mysql+pymysql://keystone:keystone-db-secret@127.0.0.1/keystone',
}
class { 'keystone': }
class { 'keystone::wsgi::uwsgi': }
class { 'keystone::bootstrap':
  password     => 'admin-secret',
  public_url   => 'http://127.0.0.1:5000',
  internal_url => 'http://127.0.0.1:5000',
  admin_url    => 'http://127.0.0.1:5000',
}
"""
#: The node's image: systemd, puppet 7 and Debian's modules (with the modules they depend on),
#: and the Python clients and drivers the manifest has apt install (below), which neither
#: keystone package provides: in the cached image once, not byte-compiled on both nodes.
PUPPET_IMAGE = (*node.NODE_PACKAGES, "puppet", "puppet-module-keystone",
                "puppet-module-puppetlabs-mysql", "python3-mysqldb", "python3-pymysql",
                "python3-keystoneclient", "python3-openstackclient")
#: What the manifest has apt install, fetched before the node boots (it has no network then):
#: mariadb-server (mysql::server); python3-mysqldb (mysql::bindings, which
#: keystone::db::mysql includes); python3-pymysql (oslo::db's backend package for a
#: mysql+pymysql:// connection); keystone; python3-keystoneclient (keystone::client);
#: python3-openstackclient (the keystone_* types run `openstack` against the endpoint).
PUPPET_INSTALLS = ("mariadb-server", "python3-mysqldb", "python3-pymysql", "keystone",
                   "python3-keystoneclient", "python3-openstackclient")
#: Added to both nodes' runs, for Debian's modules on bookworm whatever the keystone package
#: (seen alike on both nodes without them: each second run ended with exit 2):
#: - puppetlabs-mysql 8.1.0 creates the database as utf8 / utf8_general_ci, which MariaDB
#:   10.11 reports as utf8mb3 / utf8mb3_general_ci: Mysql_database "changed" on every run,
#:   and with it db_sync, bootstrap and a restart of keystone;
#: - keystone_user's password check (puppet-keystone 21.0.0) asks `openstack configuration
#:   show` for its auth URL but looks the answer up under a String key in a hash of Symbols:
#:   the URL is empty, `openstack token issue` fails ("Missing value auth-url required for
#:   auth plugin password"), which the provider takes as a wrong password and resets it on
#:   every run. It takes $OS_AUTH_URL first: the run's environment gives it.
PUPPET_BOTH = """\
Mysql_database <| |> { charset => 'utf8mb3', collate => 'utf8mb3_general_ci' }
"""
PUPPET_APPLY = ("env", "OS_AUTH_URL=http://127.0.0.1:5000", "puppet", "apply",
                "--modulepath=/usr/share/puppet/modules", "--detailed-exitcodes", "/root/site.pp")


@dataclass(frozen=True)
class PuppetNode:
    """What two `puppet apply` runs of ``PUPPET_MANIFEST`` left on a booted node."""
    first: runner.Result
    second: runner.Result
    token: str  # TOKEN_REQUEST's output
    active: str  # systemctl is-active keystone
    main_command: tuple[str, ...]  # keystone.service's main process
    version: str  # of the package named keystone


def _puppet_on_a_booted_node(log: Path, apt_lines: list[str],
                              binds: tuple[chroot.Bind, ...] = ()) -> PuppetNode:
    """A node booted once: ``apt_lines`` and the downloads with the network, then, booted,
    the manifest applied twice and a token asked for."""
    image = images.tarball("minbase", "bookworm", "amd64", MIRROR, shared_cache() / "chroot",
                           log, packages=PUPPET_IMAGE, what="mmdebstrap (puppet node)")
    with chroot.session(image, log, binds, apt_cache=shared_cache() / "apt-archives") as box:
        _sh(box, "\n".join([*apt_lines, "apt-get update",
                            f"apt-get install -y --download-only {' '.join(PUPPET_INSTALLS)}"]))
        box.put("/root/site.pp", PUPPET_MANIFEST + PUPPET_BOTH)
        with node.booted(box, log) as booted:
            assert booted.state() == "running"
            first = booted.run(PUPPET_APPLY, check=False, what="puppet apply (first)")
            second = booted.run(PUPPET_APPLY, check=False, what="puppet apply (second)")
            token = ""
            for _ in range(30):  # uWSGI loads the application in each worker
                token = booted.run(["/usr/bin/python3", "-c", TOKEN_REQUEST], check=False,
                                   what="token request").output
                if "status 201" in token:
                    break
                booted.run(["sleep", "1"])
            active = booted.run(["systemctl", "is-active", "keystone"], check=False).output
            main = booted.run(["systemctl", "show", "-P", "MainPID", "keystone"]).output.strip()
            command = booted.run(["cat", f"/proc/{main}/cmdline"], check=False).output
            version = booted.run(["dpkg-query", "-W", "-f", "${Version}", "keystone"],
                                 check=False).output
    return PuppetNode(first, second, token, active.strip(),
                      tuple(a for a in command.split("\0") if a), version.strip())


def _assert_applied_unchanged(ran: PuppetNode) -> None:
    """First run: changes, no failure (exit 2); second: nothing to change (exit 0); the
    bootstrapped endpoint issues a token; keystone.service is active."""
    assert ran.first.returncode == 2, ran.first.output[-6000:]
    errors = [line for line in ran.first.output.splitlines() if "Error:" in line]
    assert not errors, errors
    assert ran.second.returncode == 0, ran.second.output[-4000:]
    assert "status 201 token True" in ran.token, ran.token[-2000:]
    assert ran.active == "active"


def test_puppet_keystone_manifest_with_debians_keystone(tmp_path: Path) -> None:
    """The control: the manifest on a node with Debian's keystone, as Debian ships it."""
    ran = _puppet_on_a_booted_node(tmp_path / "puppet-debian.log", [])
    assert ran.version.startswith("2:22."), ran.version
    _assert_applied_unchanged(ran)


def test_puppet_keystone_manifest_with_ours(pipeline: str, work: Path, tmp_path: Path) -> None:
    """The same manifest, byte for byte, on a node with our repository's lines: puppet
    installs our keystone (epoch 90 wins), and uWSGI runs the 2026.1 venv."""
    lines = [line for line in _node_lines(work, RELEASE) if not line.startswith("apt-get ")]
    ran = _puppet_on_a_booted_node(tmp_path / "puppet-ours.log", lines,
                                   (chroot.Bind(work, str(work)),))
    assert ran.version.startswith("90:29.0.2-"), ran.version
    _assert_applied_unchanged(ran)
    assert ran.main_command[0] == "/usr/bin/uwsgi_python311" and \
        ran.main_command[-2:] == ("--virtualenv", VENV), ran.main_command


def _venvdeb(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "venvdeb", "--config", str(ROOT / "pipeline.toml"),
                           "--workdir", str(work), *args],
                          capture_output=True, text=True, cwd=ROOT)


def _parity_rows(stdout: str) -> dict[tuple[str, str, str], tuple[str, str, str]]:
    """The printed table: (project, aspect, item) -> (Debian, ours, status)."""
    rows = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) == 6 and cells[1] in ("package", "user", "group", "etc", "command",
                                            "unit", "port"):
            rows[(cells[0], cells[1], cells[2])] = (cells[3], cells[4], cells[5])
    return rows


def test_parity_with_debian(pipeline: str, work: Path, tmp_path: Path) -> None:
    """Debian's keystone and cloudkitty on one booted node, ours on another: the same
    package names, units and users; ours enabled, active and listening; every difference
    listed, with its reason, in docs/parity.md."""
    built = _venvdeb(work, "build", "cloudkitty", "--release", RELEASE, "--no-lintian")
    assert built.returncode == 0, built.stderr[-4000:]
    result = _venvdeb(work, "parity", "keystone", "cloudkitty", "--release", RELEASE)
    print(result.stdout)  # the table, for the CI log
    rows = _parity_rows(result.stdout)
    assert len(rows) > 20, result.stdout + result.stderr[-3000:]

    def both(project: str, aspect: str, item: str) -> tuple[str, str, str]:
        debian, ours, status = rows[(project, aspect, item)]
        assert "-" not in (debian, ours), (project, aspect, item, debian, ours)
        return debian, ours, status

    packages = {"keystone": ["keystone"], "cloudkitty": [
        "python3-cloudkitty", "cloudkitty-common", "cloudkitty-api", "cloudkitty-processor"]}
    for project, names in packages.items():
        for name in names:
            both(project, "package", name)
        both(project, "user", project)
        both(project, "group", project)
    for project, unit, port in (("keystone", "keystone.service", 5000),
                                ("cloudkitty", "cloudkitty-api.service", 8889)):
        assert both(project, "unit", unit)[1] == "enabled, active"
        assert both(project, "port", f"tcp/{port}")[1] == unit
    assert both("cloudkitty", "unit", "cloudkitty-processor.service")[1] == "enabled, active"
    assert rows[("keystone", "command", "keystone-manage")][:2] == ("yes", "yes")
    undocumented = [k for k, v in rows.items() if v[2] == "NOT DOCUMENTED"]
    assert not undocumented and result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "documented but not seen" not in result.stdout, "docs/parity.md lists a closed one"
