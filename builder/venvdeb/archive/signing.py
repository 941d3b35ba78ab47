"""The repository's signing key: made on first use, or the operator's own.

A tool-managed key lives in ``<workdir>/keys/gnupg`` (no passphrase: the
repository is signed unattended), a directory only its owner (root) can
enter: made 0700, its files kept 0600, and refused when another user could
read it. A configured key (``[repository] signing_key``, optionally
``gnupg_home``) is used as it is, from a home under the same rule. Either way
the key is proven usable by signing a probe before anything is published, and
its public part is exported for nodes (``Signed-By``) and for ``gpgv`` checks.
Only ``publish`` and ``promote`` open either home (``session``); the
gpg-agent they start for the managed home is stopped afterwards, and an
operator's agent is never touched.
"""
from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import runner
from venvdeb.core.errors import CommandFailed, SigningError

KEY_NAME = "venvdeb archive signing key"
KEYRING = "venvdeb-archive-keyring.gpg"


@dataclass(frozen=True)
class SigningKey:
    home: Path
    fingerprint: str
    managed: bool

    def env(self) -> dict[str, str]:
        return runner.clean_environment({"GNUPGHOME": str(self.home)})


@contextmanager
def session(home: Path, fingerprint: str | None, managed_home: Path, log: Path,
            *, uid: str) -> Iterator[SigningKey]:
    """The key for one publication; afterwards the managed home's gpg-agent is
    stopped whatever happens. With a configured key nothing is stopped: its
    agent is the operator's (maybe their desktop's, holding a passphrase)."""
    try:
        yield resolve(home, fingerprint, managed_home, log, uid=uid)
    finally:
        if not fingerprint and managed_home.is_dir():
            stop_agent(managed_home, log)


def resolve(home: Path, fingerprint: str | None, managed_home: Path, log: Path,
            *, uid: str) -> SigningKey:
    """The configured key (``fingerprint`` in ``home``) or the managed one, made if missing."""
    if fingerprint:
        if not home.is_dir():
            raise SigningError(f"signing key {fingerprint}: GnuPG home {home} does not exist",
                               hint="set [repository] gnupg_home to the keyring holding it")
        check_private(home)
        key = SigningKey(home, fingerprint, managed=False)
    else:
        key = _managed(managed_home, log, uid)
    check_usable(key, log)
    return key


def check_private(home: Path) -> None:
    """Refuse a GnuPG home another user could enter or that is not ours: whoever
    reads it can sign for every node that trusts the key."""
    st = home.stat()
    if st.st_uid != os.geteuid():
        raise SigningError(f"the signing key's directory {home} belongs to uid {st.st_uid}, "
                           f"not to this user (uid {os.geteuid()})",
                           hint=f"chown -R {os.geteuid()} {home}, or use a key directory "
                                f"of this user")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise SigningError(f"the signing key's directory {home} is open to other users "
                           f"(mode {stat.S_IMODE(st.st_mode):04o})",
                           hint=f"chmod 700 {home} (and chmod -R go-rwx {home})")


def _private_dir(path: Path) -> None:
    """``path`` made 0700 whatever the umask (mkdir's mode only loses bits to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)


def _tighten(home: Path) -> None:
    """gpg writes pubring.kbx and trustdb.gpg through the umask: keep every file
    of the managed home 0600 and every directory 0700."""
    for path in home.rglob("*"):
        try:
            st = path.lstat()
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                if stat.S_IMODE(st.st_mode) & 0o077:
                    os.chmod(path, stat.S_IMODE(st.st_mode) & 0o700)
        except FileNotFoundError:  # gpg's temporary files come and go
            continue


def _secret_fingerprints(home: Path, log: Path) -> list[str]:
    """The secret keys in ``home``. A failing gpg (its agent did not come up...) is
    an error, not "no key": taken for one, it made a second key the nodes do not trust."""
    try:
        out = runner.run(["gpg", "--batch", "--with-colons", "--list-secret-keys"], log=log,
                          env=runner.clean_environment({"GNUPGHOME": str(home)}),
                          what="gpg --list-secret-keys").output
    except CommandFailed as exc:
        reason = exc.hint or "see the log"
        raise SigningError(f"cannot list the signing keys in {home} ({reason})",
                           hint=f"rerun; if it persists, check that gpg-agent starts for {home}",
                           log=log) from None
    return [line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:")]


def _managed(home: Path, log: Path, uid: str) -> SigningKey:
    _private_dir(home)
    check_private(home)
    found = _secret_fingerprints(home, log)
    if not found:
        runner.run(["gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
                     "--quick-generate-key", uid, "ed25519", "sign", "never"],
                    log=log, env=runner.clean_environment({"GNUPGHOME": str(home)}),
                    what="gpg --quick-generate-key")
        found = _secret_fingerprints(home, log)
    _tighten(home)
    if not found:
        raise SigningError(f"no secret key in {home} after generating one", log=log)
    return SigningKey(home, found[0], managed=True)


def check_usable(key: SigningKey, log: Path) -> None:
    """Sign a probe with the key: missing, expired, revoked or locked keys fail here."""
    with tempfile.TemporaryDirectory(prefix="venvdeb-sign-") as tmp:
        probe = Path(tmp) / "probe"
        probe.write_text("venvdeb signing probe\n")
        try:
            runner.run(["gpg", "--batch", "--yes", "--pinentry-mode", "error",
                         "--local-user", key.fingerprint, "--detach-sign", str(probe)],
                        log=log, env=key.env(), what="gpg (signing probe)")
        except CommandFailed as exc:
            raise SigningError(
                f"signing key {key.fingerprint} in {key.home} cannot sign "
                f"({exc.hint or 'see the log'})",
                hint="check [repository] signing_key and gnupg_home (the key must have no "
                     "passphrase or a running agent), or unset them to use a managed key",
                log=log) from None


def export(key: SigningKey, dest: Path, log: Path) -> tuple[Path, Path]:
    """Write the public key, binary (for Signed-By and gpgv) and armored."""
    dest.mkdir(parents=True, exist_ok=True)
    binary = dest / KEYRING
    armored = dest / KEYRING.replace(".gpg", ".asc")
    data = runner.run(["gpg", "--batch", "--armor", "--export", key.fingerprint], log=log,
                       env=key.env(), what="gpg --export").output
    if "BEGIN PGP PUBLIC KEY BLOCK" not in data:
        raise SigningError(f"could not export the public key {key.fingerprint}", log=log)
    armored.write_text(data[data.index("-----BEGIN"):])
    runner.run(["gpg", "--batch", "--yes", "--output", str(binary), "--export",
                 key.fingerprint], log=log, env=key.env(), what="gpg --export")
    return binary, armored


def stop_agent(home: Path, log: Path) -> None:
    """gpg and reprepro start an agent for the managed home; do not leave it behind.
    Only ever called with that home (``session``), named explicitly."""
    runner.run(["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"], log=log,
                check=False, env=runner.clean_environment({"GNUPGHOME": str(home)}),
                what="gpgconf --kill gpg-agent")


def verify(signed: Path, keyring: Path, log: Path) -> None:
    """``gpgv`` with only our keyring: what apt does with Signed-By."""
    try:
        runner.run(["gpgv", "--keyring", str(keyring), str(signed)], log=log,
                    what=f"gpgv {signed.name}")
    except CommandFailed as exc:
        raise SigningError(f"{signed} does not verify against {keyring.name}",
                           hint=exc.hint, log=log) from None


def valid_fingerprint(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9A-Fa-f]{40}", value))
