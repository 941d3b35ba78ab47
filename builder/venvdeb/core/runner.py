"""The one seam through which every external command runs.

An argv list (never a shell), empty stdin (or a file opened by venvdeb), an explicit environment with no
inherited pip settings, and the full output appended to a per-stage log.
What executes it is a ``Runner``: the subprocess one, or another given with
``using`` (a recording runner in the unit tests).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from venvdeb.core.errors import CommandFailed

#: Variables kept from the caller's environment; everything else is dropped.
_KEPT = ("PATH", "HOME", "TMPDIR", "TERM", "SSL_CERT_FILE", "SSL_CERT_DIR", "http_proxy",
         "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """An environment with a fixed locale and no pip or Python settings of the host.

    ``PIP_CONFIG_FILE=/dev/null`` makes pip ignore /etc/pip.conf, /etc/xdg/pip
    and ~/.config/pip; every other ``PIP_*`` and ``PYTHON*`` variable is dropped.
    """
    env = {key: os.environ[key] for key in _KEPT if key in os.environ}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    env["PATH"] = _with_sbin(env["PATH"])
    env.update({
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_NO_INPUT": "1",
        "PYTHONHASHSEED": "0",
        "DEBIAN_FRONTEND": "noninteractive",
    })
    if extra:
        env.update(extra)
    return env


def _with_sbin(path: str) -> str:
    parts = path.split(os.pathsep)
    for needed in ("/usr/sbin", "/sbin"):
        if needed not in parts:
            parts.append(needed)
    return os.pathsep.join(parts)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    output: str


LineCallback = Callable[[str], None]


class Runner(Protocol):
    """What executes a command: ``SubprocessRunner`` for real, a recording one in tests.

    It gets the argv, the directory, the full environment, the file on its
    standard input (``None``: empty) and where each line of output goes (stdout
    and stderr merged, in order); it returns the exit code.
    """

    def __call__(self, argv: tuple[str, ...], *, cwd: Path | None, env: Mapping[str, str],
                 stdin: Path | None, on_line: LineCallback) -> int: ...


class SubprocessRunner:
    """The real thing: an argv list (never a shell) with empty stdin, or ``stdin``
    opened by venvdeb (a command that may not open it by name itself)."""

    def __call__(self, argv: tuple[str, ...], *, cwd: Path | None, env: Mapping[str, str],
                 stdin: Path | None, on_line: LineCallback) -> int:
        with (open(stdin, "rb") if stdin is not None else open(os.devnull, "rb")) as source:
            return self._run(argv, cwd, env, source, on_line)

    @staticmethod
    def _run(argv: tuple[str, ...], cwd: Path | None, env: Mapping[str, str],
             source: IO[bytes], on_line: LineCallback) -> int:
        proc = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=source,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace")
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                on_line(line)
        except BaseException:  # the log cannot take a line (a full disk), or ^C: stop it too
            _stop(proc)
            raise
        return proc.wait()


#: how long an interrupted command has to stop its own children before it is killed
STOP_GRACE = 10.0


def interrupt_on_sigterm() -> None:
    """SIGTERM (``kill``, a stopped service) handled as ^C: the command running is
    stopped with its children (``_stop``), not left running beside a dead parent."""
    def terminated(signum: int, frame: object) -> None:
        raise KeyboardInterrupt
    if threading.current_thread() is threading.main_thread():  # only it may set handlers
        signal.signal(signal.SIGTERM, terminated)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT first, so that a command with children of its own (a venvdeb, a
    dpkg-buildpackage) stops them too; SIGKILL if it is still there after STOP_GRACE."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


_current: list[Runner] = [SubprocessRunner()]


@contextmanager
def using(replacement: Runner) -> Iterator[Runner]:
    """Run every command of the block through ``replacement`` (tests, bench/)."""
    _current.append(replacement)
    try:
        yield replacement
    finally:
        _current.remove(replacement)


def run(
    argv: Sequence[str | os.PathLike[str]],
    *,
    log: Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    verbose: bool = False,
    what: str | None = None,
    heartbeat: float | None = None,
    on_line: LineCallback | None = None,
    stdin: Path | None = None,
) -> Result:
    """Run ``argv``, streaming its output into ``log``; raise CommandFailed on error.

    ``what`` names the step for the error line (defaults to the program name).
    With ``heartbeat``, a line on stderr every so many seconds says the step
    is still running and where its log is, so long work is never silent.
    ``on_line`` sees each line of output as it comes (bench/ times stages by it).
    ``stdin``: a file venvdeb opens for the command (default: empty).
    """
    args = tuple(os.fspath(a) for a in argv)
    name = what or Path(args[0]).name
    log.parent.mkdir(parents=True, exist_ok=True)
    chunks: list[str] = []
    with log.open("a", encoding="utf-8") as handle:
        handle.write(f"$ {' '.join(args)}\n")
        if cwd:
            handle.write(f"  (in {cwd})\n")
        handle.flush()

        def line(text: str) -> None:
            chunks.append(text)
            handle.write(text)
            handle.flush()
            if verbose:
                sys.stderr.write(text)
            if on_line is not None:
                on_line(text)

        started = time.monotonic()
        done = threading.Event()
        if heartbeat:
            threading.Thread(target=_beat, args=(name, log, heartbeat, started, done),
                             daemon=True).start()
        try:
            returncode = _current[-1](args, cwd=cwd,
                                      env=env if env is not None else clean_environment(),
                                      stdin=stdin, on_line=line)
        finally:
            done.set()
        handle.write(f"[exit {returncode} after {time.monotonic() - started:.1f} s]\n")
    output = "".join(chunks)
    if check and returncode != 0:
        raise CommandFailed(f"{name} failed with exit code {returncode}",
                            hint=_last_line(output), log=log)
    return Result(args, returncode, output)


def _beat(name: str, log: Path, every: float, started: float, done: threading.Event) -> None:
    while not done.wait(every):
        sys.stderr.write(f"  ... {name} still running ({time.monotonic() - started:.0f} s; "
                         f"log: {log})\n")
        sys.stderr.flush()


def _last_line(output: str) -> str | None:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return f"last output: {lines[-1]}" if lines else None
