from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from venvdeb.core import runner
from venvdeb.core.errors import CommandFailed
from venvdeb.python import sdist


def test_clean_environment_drops_host_pip_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")
    monkeypatch.setenv("PIP_INDEX_URL", "https://elsewhere.invalid/simple")
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": "1"})
    assert env["PIP_CONFIG_FILE"] == "/dev/null"
    assert not {k for k in env if k.startswith("PIP_")} - {
        "PIP_CONFIG_FILE", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_NO_INPUT"}
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert env["LC_ALL"] == "C.UTF-8" and env["SOURCE_DATE_EPOCH"] == "1"
    assert "/usr/sbin" in env["PATH"].split(":")


def test_run_logs_output_and_raises_with_log(tmp_path: Path) -> None:
    log = tmp_path / "stage.log"
    result = runner.run(["sh", "-c", "echo hello; echo err >&2"], log=log)
    assert result.output == "hello\nerr\n"
    with pytest.raises(CommandFailed) as info:
        runner.run(["sh", "-c", "echo boom; exit 3"], log=log, what="the step")
    assert str(info.value) == "the step failed with exit code 3"
    assert info.value.log == log and info.value.hint == "last output: boom"
    text = log.read_text()
    assert "$ sh -c echo hello; echo err >&2" in text and "[exit 3 after " in text


def test_run_has_empty_stdin(tmp_path: Path) -> None:
    result = runner.run(["cat"], log=tmp_path / "l")
    assert result.output == ""


@pytest.mark.parametrize(("output", "packages"), [
    ("Modules/constants.h:7:10: fatal error: lber.h: No such file or directory", ("libldap2-dev",)),
    ("fatal error: sasl/sasl.h: No such file or directory", ("libsasl2-dev",)),
    ("Package libvirt was not found in the pkg-config search path.", ("libvirt-dev",)),
    ("/bin/sh: 1: krb5-config: not found", ("libkrb5-dev",)),
    ("Error: pg_config executable not found.", ("libpq-dev",)),
    ("fatal error: Python.h: No such file or directory", ("python3-dev",)),
    ("some other failure", ()),
])
def test_diagnose_recognises_missing_debian_packages(output: str, packages: tuple[str, ...]) -> None:
    assert sdist.diagnose(output) == packages


def test_long_commands_say_they_are_still_running(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    runner.run(["sh", "-c", "echo started; sleep 0.5"], log=tmp_path / "l", what="the step",
                heartbeat=0.1)
    err = capsys.readouterr().err
    assert "... the step still running" in err and f"log: {tmp_path / 'l'}" in err
    assert "started" in (tmp_path / "l").read_text()


def test_a_log_that_cannot_take_a_line_stops_the_command(tmp_path: Path) -> None:
    pids = []

    def full(line: str) -> None:
        pids.append(int(line))
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        runner.run(["sh", "-c", "echo $$; exec sleep 30"], log=tmp_path / "stage.log",
                   on_line=full)
    with pytest.raises(ProcessLookupError):
        os.kill(pids[0], 0)  # killed and reaped, not left running


def test_an_interrupted_command_stops_its_own_children_first(tmp_path: Path) -> None:
    """SIGINT reaches the command before any SIGKILL: a shell that traps it gets to stop
    its child (a venvdeb pipeline stops its build the same way) and say so."""
    stopped = tmp_path / "stopped"
    script = (f"trap 'kill $child; wait $child; echo stopped > {stopped}; exit 130' INT; "
              "sleep 30 & child=$!; echo $child; wait")
    children = []

    def interrupt(line: str) -> None:
        children.append(int(line))
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.run(["sh", "-c", script], log=tmp_path / "stage.log", on_line=interrupt)
    assert stopped.read_text() == "stopped\n"
    with pytest.raises(ProcessLookupError):
        os.kill(children[0], 0)  # the grandchild, stopped by the command itself


def test_sigterm_stops_the_running_command_as_an_interrupt_does(tmp_path: Path) -> None:
    """venvdeb (and bench/) killed with SIGTERM stop the command they run, with its
    children, instead of dying and leaving it running."""
    stopped, started = tmp_path / "stopped", tmp_path / "started"
    script = (f"trap 'echo stopped > {stopped}; exit 130' INT; touch {started}; "
              "sleep 30 & wait")
    driver = ("import sys; from pathlib import Path; from venvdeb.core import runner; "
              "runner.interrupt_on_sigterm(); "
              f"runner.run(['sh', '-c', {script!r}], log=Path({str(tmp_path / 'l')!r}))")
    proc = subprocess.Popen([sys.executable, "-c", driver], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while not started.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    assert stopped.read_text() == "stopped\n"
