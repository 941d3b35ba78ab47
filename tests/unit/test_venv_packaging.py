from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from debian import deb822
from debian.changelog import Changelog
from debian.debian_support import Version

from tests.conftest import ROOT
from venvdeb.core import config, versions
from venvdeb.core.errors import ConfigError
from venvdeb.debian import builders, source_package
from venvdeb.python.upstream import Source


@pytest.fixture
def cfg() -> config.Config:
    return config.load(ROOT / "pipeline.toml")


def _plan(cfg: config.Config, tmp_path: Path, name: str = "keystone",
          reqdeb_version: str = "2026.1.3+68f42221",
          requirements: str = "--require-hashes\nsix==1.17.0 --hash=sha256:00\n",
          ) -> source_package.SourcePlan:
    tarball = tmp_path / f"{name}.tar.gz"
    tarball.write_bytes(b"not really a tarball")
    src = Source(tarball, "29.0.2", "29.0.2", "test")
    draft = source_package.plan(
        cfg, cfg.projects[name], cfg.release("2026.1"), cfg.distribution("bookworm"),
        upstream=src, requirements=requirements,
        reqdeb_package="openstack-wheels-2026.1", reqdeb_version=reqdeb_version,
        native_build_depends=("libldap2-dev", "libsasl2-dev"))
    return _versioned(draft, tmp_path)


def _versioned(draft: source_package.SourceDraft, tmp_path: Path) -> source_package.SourcePlan:
    """The act step, as the stages do it: the ledger assigns, the plan is completed."""
    assigned = versions.assign(tmp_path / "versions.json", draft.ledger_key, "2026.1",
                               draft.digest, tag=draft.context["version_tag"])
    return source_package.versioned(draft, assigned)


def test_planning_is_pure_it_records_no_version(cfg: config.Config, tmp_path: Path) -> None:
    tarball = tmp_path / "keystone.tar.gz"
    tarball.write_bytes(b"not really a tarball")
    before = sorted(tmp_path.rglob("*"))
    draft = source_package.plan(
        cfg, cfg.projects["keystone"], cfg.release("2026.1"), cfg.distribution("bookworm"),
        upstream=Source(tarball, "29.0.2", "29.0.2", "test"), requirements="--require-hashes\n",
        reqdeb_package="openstack-wheels-2026.1", reqdeb_version="2026.1.3+68f42221")
    assert sorted(tmp_path.rglob("*")) == before, "plan wrote nothing"
    peeked = versions.peek(tmp_path / "versions.json", draft.ledger_key, "2026.1", draft.digest,
                           tag="deb12")
    assert peeked.new and peeked.serial == 1 and not (tmp_path / "versions.json").exists()
    assert "debian/changelog" not in dict(draft.files), "the changelog comes with the version"


def test_names_and_paths(cfg: config.Config) -> None:
    keystone = cfg.projects["keystone"]
    assert keystone.venv_package("2026.1") == "venv-keystone-2026.1"
    assert keystone.venv_path("2025.1") == "/opt/venvs/keystone-2025.1"
    assert not keystone.venv_package("2026.1").startswith("python3")
    nova = cfg.projects["nova"]
    assert [p.name for p in nova.packages] == [
        "python3-nova", "nova-common", "nova-api", "nova-conductor", "nova-scheduler",
        "nova-compute", "nova-consoleproxy"]
    assert nova.packages[0].is_empty and not nova.packages[1].is_empty
    assert nova.lock_inputs("2026.1") == ("nova==33.0.2", "libvirt-python", "PyMySQL")


def test_control_parses_back(cfg: config.Config, tmp_path: Path) -> None:
    plan = _plan(cfg, tmp_path)
    files = dict(plan.files)
    source, venv, keystone = deb822.Deb822.iter_paragraphs(files["debian/control"])
    assert source["Source"] == "keystone"
    assert source["Build-Depends"].split(",")[-1].strip() == "openstack-wheels-2026.1"
    assert "dh-virtualenv" in source["Build-Depends"]
    # python-ldap's wheel was built here: dpkg-shlibdeps needs libldap in any chroot
    assert "libldap2-dev," in source["Build-Depends"] and "libsasl2-dev," in source["Build-Depends"]
    assert venv["Package"] == "venv-keystone-2026.1" and venv["Architecture"] == "any"
    assert "python3 (>= 3.11~)" in venv["Depends"] and "python3 (<< 3.12)" in venv["Depends"]
    assert keystone["Package"] == "keystone" and keystone["Architecture"] == "all"
    assert "venv-keystone-2026.1 (= ${binary:Version})" in keystone["Depends"]
    assert "adduser" in keystone["Depends"]
    for paragraph in (venv, keystone):
        for line in paragraph["Description"].splitlines()[1:]:
            assert len(line) <= 79, line


def test_version_epoch_revision_and_rebuilds(cfg: config.Config, tmp_path: Path) -> None:
    first = _plan(cfg, tmp_path)
    assert first.version == "90:29.0.2-0+deb12u1"
    assert first.dsc_name == "keystone_29.0.2-0+deb12u1.dsc"
    log = Changelog(dict(first.files)["debian/changelog"])
    assert str(log.version) == "90:29.0.2-0+deb12u1" and log.version.epoch == "90"
    assert _plan(cfg, tmp_path).version == "90:29.0.2-0+deb12u1", "same inputs, same version"
    (tmp_path / "keystone.tar.gz").write_bytes(b"changed upstream tarball")
    src = Source(tmp_path / "keystone.tar.gz", "29.0.2", "29.0.2", "test")
    again = _versioned(source_package.plan(
        cfg, cfg.projects["keystone"], cfg.release("2026.1"), cfg.distribution("bookworm"),
        upstream=src, requirements="--require-hashes\n", reqdeb_package="openstack-wheels-2026.1",
        reqdeb_version="2026.1.3+68f42221"), tmp_path)
    assert again.version == "90:29.0.2-0+deb12u2", "a rebuild gets a higher version"
    assert Version(again.version) > Version(first.version)


def test_a_trixie_build_sorts_above_every_bookworm_build(cfg: config.Config,
                                                         tmp_path: Path) -> None:
    """Same inputs for two distributions: two versions (no clash in the pool), the
    newer distribution's above the older's whatever its serial, Depends on its own
    interpreter's minor version."""
    tarball = tmp_path / "keystone.tar.gz"
    tarball.write_bytes(b"not really a tarball")
    src = Source(tarball, "29.0.2", "29.0.2", "test")
    built = {}
    for dist in ("bookworm", "trixie"):
        draft = source_package.plan(
            cfg, cfg.projects["keystone"], cfg.release("2026.1"), cfg.distribution(dist),
            upstream=src, requirements="--require-hashes\n",
            reqdeb_package="openstack-wheels-2026.1", reqdeb_version="2026.1+deb12u1.68f42221")
        built[dist] = _versioned(draft, tmp_path)
    assert built["trixie"].version == "90:29.0.2-0+deb13u1"
    assert Version(built["trixie"].version) > Version("90:29.0.2-0+deb12u99")
    control = dict(built["trixie"].files)["debian/control"]
    assert "python3 (>= 3.13~)," in control and "python3 (<< 3.14)" in control
    assert "3.11" not in control
    unit = dict(built["trixie"].files)["debian/keystone.keystone.service"]
    assert "ExecStart=/usr/bin/uwsgi_python3 --http-socket :5000" in unit, unit


def test_maintainer_scripts_and_rules(cfg: config.Config, tmp_path: Path) -> None:
    files = dict(_plan(cfg, tmp_path, "cloudkitty").files)
    for name in ("debian/cloudkitty-common.postinst", "debian/cloudkitty-common.postrm"):
        check = subprocess.run(["sh", "-n"], input=files[name], text=True, capture_output=True)
        assert check.returncode == 0, (name, check.stderr)
    assert "addgroup --quiet --system cloudkitty" in files["debian/cloudkitty-common.postinst"]
    assert "rm -rf /var/lib/cloudkitty" in files["debian/cloudkitty-common.postrm"]
    assert "rm -rf /etc" not in files["debian/cloudkitty-common.postrm"]
    assert files["debian/cloudkitty-common.links"].splitlines()[0] == \
        "opt/venvs/cloudkitty-2026.1/bin/cloudkitty-dbsync usr/bin/cloudkitty-dbsync"
    unit = files["debian/cloudkitty-processor.cloudkitty-processor.service"]
    assert ("ExecStart=/opt/venvs/cloudkitty-2026.1/bin/cloudkitty-processor "
            "--config-file=/etc/cloudkitty/cloudkitty.conf") in unit
    assert "User=cloudkitty" in unit
    wsgi = files["debian/venvdeb/wsgi/cloudkitty-api/cloudkitty-api"]
    assert wsgi.startswith("#!/opt/venvs/cloudkitty-2026.1/bin/python\n")
    assert "application = build_wsgi_app()" in wsgi
    compile(wsgi, "wsgi", "exec")
    rules = files["debian/rules"]
    assert "dh $@ --with python-virtualenv" in rules
    assert "--builtin-venv --python /usr/bin/python3" in rules
    assert "--extra-pip-arg=--no-index" in rules and "export PIP_CONFIG_FILE = /dev/null" in rules
    assert "oslo-config-generator --config-file etc/oslo-config-generator/cloudkitty.conf" in rules
    assert "dh_installsystemd -pcloudkitty-processor --name=cloudkitty-processor" in rules
    assert files["debian/source/format"] == "3.0 (quilt)\n"
    src = tmp_path / "src"
    for rel, text in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(text)
    dry = subprocess.run(["make", "-n", "-f", "debian/rules", "override_dh_virtualenv"],
                         cwd=src, capture_output=True, text=True)
    assert dry.returncode == 0, dry.stderr
    assert "finish-venv.py" in dry.stdout
    assert "compileall" not in rules and "/bin/python -B " in rules, "no bytecode is built"
    assert "venvdeb-error: bytecode in" in rules


def test_the_node_compiles_the_venvs_bytecode_and_removes_it_first(cfg: config.Config,
                                                                   tmp_path: Path) -> None:
    """As py3compile and py3clean for Debian's python3 packages: the venv package's
    postinst compiles, its prerm removes every __pycache__ before dpkg touches a file."""
    files = dict(_plan(cfg, tmp_path, "nova").files)
    postinst, prerm = (files[f"debian/venv-nova-2026.1.{s}"] for s in ("postinst", "prerm"))
    for text in (postinst, prerm):
        check = subprocess.run(["sh", "-n"], input=text, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
        assert "#DEBHELPER#" in text
    assert ("/opt/venvs/nova-2026.1/bin/python -I -m compileall -q -j0 \\\n"
            "                --invalidation-mode timestamp -x '/site-packages/(.*/)?tests?/' \\\n"
            "                /opt/venvs/nova-2026.1/lib") in postinst
    assert "configure|abort-upgrade|abort-remove|abort-deconfigure)" in postinst
    assert ("find /opt/venvs/nova-2026.1 -depth -type d -name __pycache__ "
            "-exec rm -rf -- {} +") in prerm
    profile = files["debian/venv-nova-2026.1.lintian-overrides"]
    assert "package-installs-python-pycache-dir" not in profile, "nothing to override"


def test_api_services_run_under_debians_uwsgi_on_the_venv(cfg: config.Config,
                                                         tmp_path: Path) -> None:
    """keystone.service as Debian's: uWSGI with the python3 plugin, the ini where
    Debian puts it; the venv named in the unit only, never in the conffile."""
    files = dict(_plan(cfg, tmp_path).files)
    unit = files["debian/keystone.keystone.service"]
    assert ("ExecStart=/usr/bin/uwsgi_python311 --http-socket :5000 --ini "
            "/etc/keystone/keystone-uwsgi.ini --virtualenv /opt/venvs/keystone-2026.1") in unit
    assert "User=keystone" in unit and "Group=keystone" in unit
    assert "RuntimeDirectory=keystone lock/keystone" in unit
    assert "WantedBy=multi-user.target" in unit
    ini = files["debian/venvdeb/uwsgi/keystone/keystone-uwsgi.ini"]
    settings = dict(line.split(" = ", 1) for line in ini.splitlines()
                    if " = " in line and not line.startswith("#"))
    assert settings["wsgi-file"] == "/usr/lib/cgi-bin/keystone"
    assert settings["plugins"] == "python3"
    assert (settings["uid"], settings["gid"]) == ("keystone", "keystone")
    assert settings["logto"] == "/var/log/keystone/keystone.log"
    assert {"processes", "threads", "listen"} <= settings.keys(), "what puppet edits"
    assert "/opt/venvs" not in ini, "a conffile kept across upgrades must not name a venv"
    assert ("debian/venvdeb/uwsgi/keystone/keystone-uwsgi.ini etc/keystone/"
            in files["debian/keystone.install"].splitlines())
    assert "dh_installsystemd -pkeystone --name=keystone" in files["debian/rules"]
    by_name = {p.get("Package"): p
               for p in deb822.Deb822.iter_paragraphs(files["debian/control"])}
    assert "uwsgi-plugin-python3" in by_name["keystone"]["Depends"]
    assert "uwsgi-plugin-python3" not in by_name["venv-keystone-2026.1"]["Depends"]
    assert files["debian/keystone.logrotate"].startswith("/var/log/keystone/*.log {\n")
    assert "copytruncate" in files["debian/keystone.logrotate"]
    (tmp_path / "nova").mkdir()
    nova = dict(_plan(cfg, tmp_path / "nova", "nova").files)
    assert "--http-socket :8775 --ini /etc/nova/nova-api-metadata-uwsgi.ini" in \
        nova["debian/nova-api.nova-api-metadata.service"]


def test_sudoers_and_lintian_profile(cfg: config.Config, tmp_path: Path) -> None:
    files = dict(_plan(cfg, tmp_path, "nova").files)
    sudoers = files["debian/venvdeb/sudoers/nova-common"]
    assert 'secure_path="/opt/venvs/nova-2026.1/bin:' in sudoers
    rules = [line for line in sudoers.splitlines() if line.startswith("nova ALL")]
    assert rules == [
        "nova ALL = (root) NOPASSWD: /opt/venvs/nova-2026.1/bin/nova-rootwrap "
        "/etc/nova/rootwrap.conf *",
        "nova ALL = (root) NOPASSWD: /opt/venvs/nova-2026.1/bin/nova-rootwrap-daemon "
        "/etc/nova/rootwrap.conf"]
    profile = files["debian/venv-nova-2026.1.lintian-overrides"]
    overrides = [line for line in profile.splitlines() if line and not line.startswith("#")]
    assert overrides and all("[" in line for line in overrides), "every override is scoped"
    assert all("opt/venvs" in line for line in overrides)
    python3_nova = deb822.Deb822.iter_paragraphs(files["debian/control"])
    by_name = {p.get("Package"): p for p in python3_nova}
    assert by_name["python3-nova"]["Section"] == "metapackages"


@pytest.mark.parametrize(("package", "message"), [
    ('name = "xx"\nconfig_files = [{ path = "/etc/x/x.conf" }]', "give exactly one of 'source'"),
    ('name = "xx"\ndirectories = [{ path = "/var/lib/x", mode = "777x" }]', "octal mode"),
    ('name = "xx"\nwsgi_scripts = [{ path = "/usr/lib/cgi-bin/x", application = "x" }]',
     "module:callable"),
    ('name = "xx"\nconfig_files = [{ path = "/usr/x.conf", source = "a" }]', "below /etc/"),
    ('name = "X y"', "is not a Debian package name"),
    ('name = "xx"\ncolour = 1', "unknown key"),
    ('name = "xx"\nuwsgi = [{ name = "keystone-b", wsgi_script = "/usr/lib/cgi-bin/keystone", '
     'port = 5000 }]', "keystone: uwsgi keystone(-b)?: port 5000 is taken by keystone's keystone"),
    ('name = "xx"\nuwsgi = [{ name = "keystone", wsgi_script = "/usr/lib/cgi-bin/keystone", '
     'port = 5001 }]', "unit 'keystone' is declared twice"),
    ('name = "xx"\nuwsgi = [{ name = "keystone-b", wsgi_script = "/usr/lib/cgi-bin/nope", '
     'port = 5001 }]', "is not one of the project's wsgi_scripts"),
    ('name = "xx"\nuwsgi = [{ name = "keystone-b", wsgi_script = "/usr/lib/cgi-bin/keystone", '
     'port = 80 }]', "expected a port from 1024 to 65535, got 80"),
    ('name = "xx"\nuwsgi = [{ name = "keystone-b", wsgi_script = "/usr/lib/cgi-bin/keystone", '
     'port = "5001" }]', "expected a TCP port number, got str"),
    ('name = "xx"\nuwsgi = [{ name = "keystone-b", port = 5001 }]',
     r"uwsgi\[0\]\.wsgi_script: missing required key"),
    ('name = "xx"\ncommands = ["keystone-manage"]\nunits = [{ name = "xx" }]',
     r"units\[0\]\.command: missing required key"),
    ('name = "xx"\ncommands = ["keystone-manage"]\nunits = [{ name = "xx", command = "xx" }]',
     "units: xx: runs 'xx', which is not one of this package's commands"),
])
def test_bad_package_entries(tmp_path: Path, package: str, message: str) -> None:
    text = (ROOT / "pipeline.toml").read_text().replace(
        "[[projects.keystone.packages]]\n",
        f"[[projects.keystone.packages]]\n{package}\n\n[[projects.keystone.packages]]\n", 1)
    (tmp_path / "pipeline.toml").write_text(text.replace(
        'requirements_dir = "requirements-repo', f'requirements_dir = "{ROOT}/requirements-repo'))
    with pytest.raises(ConfigError, match=message):
        config.load(tmp_path / "pipeline.toml")


def test_differences_name_the_files(tmp_path: Path) -> None:
    def deb(content: str, name: str) -> Path:
        root = tmp_path / name
        (root / "DEBIAN").mkdir(parents=True)
        (root / "DEBIAN" / "control").write_text(
            "Package: t\nVersion: 1\nArchitecture: all\nMaintainer: a <a@b.c>\nDescription: t\n")
        (root / "usr/share/t").mkdir(parents=True)
        (root / "usr/share/t/same").write_text("same")
        (root / "usr/share/t/changes").write_text(content)
        out = tmp_path / f"{name}.deb"
        subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-b", str(root), str(out)],
                       check=True, capture_output=True,
                       env={"SOURCE_DATE_EPOCH": "1", "PATH": "/usr/bin:/bin"})
        return out
    a, b = deb("one", "a"), deb("two", "b")
    assert builders.differences(a, b) == ["data:./usr/share/t/changes"]
    assert builders.differences(a, deb("one", "c")) == []


def test_version_follows_the_closure_not_the_requirements_package(cfg: config.Config,
                                                                  tmp_path: Path) -> None:
    """A new requirements package whose wheels the closure does not use rebuilds nothing."""
    first = _plan(cfg, tmp_path)
    assert _plan(cfg, tmp_path, reqdeb_version="2026.1.4+0000aaaa").version == first.version
    changed = _plan(cfg, tmp_path, requirements="--require-hashes\nsix==1.17.0 --hash=sha256:11\n")
    assert changed.version == first.version.replace("deb12u1", "deb12u2")


def test_the_install_test_counts_modules_left_without_bytecode(tmp_path: Path) -> None:
    from venvdeb.qa import install_test
    site = tmp_path / "opt/venvs/x-2026.1/lib/python3.11/site-packages/pkg"
    (site / "__pycache__").mkdir(parents=True)
    for name in ("a.py", "b.py", "c.d.py"):
        (site / name).write_text("")
    for name in ("a.cpython-311.pyc", "c.d.cpython-311.pyc", "b.cpython-311.opt-1.x"):
        (site / "__pycache__" / name).write_text("")
    tests = site / "tests" / "unit"
    tests.mkdir(parents=True)
    (tests / "test_a.py").write_text("")
    (site.parent / "test").mkdir()
    (site.parent / "test" / "__init__.py").write_text("")
    modules, missing, uncompiled, compiled_tests = install_test.bytecode(
        tmp_path, "/opt/venvs/x-2026.1")
    assert (modules, uncompiled, compiled_tests) == (3, 2, [])
    assert missing == ["/opt/venvs/x-2026.1/lib/python3.11/site-packages/pkg/b.py"]
    problems, seen = install_test.bytecode_problems(tmp_path, "/opt/venvs/x-2026.1")
    assert seen == "bytecode for 2 of 3 modules (the postinst's), none for the 2 of test suites"
    assert problems == ["1 of 3 modules of /opt/venvs/x-2026.1 have no bytecode after the "
                        "install (its postinst compiles them), e.g. "
                        "/opt/venvs/x-2026.1/lib/python3.11/site-packages/pkg/b.py"]
    (site / "__pycache__" / "b.cpython-311.pyc").write_text("")
    assert install_test.bytecode_problems(tmp_path, "/opt/venvs/x-2026.1")[0] == []
    (tests / "__pycache__").mkdir()
    (tests / "__pycache__" / "test_a.cpython-311.pyc").write_text("")
    problems, seen = install_test.bytecode_problems(tmp_path, "/opt/venvs/x-2026.1")
    assert seen == "bytecode for 3 of 3 modules (the postinst's), 1 for the 2 of test suites"
    assert problems == ["1 modules of test suites in /opt/venvs/x-2026.1 have bytecode after "
                        "the install (its postinst skips them: compileall -x "
                        "/site-packages/(.*/)?tests?/), e.g. "
                        "/opt/venvs/x-2026.1/lib/python3.11/site-packages/pkg/tests/unit/test_a.py"]


def test_the_postinst_skips_exactly_the_modules_the_install_test_leaves_uncompiled(
        tmp_path: Path) -> None:
    """compileall -x with the postinst's pattern, run for real: what it skips is what
    ``bytecode.compiled_on_the_node`` says, and only test suites (a package called
    ``testing`` or ``contest`` is compiled)."""
    from venvdeb.python import bytecode
    site = tmp_path / "venv/lib/python3.11/site-packages"
    names = ["pkg/a.py", "pkg/tests/b.py", "pkg/test/c.py", "tests/d.py", "pkg/testing/e.py",
             "contest/f.py", "pkg/sub/tests/deep/g.py", "pkg/tests.py"]
    for name in names:
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_text("x = 1\n")
    run = subprocess.run([sys.executable, "-I", "-m", "compileall", "-q", "-x",
                          bytecode.UNCOMPILED, str(tmp_path / "venv/lib")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    compiled = {n for n in names
                if list((site / n).parent.glob(f"__pycache__/{Path(n).stem}.*.pyc"))}
    assert compiled == {"pkg/a.py", "pkg/testing/e.py", "contest/f.py", "pkg/tests.py"}
    assert compiled == {n for n in names if bytecode.compiled_on_the_node(str(site / n))}
