"""The one seam through which every external command runs.

An argv list (never a shell), empty stdin, an explicit environment with no
inherited pip settings, and the full output appended to a per-stage log.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder.errors import CommandFailed

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
) -> Result:
    """Run ``argv``, streaming its output into ``log``; raise CommandFailed on error.

    ``what`` names the step for the error line (defaults to the program name).
    With ``heartbeat``, a line on stderr every so many seconds says the step
    is still running and where its log is, so long work is never silent.
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
        proc = subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert proc.stdout is not None
        started = time.monotonic()
        done = threading.Event()
        if heartbeat:
            threading.Thread(target=_beat, args=(name, log, heartbeat, started, done),
                             daemon=True).start()
        for line in proc.stdout:
            chunks.append(line)
            handle.write(line)
            handle.flush()
            if verbose:
                sys.stderr.write(line)
        returncode = proc.wait()
        done.set()
        handle.write(f"[exit {returncode}]\n")
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
