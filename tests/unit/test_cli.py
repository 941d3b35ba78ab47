"""``venvdeb`` end to end through ``cli.main``, its commands recorded instead of run.

The runner seam (venvdeb.core.runner) takes a recording runner: what venvdeb asks
the system to do, with which environment, is checked without running pip-tools.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.unit.conftest import RELEASE
from venvdeb import cli
from venvdeb.core import runner

HASH = "a" * 64


class Recorder:
    """Records each command; ``pip-compile`` writes the lock it was asked for."""

    def __init__(self, exit_code: int = 0, output: str = "") -> None:
        self.calls: list[tuple[tuple[str, ...], Path | None, dict[str, str]]] = []
        self.exit_code = exit_code
        self.output = output

    def __call__(self, argv: tuple[str, ...], *, cwd: Path | None, env: Mapping[str, str],
                 stdin: Path | None, on_line: runner.LineCallback) -> int:
        self.calls.append((argv, cwd, dict(env)))
        if "venvdeb.python.piptools_compile" in argv and self.exit_code == 0:
            assert cwd is not None
            (cwd / "lock.new.txt").write_text(f"fixture-lib==1.0.0 \\\n    --hash=sha256:{HASH}\n")
        for line in self.output.splitlines(keepends=True):
            on_line(line)
        return self.exit_code

    def programs(self) -> list[str]:
        return [" ".join(argv[1:3]) if argv[1:2] == ("-m",) else argv[0]
                for argv, _, _ in self.calls]


def _main(checkout: Path, *args: str) -> int:
    return cli.main(["--config", str(checkout / "pipeline.toml"), "--workdir",
                     str(checkout / "work"), *args])


def test_lock_runs_pip_compile_offline_of_host_settings_then_is_up_to_date(
        checkout: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_INDEX_URL", "http://host-setting.invalid/simple")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    with runner.using(Recorder()) as rec:
        assert _main(checkout, "lock", "--release", RELEASE) == 0
    out = capsys.readouterr().out
    assert out.startswith("lock: compiled: 1 entries in ") and "lock.txt" in out
    [(argv, cwd, env)] = rec.calls
    # confined: the sandbox user (as root), the network kept for the index
    wrapper = argv[:argv.index("--") + 1]
    assert wrapper[0] == "unshare" and "--net" not in wrapper
    if os.geteuid() == 0:
        assert argv[argv.index("--") + 1] == "setpriv" and "--no-new-privs" in argv
    command = argv[argv.index(sys.executable):]
    assert command[1:3] == ("-m", "venvdeb.python.piptools_compile")
    assert "--generate-hashes" in argv and argv[argv.index("--index-url") + 1] == \
        f"file://{checkout}/no-index"
    assert cwd is not None and cwd.name.startswith("venvdeb-lock-"), "a scratch directory"
    assert (checkout / "work" / "releases" / RELEASE / "bookworm" / "lock" / "lock.txt").exists()
    assert env["PIP_CONFIG_FILE"] == "/dev/null" and env["LC_ALL"] == "C.UTF-8"
    assert "PIP_INDEX_URL" not in env and "PYTHONDONTWRITEBYTECODE" not in env
    log = checkout / "work" / "logs" / RELEASE / "bookworm" / "lock.log"
    assert "venvdeb.python.piptools_compile" in log.read_text(), "the command is logged"
    with runner.using(Recorder()) as again:
        assert _main(checkout, "lock", "--release", RELEASE) == 0
    assert capsys.readouterr().out.startswith("lock: up to date: 1 entries")
    assert again.calls == [], "an up-to-date lock runs nothing"


def test_a_failed_pip_compile_is_one_clear_line_naming_the_pin(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failing = Recorder(1, "ERROR: Could not find a version that satisfies the requirement "
                          "fixture-lib==1.0.0\n")
    with runner.using(failing):
        assert _main(checkout, "lock", "--release", RELEASE) == 1
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("venvdeb: ")]
    assert len(err) == 1 and err[0].startswith("venvdeb: error: the package index ")
    assert "no version 1.0.0 of fixture-lib" in err[0]
    assert "upper-constraints.txt:1" in err[0] and "(log: " in err[0]
    assert not (checkout / "work" / "releases" / RELEASE / "bookworm" / "lock" /
                "lock.txt").exists(), "no lock from a failed run"


def test_pipeline_dry_run_runs_nothing_and_creates_no_workdir(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with runner.using(Recorder()) as rec:
        assert _main(checkout, "pipeline", "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert rec.calls == [], rec.programs()
    assert not (checkout / "work").exists(), "a dry run writes nothing, not even logs"
    assert lines[-1] == (f"dry run: 6 would run: lock {RELEASE}/bookworm, wheels "
                         f"{RELEASE}/bookworm, reqdeb {RELEASE}/bookworm, build fixture-app, "
                         f"check fixture-app, publish bookworm-{RELEASE}-staging")
    assert "would run: build fixture-app: never built in this workdir" in lines


def test_help_names_every_command_and_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in cli.COMMANDS:
        assert command.name in out
    assert "--dry-run" in out


def test_a_worker_with_other_code_refuses_before_anything_runs(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with runner.using(Recorder()) as rec:
        assert _main(checkout, "--require-code", "0123456789ab", "lock", "--release",
                     RELEASE) == 1
    err = capsys.readouterr().err
    assert "the buildbot master runs code 0123456789ab" in err and "apt-get install venvdeb" in err
    assert rec.calls == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox user is used as root only")
def test_a_file_index_the_sandbox_user_cannot_read_is_named_with_the_chmod(
        checkout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (checkout / "no-index").mkdir()
    checkout.chmod(0o700)
    closed = next(p for p in (*reversed(checkout.parents), checkout)
                  if not p.stat().st_mode & 0o001)
    with runner.using(Recorder()) as rec:
        assert _main(checkout, "lock", "--release", RELEASE) == 2
    err = capsys.readouterr().err
    assert "is not readable by the user 'venvdeb-sandbox'" in err
    assert f"chmod o+rx {closed}" in err
    assert rec.calls == [], "nothing runs"
