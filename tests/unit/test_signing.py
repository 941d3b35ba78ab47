"""The signing key's home: private to its owner, its agent stopped only when it is
ours. Real gpg, ed25519 keys (made in a fraction of a second)."""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, require_tools
from venvdeb.archive import signing
from venvdeb.core.errors import SigningError

UID = "venvdeb test key <test@venvdeb.invalid>"


def _gpg(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", *args],
                          capture_output=True, text=True)


def _agent_alive(home: Path) -> bool:
    """An agent answers on the home's socket (gpg-connect-agent exits 0 either way)."""
    out = subprocess.run(["gpg-connect-agent", "--homedir", str(home), "--no-autostart",
                          "GETINFO pid", "/bye"], capture_output=True, text=True).stdout
    return re.search(r"^D \d+$", out, re.M) is not None


@pytest.fixture
def operator_home(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """An operator's own GnuPG home with a key and a running agent (like ~/.gnupg)."""
    require_tools("gpg", "gpgconf", "gpg-connect-agent")
    home = tmp_path / "op"
    home.mkdir(mode=0o700)
    _gpg(home, "--passphrase", "", "--quick-generate-key", UID, "ed25519", "sign", "never")
    fingerprint = re.findall(r"^fpr:+([0-9A-F]{40}):", _gpg(
        home, "--with-colons", "--list-secret-keys").stdout, re.M)[0]
    subprocess.run(["gpgconf", "--homedir", str(home), "--launch", "gpg-agent"], check=True)
    yield home, fingerprint
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"])


def test_an_operators_agent_survives_publishing_with_their_key(
        operator_home: tuple[Path, str], tmp_path: Path) -> None:
    home, fingerprint = operator_home
    assert _agent_alive(home)
    managed = tmp_path / "work" / "keys" / "gnupg"
    with signing.session(home, fingerprint, managed, tmp_path / "log", uid=UID) as key:
        assert key.fingerprint == fingerprint and not key.managed
    assert _agent_alive(home), "publishing stopped the operator's gpg-agent"
    assert not managed.exists(), "a configured key needs no managed home"


def test_the_managed_home_is_private_and_its_agent_stopped(tmp_path: Path) -> None:
    require_tools("gpg", "gpgconf", "gpg-connect-agent")
    managed = tmp_path / "work" / "keys" / "gnupg"
    old = os.umask(0o022)  # a permissive umask must not leak into the key's files
    try:
        with signing.session(tmp_path / "unused", None, managed, tmp_path / "log",
                             uid=UID) as key:
            assert key.managed and _agent_alive(managed)
    finally:
        os.umask(old)
    assert not _agent_alive(managed), "the managed home's agent was left running"
    assert managed.stat().st_mode & 0o777 == 0o700
    files = [p for p in managed.rglob("*") if p.is_file()]
    assert any(p.parent.name == "private-keys-v1.d" for p in files)
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == \
        {p.name: "0o600" for p in files}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to try another uid")
def test_another_user_cannot_read_the_managed_key(tmp_path: Path) -> None:
    """What upstream code running as an unprivileged uid would try."""
    require_tools("gpg", "setpriv")
    managed = tmp_path / "work" / "keys" / "gnupg"
    with signing.session(tmp_path / "unused", None, managed, tmp_path / "log", uid=UID):
        pass
    os.chmod(tmp_path, 0o755)  # pytest's tmp_path is 0700: let the other uid reach work/
    [secret] = managed.glob("private-keys-v1.d/*.key")
    for argv in (["cat", str(secret)], ["ls", str(managed)]):
        tried = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                *argv], capture_output=True, text=True)
        assert tried.returncode != 0 and "Permission denied" in tried.stderr, tried


def test_an_open_or_foreign_key_directory_is_refused_naming_the_chmod(tmp_path: Path) -> None:
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    os.chmod(home, 0o750)
    with pytest.raises(SigningError, match=rf"{home} is open to other users \(mode 0750\)") as e:
        signing.check_private(home)
    assert e.value.hint is not None and f"chmod 700 {home}" in e.value.hint
    with pytest.raises(SigningError, match=rf"{home} is open to other users"):
        with signing.session(tmp_path / "unused", None, home, tmp_path / "log", uid=UID):
            pass
    assert not (home / "pubring.kbx").exists(), "gpg ran in a refused home"
    os.chmod(home, 0o700)
    signing.check_private(home)
    if os.geteuid() == 0:
        os.chown(home, 65534, 65534)
        with pytest.raises(SigningError, match=rf"{home} belongs to uid 65534"):
            signing.check_private(home)


def test_only_publish_and_promote_open_the_key_directory() -> None:
    """No other stage names the managed key's home or a GnuPG home."""
    users = sorted(str(p.relative_to(ROOT / "builder")) for p in
                   (ROOT / "builder" / "venvdeb").rglob("*.py")
                   if re.search(r"\.keys\b(?!\()|def keys\b|GNUPGHOME|gnupg_home|\.gnupg",
                                 p.read_text()))
    assert users == ["venvdeb/archive/signing.py", "venvdeb/core/config.py",
                     "venvdeb/core/workdir.py", "venvdeb/stages/publish.py"]


def test_a_gpg_that_cannot_reach_its_agent_makes_no_second_key(tmp_path: Path) -> None:
    """A managed home with its key, and an agent that does not start this time."""
    require_tools("gpg", "gpgconf")
    managed = tmp_path / "work" / "keys" / "gnupg"
    with signing.session(tmp_path / "unused", None, managed, tmp_path / "log", uid=UID) as key:
        first = key.fingerprint
    (managed / "gpg.conf").write_text("agent-program /bin/false\n")
    with pytest.raises(SigningError, match=rf"cannot list the signing keys in {managed}"):
        with signing.session(tmp_path / "unused", None, managed, tmp_path / "log", uid=UID):
            pass
    (managed / "gpg.conf").unlink()
    listed = _gpg(managed, "--with-colons", "--list-secret-keys").stdout
    assert re.findall(r"^fpr:+([0-9A-F]{40}):", listed, re.M) == [first]
    subprocess.run(["gpgconf", "--homedir", str(managed), "--kill", "gpg-agent"])
