"""The buildbot web UI's users file and the bind settings: who may log in, with
which roles; the UI and the worker port on addresses of their own; no default
worker password off loopback."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ROOT
from venvdeb.buildbot import plan as buildbot_plan
from venvdeb.buildbot import service, users
from venvdeb.core.errors import ConfigError


def test_a_users_file_holds_hashes_with_roles_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    assert users.load(path) == {}, "no file: nobody logs in (the UI is view-only)"
    users.set_user(path, "alice", "correct horse battery", (users.ADMIN,))
    users.set_user(path, "bob", "another long password", ())
    assert os.stat(path).st_mode & 0o777 == 0o600
    text = path.read_text()
    assert "correct horse" not in text and "another long" not in text
    known = users.load(path)
    assert known["alice"].groups == ["user", "admin"] and known["bob"].groups == ["user"]
    assert users.verify(known["alice"].password, "correct horse battery")
    assert not users.verify(known["alice"].password, "correct horse batterY")
    assert not users.verify(known["bob"].password, "correct horse battery")
    users.set_user(path, "alice", "a new long password", ())
    assert users.load(path)["alice"].roles == () and set(users.load(path)) == {"alice", "bob"}
    with pytest.raises(ConfigError, match="shorter than 12 characters"):
        users.set_user(path, "carol", "short", ())
    with pytest.raises(ConfigError, match="user name 'a:b' must match"):
        users.set_user(path, "a:b", "long enough password", ())


@pytest.mark.parametrize(("text", "error"), [
    ('[users.eve]\npassword = "hunter2hunter2"\n',
     r"users.toml: users.eve.password: expected a hash written by 'venvdeb buildbot passwd'"),
    ('[users.eve]\npassword = "@H@"\nroles = ["root"]\n',
     r"users.toml: users.eve.roles: unknown role 'root' \(known: admin\)"),
    ('[users.eve]\npassword = "@H@"\nadmin = true\n', r"users.toml: users.eve.admin: unknown key"),
    ('[users."e e"]\npassword = "@H@"\n', r"users.toml: users: user name 'e e' must match"),
])
def test_a_bad_users_file_is_refused_naming_file_and_key(tmp_path: Path, text: str,
                                                         error: str) -> None:
    path = tmp_path / "users.toml"
    path.write_text(text.replace("@H@", users.hash_password("long enough password")))
    path.chmod(0o600)
    with pytest.raises(ConfigError, match=error):
        users.load(path)


def test_a_users_file_others_can_read_or_write_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "users.toml"
    users.set_user(path, "alice", "correct horse battery", (users.ADMIN,))
    for mode in (0o644, 0o620):
        path.chmod(mode)
        with pytest.raises(ConfigError, match=rf"users.toml: readable or writable by other "
                                              rf"users \(mode 0{mode:o}\)") as caught:
            users.load(path)
        assert caught.value.hint == f"chmod 600 {path}"


def _settings(tmp_path: Path, text: str) -> buildbot_plan.Settings:
    path = tmp_path / "settings.toml"
    path.touch(0o600)
    path.write_text(text)
    return buildbot_plan.load_settings(path, ROOT)


def test_the_ui_and_the_worker_port_bind_separately(tmp_path: Path) -> None:
    site = _settings(tmp_path, "")
    assert (site.web_host, site.pb_host) == ("127.0.0.1", "127.0.0.1")
    assert site.users == tmp_path / "users.toml", "the users file sits beside the settings"
    site = _settings(tmp_path, 'pb_host = "0.0.0.0"\nweb_url = "https://ci.example.org/bb"\n'
                               '[[workers]]\nname = "far"\npassword = "s3cret-of-its-own"\n')
    assert site.web_endpoint == "tcp:8010:interface=127.0.0.1", "the UI stays on loopback"
    assert site.pb_endpoint == "tcp:9989:interface=0.0.0.0"
    assert site.pb_address == "127.0.0.1" and site.local_url == "http://127.0.0.1:8010/"
    assert site.url == "https://ci.example.org/bb/"
    site = _settings(tmp_path, 'web_host = "::1"\n')
    assert site.web_endpoint == "tcp:8010:interface=\\:\\:1"
    assert site.local_url == "http://[::1]:8010/"
    default = buildbot_plan.load_settings(None, ROOT)
    assert default.users == ROOT / "buildbot-master" / "users.toml"


@pytest.mark.parametrize(("text", "error"), [
    ('host = "0.0.0.0"\n', r"settings.toml: host: replaced by web_host \(the web UI\) and "
                           r"pb_host \(the worker port\)"),
    ('web_host = "ci.example.org"\n', r"settings.toml: web_host: expected an IP address"),
    ('pb_host = "0.0.0.0:1"\n', r"settings.toml: pb_host: expected an IP address"),
    ('[[workers]]\nname = "../x"\npassword = "pw"\n',
     r"settings.toml: workers\[0\].name: expected a name matching .*, got '../x'"),
    ('web_url = "ci.example.org"\n', r"settings.toml: web_url: expected an http:// or https://"),
    ('pb_host = "192.0.2.7"\n', r"settings.toml: workers: none given, so the default worker "
                                r"'local' would take the default worker password "
                                r"'venvdeb-local' on pb_host 192.0.2.7"),
    ('pb_host = "::"\n[[workers]]\nname = "a"\npassword = "venvdeb-local"\n',
     r"settings.toml: workers\[0\].password: the default worker password 'venvdeb-local' on "
     r"pb_host :: \(not a loopback address\) lets anyone who reaches the worker port run as "
     r"that worker"),
])
def test_bad_bind_settings_are_refused(tmp_path: Path, text: str, error: str) -> None:
    with pytest.raises(ConfigError, match=error):
        _settings(tmp_path, text)


def test_settings_with_workers_passwords_others_can_read_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[[workers]]\nname = "far"\npassword = "s3cret-of-its-own"\n')
    path.chmod(0o644)
    with pytest.raises(ConfigError, match=r"settings.toml: readable or writable by other users "
                                          r"\(mode 0644\)"):
        buildbot_plan.load_settings(path, ROOT)
    path.chmod(0o640)
    assert buildbot_plan.load_settings(path, ROOT).workers[0].password == "s3cret-of-its-own"


def test_the_default_worker_password_is_fine_on_loopback(tmp_path: Path) -> None:
    site = _settings(tmp_path, 'pb_host = "127.0.0.2"\nweb_host = "0.0.0.0"\n')
    assert site.workers[0].password == buildbot_plan.DEFAULT_WORKER_PASSWORD
    assert site.local_url == "http://127.0.0.1:8010/"


def test_a_workers_tac_carries_its_password_and_compiles() -> None:
    worker = buildbot_plan.Worker("far", "it's a \"secret\"")
    tac = service.worker_tac("127.0.0.1", 9989, worker)
    compile(tac, "buildbot.tac", "exec")
    assert "Worker('127.0.0.1', 9989, 'far', 'it\\'s a \"secret\"', basedir" in tac
    assert "application = service.Application('buildbot-worker')" in tac


def test_passwd_reads_the_password_from_stdin_and_says_what_it_did(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from venvdeb.cli import main
    settings = tmp_path / "settings.toml"
    settings.write_text(f'users = "{tmp_path / "ui-users.toml"}"\n')
    passwd = ["buildbot", "passwd", "--settings", str(settings)]
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert main([*passwd, "--user", "alice", "--admin"]) == 0
    assert f"{tmp_path / 'ui-users.toml'}: alice may log in to the web UI as an admin" \
        in capsys.readouterr().out
    alice = users.load(tmp_path / "ui-users.toml")["alice"]
    assert alice.roles == ("admin",) and users.verify(alice.password, "correct horse battery")
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert main([*passwd, "--user", "bob"]) != 0
    err = capsys.readouterr().err
    assert "the password for bob is shorter than 12 characters" in err, err
    assert main(passwd) != 0
    assert "venvdeb buildbot passwd needs --user NAME" in capsys.readouterr().err
    assert set(users.load(tmp_path / "ui-users.toml")) == {"alice"}
