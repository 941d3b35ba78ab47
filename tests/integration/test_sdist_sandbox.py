"""A hostile sdist is built confined: in a clean chroot of the target distribution
(read-only), as an unprivileged user in a user namespace, with the network cut, from its hash-locked build
requirements only."""
from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import socket
import stat
from pathlib import Path

import pytest

from tests.conftest import RELEASE, Project, readable_dir, require_tools
from tests.fixtures.make_index import Dist, build_index, sdist_bytes
from venvdeb.core import mounts
from venvdeb.python import chroot

pytestmark = pytest.mark.integration

ROOT_MARK = Path("/root/venvdeb-hostile-was-here")


def _left_behind(proc: Path) -> bool:
    """A process of the sdist builder still running in the hostile build's unpacked
    tree (its working directory, inherited by what it forks)."""
    try:
        if proc.stat().st_uid != mounts.subordinate()[0] + chroot.BUILDER:
            return False
        return "/build/src/fixture_hostile-" in os.readlink(proc / "cwd")
    except OSError:
        return False


def test_hostile_sdist_is_denied_the_key_root_and_the_network_and_still_builds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_tools("unshare", "setpriv", "tar")
    if os.geteuid() != 0:
        pytest.skip("the sandbox drops root: run as root to see it denied /root")
    assert not ROOT_MARK.exists(), f"{ROOT_MARK} left by an earlier run: remove it"
    workdir = tmp_path / "work"
    keys = workdir / "keys"
    keys.mkdir(parents=True)
    keys.chmod(0o700)
    key = keys / "signing.asc"
    secret = f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n{secrets.token_hex(32)}\n"
    key.write_text(secret)
    key.chmod(0o600)
    before = key.stat()
    # world-readable on the build host: a build on the host's file system would read it
    probe = Path("/var/tmp") / f"venvdeb-host-probe-{secrets.token_hex(4)}"
    probe.write_text("the build host\n")
    probe.chmod(0o644)

    with socket.socket() as index_port:  # stands in for the index: must see no connection
        index_port.bind(("127.0.0.1", 0))
        index_port.listen()
        index_port.setblocking(False)
        hostile = Dist("fixture-hostile", "0.1.0", sdist_only=True,
                       build_requires=("fixture-lib>=1.0",), dynamic_requires=("wheel",),
                       hostile_key=str(key), hostile_probe=str(probe),
                       hostile_port=index_port.getsockname()[1])
        index = build_index(readable_dir("hostile-index"), (Dist("fixture-lib", "1.0.0"),
                                                 Dist("fixture-lib", "1.1.0"), hostile))
        project = Project(tmp_path / "checkout", index, workdir)
        project.root.mkdir()
        project.write(upper_constraints="fixture-hostile===0.1.0\n")
        # the lock as 'venvdeb lock' writes it (locking is not what is tried here)
        name, data = sdist_bytes(hostile)
        lock = workdir / "releases" / RELEASE / "bookworm" / "lock" / "lock.txt"
        lock.parent.mkdir(parents=True)
        lock.write_text(f"fixture-hostile==0.1.0 \\\n    --hash=sha256:{hashlib.sha256(data).hexdigest()}\n")

        run = project.venvdeb("wheels", "--release", RELEASE, capsys=capsys)
        assert run.code == 0, run.err
        with pytest.raises(BlockingIOError):
            index_port.accept()

    wheel_dir = workdir / "releases" / RELEASE / "bookworm" / "wheelhouse"
    assert (wheel_dir / "files" / "fixture_hostile-0.1.0-py3-none-any.whl").is_file()
    log = (workdir / "logs" / RELEASE / "bookworm" / "wheels" / "fixture-hostile.log").read_text()
    for hook in ("get_requires_for_build_wheel", "build_wheel"):
        assert f"hostile {hook}: write /root: denied EACCES" in log, log
        assert (f"hostile {hook}: read the signing key: denied EACCES" in log
                or f"hostile {hook}: read the signing key: denied ENOENT" in log), log
        assert f"hostile {hook}: connect to the index: denied ENETUNREACH" in log, log
        # in a user namespace whose root is root's first subordinate id, as its builder
        assert (f"hostile {hook}: runs as uid {chroot.BUILDER}, uid 0 here is "
                f"{mounts.subordinate()[0]} outside") in log, log
        # the chroot: the host's file system is out of sight, not only its private files
        assert f"hostile {hook}: read a file of the build host: denied ENOENT" in log, log
    probe.unlink()
    assert "SUCCEEDED" in log  # only the process left behind gets that far (asserted below)
    assert log.count("SUCCEEDED") == log.count(": linger: SUCCEEDED")
    # ...and it dies with the build: every process of the build is in one PID namespace
    assert "left process" in log
    survivors = [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and _left_behind(p)]
    assert not survivors, f"processes of the hostile build survived it: {survivors}"
    # built from its build lock, installed from the hash-verified wheel
    assert "hostile build_wheel: built with fixture_lib 1.1.0" in log
    build_lock_dir = workdir / "releases" / RELEASE / "bookworm" / "build-lock"
    build_lock = (build_lock_dir / "lock.txt").read_text()
    assert "fixture-lib==1.1.0" in build_lock and "--hash=sha256:" in build_lock
    # what its backend asked for on top (from upstream code, discovered confined) is
    # recorded and locked with hashes too
    assert "wheel==" in build_lock
    discovered = json.loads((build_lock_dir / "discovered.json").read_text())
    assert discovered == {name: ["wheel"]}
    assert "build backends asked for more" in run.err
    # the stage says where its time went; each command's log line, how long it ran
    assert re.search(r"wheels: read the index for 1 entries in [0-9.]+ s; downloaded 0 wheels "
                     r"in [0-9.]+ s beside the build locks \([0-9.]+ s\) and 1 sdist builds "
                     r"\([0-9.]+ s, [0-9]+ at once\)", run.err), run.err
    assert re.search(r"^\[exit 0 after [0-9]+\.[0-9] s\]$", log, re.MULTILINE), log
    # the build lock was installed once, before any upstream code ran, and unpacked here
    venv_log = (workdir / "logs" / RELEASE / "bookworm" / "wheels" / "build-venv-1.log").read_text()
    assert "--require-hashes" in venv_log and "Successfully installed" in venv_log, venv_log
    assert "hostile" not in venv_log
    assert "tar -xf /build/venv.tar -C /build" in log and "--require-hashes" not in log, log
    records = json.loads((wheel_dir / "build-manifest.json").read_text())
    assert {(r["name"], r["version"]) for r in records} >= {("fixture-lib", "1.1.0")}
    assert {r["name"] for r in records} == {"fixture-lib", "wheel"}
    for record in records:
        digest = hashlib.sha256((wheel_dir / "files" / record["file"]).read_bytes()).hexdigest()
        assert digest in build_lock, record
    # untouched: the key, /root, and nothing of the key in any log
    assert not ROOT_MARK.exists()
    after = key.stat()
    assert key.read_text() == secret
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode), after.st_mtime_ns) == \
        (before.st_uid, before.st_gid, 0o600, before.st_mtime_ns)
    secret_line = secret.splitlines()[1]
    for path in (workdir / "logs").rglob("*"):
        if path.is_file():
            assert secret_line not in path.read_text(errors="replace"), path
