"""The buildbot plan, as data: builders, steps, pollers, settings."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

import venvdeb
from tests.conftest import ROOT
from venvdeb.buildbot import plan as buildbot_plan
from venvdeb.core import config
from venvdeb.core.errors import ConfigError


def test_one_builder_per_project_release_distribution_and_per_release() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    site = buildbot_plan.load_settings(ROOT / "buildbot-master" / "settings.toml.example", ROOT)
    plans = buildbot_plan.plan(cfg, site)
    names = sorted(p.name for p in plans)
    pairs = (("2025.1", "bookworm"), ("2026.1", "bookworm"), ("2026.1", "trixie"))
    assert names == sorted([
        *(f"{kind}-{release}-{dist}" for kind in ("requirements", "promote")
          for release, dist in pairs),
        *(f"{project}-{release}-{dist}" for project in ("keystone", "cloudkitty", "nova")
          for release, dist in pairs)])
    trixie = next(p for p in plans if p.name == "keystone-2026.1-trixie")
    assert trixie.steps[9].argv[7:] == ("build", "keystone", "--release", "2026.1", "--dist",
                                        "trixie", "--builder", "sbuild", "--no-lintian")
    keystone = next(p for p in plans if p.name == "keystone-2026.1-bookworm")
    assert [s.name for s in keystone.steps] == [
        "venvdeb version", "lock", "wheels", "requirements inputs",
        "requirements version (publisher)", "requirements package", "inputs",
        "version (publisher)", "source package", "build (sbuild)", "checks (lintian, install test)",
        "upload", "accept into staging"]
    assert [s.kind for s in keystone.steps] == [
        "version", "command", "command", "inputs", "assign", "command", "inputs", "assign",
        "command", "command", "command", "upload", "accept"]
    # lintian and the install test in one step, at once (venvdeb check without --only)
    assert keystone.steps[10].argv[7:] == ("check", "keystone", "--release", "2026.1",
                                           "--dist", "bookworm")
    source = keystone.steps[8].argv[7:]
    assert source == ("source", "keystone", "--release", "2026.1", "--dist", "bookworm",
                      "--reason", buildbot_plan.NOTE, "--assigned", buildbot_plan.ASSIGNED)
    assert keystone.steps[5].argv[7:] == ("reqdeb", "--release", "2026.1", "--dist", "bookworm",
                                          "--assigned", buildbot_plan.REQUIREMENTS_ASSIGNED)
    version = keystone.steps[7].assign
    assert version is not None and version.ledger == site.workdir / "state" / "versions.json"
    assert (version.key, version.versioned, version.release, version.tag, version.prefix) == \
        ("keystone/2026.1/bookworm/", True, "2026.1", "deb12", "")
    wheels = keystone.steps[4].assign
    assert wheels is not None and (wheels.key, wheels.versioned, wheels.prefix) == \
        ("openstack-wheels-2026.1/bookworm", False, buildbot_plan.REQUIREMENTS)
    assert keystone.steps[3].prefix == buildbot_plan.REQUIREMENTS
    requirements = next(p for p in plans if p.name == "requirements-2026.1-bookworm")
    assert [s.name for s in requirements.steps] == [
        "venvdeb version", "lock", "wheels", "requirements inputs",
        "requirements version (publisher)", "requirements package", "affected projects"]
    # the publisher runs no upstream code: accept takes the master's own venvdeb and workdir
    accept = keystone.steps[-1].argv
    assert accept[:5] == (str(site.venvdeb), "--config", str(site.config), "--workdir",
                          str(site.workdir)) and "--require-code" not in accept
    assert accept[5:] == ("accept", buildbot_plan.INCOMING, "--release", "2026.1", "--dist",
                          "bookworm", "--uploader", buildbot_plan.WORKER)
    assert keystone.publisher == site.workdir
    build = keystone.steps[9].argv
    assert build[0] == str(ROOT / ".venv" / "bin" / "venvdeb")
    assert build[5:7] == ("--require-code", venvdeb.code_digest()), "the master's own code"
    assert build[7:] == ("build", "keystone", "--release", "2026.1", "--dist", "bookworm", "--builder",
                         "sbuild", "--no-lintian")
    assert keystone.poller is None, "the bundled projects come from PyPI sdists"
    assert site.url == "http://127.0.0.1:8010/" and site.workers[0].name == "local"


def test_with_audit_configured_each_release_gets_an_audit_builder(tmp_path: Path) -> None:
    text = (ROOT / "pipeline.toml").read_text().replace(
        'requirements_dir = "', f'requirements_dir = "{ROOT}/')
    path = tmp_path / "pipeline.toml"
    path.write_text(text + '\n[audit]\nadvisories = "osv"\nblocked_licenses = ["AGPL-3.0-only"]\n')
    site = buildbot_plan.load_settings(ROOT / "buildbot-master" / "settings.toml.example", ROOT)
    plans = {p.name: p for p in buildbot_plan.plan(config.load(path), site)}
    audit = plans["audit-2026.1-trixie"]
    assert audit.kind == "audit" and audit.poller is None
    assert [(s.name, s.kind) for s in audit.steps] == [
        ("venvdeb version", "version"), ("lock", "command"), ("audit (advisories)", "audit"),
        ("wheels", "command"), ("licenses", "audit")]
    assert audit.steps[2].argv[7:] == ("audit", "--release", "2026.1", "--dist", "trixie")
    assert audit.steps[4].argv[7:] == ("licenses", "--release", "2026.1", "--dist", "trixie")
    assert sum(p.kind == "audit" for p in plans.values()) == 3, "one per release and distribution"
    only_advisories = path.read_text().replace('blocked_licenses = ["AGPL-3.0-only"]', "")
    path.write_text(only_advisories)
    plans = {p.name: p for p in buildbot_plan.plan(config.load(path), site)}
    assert [s.name for s in plans["audit-2025.1-bookworm"].steps] == [
        "venvdeb version", "lock", "audit (advisories)"]
    # without [audit], no audit builder (the bundled config)
    bundled = buildbot_plan.plan(config.load(ROOT / "pipeline.toml"), site)
    assert not [p for p in bundled if p.kind == "audit"]


def test_settings_are_validated(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.touch(0o600)  # it holds the workers' passwords
    path.write_text('builder = "docker"\n')
    with pytest.raises(ConfigError, match=r"settings.toml: builder: expected 'local' or 'sbuild'"):
        buildbot_plan.load_settings(path, ROOT)
    path.write_text('[[workers]]\nname = "a"\npassword = "x"\n[[workers]]\nname = "a"\n'
                    'password = "y"\n')
    with pytest.raises(ConfigError, match="worker names must be unique"):
        buildbot_plan.load_settings(path, ROOT)
    path.write_text('web_port = 8011\nworkdir = "w"\n[[workers]]\nname = "one"\npassword = "p"\n'
                    'max_builds = 2\n')
    site = buildbot_plan.load_settings(path, ROOT)
    assert site.web_port == 8011 and site.workdir == tmp_path / "w"
    assert site.workers == (buildbot_plan.Worker("one", "p", 2),)


def test_closure_change_says_what_moved() -> None:
    from venvdeb.stages.affected import closure_change
    assert closure_change(["a==1", "b==2", "c==3"], ["a==1", "b==2.1", "d==4"]) == \
        "b 2 -> 2.1, +d 4, -c 3"
    assert closure_change(["a==1"], ["a==1"]) == ""


def test_every_step_starts_with_the_paths_a_worker_may_override() -> None:
    cfg = config.load(ROOT / "pipeline.toml")
    site = buildbot_plan.load_settings(ROOT / "buildbot-master" / "settings.toml.example", ROOT)
    for p in buildbot_plan.plan(cfg, site):
        for step in p.steps[1:]:
            if step.kind in ("assign", "accept"):  # on the master
                continue
            assert step.argv[:5] == (str(site.venvdeb), "--config", str(site.config),
                                     "--workdir", str(site.workdir)), (p.name, step.name)
    assert set(buildbot_plan.PATH_POSITIONS.values()) == set(buildbot_plan.PATH_PROPERTIES.values())


def test_a_worker_set_up_by_apt_brings_its_own_paths(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.touch(0o600)  # it holds the workers' passwords
    settings.write_text('[[workers]]\nname = "local"\npassword = "a"\n\n'
                        '[[workers]]\nname = "far"\npassword = "b"\nvenvdeb = "/usr/bin/venvdeb"\n'
                        'config = "/etc/venvdeb/pipeline.toml"\nworkdir = "/srv/venvdeb"\n')
    site = buildbot_plan.load_settings(settings, ROOT)
    local, far = site.workers
    assert local.properties() == {}
    assert far.properties() == {"venvdeb_path": "/usr/bin/venvdeb",
                                "venvdeb_config": "/etc/venvdeb/pipeline.toml",
                                "venvdeb_workdir": "/srv/venvdeb"}
    settings.write_text('[[workers]]\nname = "far"\npassword = "b"\nworkdir = "srv"\n')
    with pytest.raises(ConfigError, match=r"workers.*workdir.*absolute path"):
        buildbot_plan.load_settings(settings, ROOT)


def test_every_builder_first_checks_that_the_worker_runs_the_masters_venvdeb() -> None:
    """An older venvdeb lacks --require-code: the first step asks only for --version
    (from the path a worker may override) and expects the master's own digest."""
    cfg = config.load(ROOT / "pipeline.toml")
    site = buildbot_plan.load_settings(ROOT / "buildbot-master" / "settings.toml.example", ROOT)
    plans = buildbot_plan.plan(cfg, site)
    assert {p.kind for p in plans} == {"requirements", "project", "promote"}
    expected = buildbot_plan.SameVenvdeb(venvdeb.__version__, venvdeb.code_digest())
    for p in plans:
        first = p.steps[0]
        assert first.name == buildbot_plan.VERSION_STEP == "venvdeb version", p.name
        assert first.kind == "version" and first.argv == (str(site.venvdeb), "--version")
        assert first.expect == expected
        assert [s.kind for s in p.steps[1:]].count("version") == 0
    assert buildbot_plan.PATH_POSITIONS[0] == "venvdeb_path", "a worker's own venvdeb answers"
    assert expected.line == f"venvdeb {venvdeb.__version__} (code {venvdeb.code_digest()})"


def test_the_version_step_refuses_another_venvdeb_with_one_clear_line() -> None:
    same = buildbot_plan.SameVenvdeb("0.2.0", "abcdef012345")
    assert same.refusal("far", "/usr/bin/venvdeb", 0, "venvdeb 0.2.0 (code abcdef012345)\n",
                        "") is None
    advice = ("install the same venvdeb on the worker (apt-get install venvdeb from the "
              "repository the master publishes) or run both from one checkout")
    assert same.refusal("far", "/usr/bin/venvdeb", 0, "venvdeb 0.1.0\n", "") == (
        f"worker far runs 'venvdeb 0.1.0'; the master runs venvdeb 0.2.0 (code abcdef012345): "
        f"{advice}")
    assert same.refusal("far", "/usr/bin/venvdeb", 0, "venvdeb 0.2.0 (code 999999999999)\n",
                        "") == (
        "worker far runs 'venvdeb 0.2.0 (code 999999999999)'; the master runs venvdeb 0.2.0 "
        f"(code abcdef012345): {advice}")
    assert same.refusal("far", "/usr/bin/venvdeb", 2, "",
                        "usage: venvdeb ...\nvenvdeb: error: the following arguments are "
                        "required: COMMAND\n") == (
        "worker far cannot answer '/usr/bin/venvdeb --version' (exit 2: venvdeb: error: the "
        "following arguments are required: COMMAND); the master runs venvdeb 0.2.0 "
        f"(code abcdef012345): {advice}")
    assert same.refusal("far", "/nowhere/venvdeb", 127, "", "") == (
        "worker far cannot answer '/nowhere/venvdeb --version' (exit 127); the master runs "
        f"venvdeb 0.2.0 (code abcdef012345): {advice}")


def test_the_publisher_checks_what_a_worker_reports_before_its_ledger_sees_it(
        tmp_path: Path) -> None:
    from venvdeb.buildbot import publisher
    from venvdeb.core.errors import PublishError
    digest = "a" * 64
    assert publisher.inputs(f"source: planning\ninputs: keystone/2026.1/bookworm/29.0.2 "
                            f"{digest}\n") == {"ledger_key": "keystone/2026.1/bookworm/29.0.2",
                                               "inputs_digest": digest}
    assert publisher.inputs("inputs: keystone/2026.1/bookworm/29.0.2 nothex\n") == {}
    ok = publisher.check("keystone/2026.1/bookworm/", True, "keystone/2026.1/bookworm/29.0.2",
                         digest)
    for key in ("nova/2026.1/bookworm/29.0.2", "keystone/2026.1/trixie/29.0.2",
                "keystone/2026.1/bookworm/29.0.2;rm -rf /", "keystone/2026.1/bookworm/", None):
        with pytest.raises(PublishError, match="not of keystone/2026.1/bookworm/<version>"):
            publisher.check("keystone/2026.1/bookworm/", True, key, digest)
    with pytest.raises(PublishError, match="no inputs digest"):
        publisher.check("keystone/2026.1/bookworm/", True, ok.key, "abc")
    wheels = "openstack-wheels-2026.1/bookworm"
    assert publisher.check(wheels, False, wheels, digest).key == wheels
    with pytest.raises(PublishError, match="not of openstack-wheels-2026.1/bookworm$"):
        publisher.check(wheels, False, wheels + "/1", digest)
    assert publisher.inputs(f"inputs: {wheels} {digest}", "requirements_") == {
        "requirements_ledger_key": wheels, "requirements_inputs_digest": digest}
    ledger = tmp_path / "versions.json"
    first = publisher.assign(ledger, "2026.1", "deb12", ok, "commit 1")
    other = publisher.assign(ledger, "2026.1", "deb12",
                             publisher.Inputs(ok.key, "b" * 64), "commit 2")
    again = publisher.assign(ledger, "2026.1", "deb12", ok, "commit 3")
    assert (first.serial, other.serial, again.serial) == (1, 2, 1)
    assert again.note == "commit 1" and again.epoch == first.epoch, "assigned once"


def test_a_worker_adopts_the_publishers_serial(tmp_path: Path) -> None:
    from venvdeb.core import versions
    ledger = tmp_path / "versions.json"
    local = versions.assign(ledger, "k/r/d/1", "r", "a" * 64, tag="deb12")
    assert local.serial == 1
    versions.adopt(ledger, "k/r/d/1", "a" * 64, 7, 1_700_000_000, note="from the publisher")
    got = versions.assign(ledger, "k/r/d/1", "r", "a" * 64, tag="deb12")
    assert (got.serial, got.epoch, got.note) == (7, 1_700_000_000, "from the publisher")
    assert versions.assign(ledger, "k/r/d/1", "r", "b" * 64, tag="deb12").serial == 8


def test_a_starting_master_clears_the_uploads_nobody_will_accept(tmp_path: Path) -> None:
    from venvdeb.buildbot import service
    incoming = tmp_path / "incoming"
    (incoming / "keystone-2026.1-bookworm-7").mkdir(parents=True)
    (incoming / "keystone-2026.1-bookworm-7" / "x.changes").write_text("partial")
    (incoming / "stray").write_text("")
    assert service.clear_incoming(tmp_path) == 2 and list(incoming.iterdir()) == []
    assert service.clear_incoming(tmp_path / "none") == 0


def test_a_worker_of_its_own_user_has_its_own_workdir_and_buildbot_directory(
        tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.touch(0o600)
    settings.write_text('[[workers]]\nname = "w3"\npassword = "c"\nuser = "venvdeb-w3"\n'
                        'workdir = "/srv/w3"\n')
    site = buildbot_plan.load_settings(settings, ROOT)
    [w3] = site.workers
    assert w3.user == "venvdeb-w3"
    assert site.worker_dir(w3) == Path("/srv/w3/buildbot-worker")
    for user, said in (("root", "an unprivileged user name"), ("w3;id", "an unprivileged user"),
                       ):
        settings.write_text(f'[[workers]]\nname = "w3"\npassword = "c"\nuser = "{user}"\n'
                            f'workdir = "/srv/w3"\n')
        with pytest.raises(ConfigError, match=said):
            buildbot_plan.load_settings(settings, ROOT)
    settings.write_text('[[workers]]\nname = "w3"\npassword = "c"\nuser = "venvdeb-w3"\n')
    with pytest.raises(ConfigError, match="give it a workdir of its own"):
        buildbot_plan.load_settings(settings, ROOT)


def test_a_worker_is_started_as_its_user_never_through_a_foreign_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Recorded, not run: setpriv to the worker's user; a workdir another user owns is
    refused with the chown to run; a missing user is named with the adduser to run."""
    import pwd

    from venvdeb.buildbot import service
    me = pwd.getpwuid(os.getuid())
    other = next(e for e in pwd.getpwall() if e.pw_uid not in (0, os.getuid()))
    w = buildbot_plan.Worker("w3", "c", workdir=tmp_path / "w3", user=me.pw_name)
    assert service._as(me, ["buildbot-worker", "start", "d"]) == [
        "setpriv", f"--reuid={me.pw_uid}", f"--regid={me.pw_gid}", "--init-groups", "--",
        "buildbot-worker", "start", "d"]
    (tmp_path / "w3").mkdir()
    os.chown(tmp_path / "w3", other.pw_uid, other.pw_gid)
    with pytest.raises(ConfigError, match=f"is not a directory of its user {me.pw_name}"):
        service._own_directory(w, me, tmp_path / "w3" / "buildbot-worker")
    assert not (tmp_path / "w3" / "buildbot-worker").exists()
    monkeypatch.setattr(pwd, "getpwnam", lambda name: (_ for _ in ()).throw(KeyError(name)))
    with pytest.raises(ConfigError, match="runs as user 'w3-user', which does not exist"):
        service._owner(buildbot_plan.Worker("w3", "c", workdir=tmp_path, user="w3-user"))
