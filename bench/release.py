"""A full release from scratch: lock and wheels of every pin (``--scope all``), one
distribution, cold (bench/run --from-scratch).

Each run locks the release twice in new workdirs, alternating: pip-compile as
pip-tools runs it (each index page and each metadata file asked for when its
resolver needs it, one after the other), and as venvdeb runs it (the pins' index
pages and metadata fetched 16 at once first, venvdeb.python.piptools_compile). Both
locks must be the same bytes. Then the wheels of the venvdeb lock into that new
workdir (its wheel cache empty; downloads 8 at once, sdists built in the
distribution's tree, which may be warm: it is shared by every workdir). pip-compile's
own caches live in its scratch directory, so every lock is cold. Prints the times,
the ratio and the target (lock + wheels <= 5 min on 2 cores). Never run by the tests.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "builder"))

import host  # noqa: E402  (bench/host.py, beside this file)

from venvdeb.core import config as config_mod  # noqa: E402
from venvdeb.core.errors import VenvdebError  # noqa: E402
from venvdeb.core.target import target as release_target  # noqa: E402
from venvdeb.core.workdir import Workdir  # noqa: E402
from venvdeb.python import lock  # noqa: E402
from venvdeb.python import wheelhouse as wheelhouse_mod  # noqa: E402
from venvdeb.stages import lock as lock_stage  # noqa: E402
from venvdeb.stages import wheels as wheels_stage  # noqa: E402

TARGET = 300.0
WAYS = (("pip-compile as pip-tools runs it", 0),
        (f"venvdeb (prefetch, {lock.PREFETCH or 16} at once)", lock.PREFETCH or 16))


class _Said(io.TextIOBase):
    """stderr, passed on, its lines kept (the wheels stage's own figures)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""
        self._out = sys.stderr

    def write(self, text: str) -> int:
        self._out.write(text)
        *done, self._partial = (self._partial + text).split("\n")
        self.lines += done
        return len(text)

    def flush(self) -> None:
        self._out.flush()


def slowest_builds(log_dir: Path, names: list[str], top: int = 6) -> list[str]:
    """Each sdist build's time, the sum of its commands' times in its log (the runner
    writes ``[exit N after T s]``): the slowest, and what creating each build's venv,
    installing its build lock and the backend's hooks took over all builds."""
    per: dict[str, float] = {}
    steps: dict[str, float] = {}
    for name in names:
        log = log_dir / f"{name}.log"
        if not log.exists():
            continue
        command = ""
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("$ "):
                command = line
            m = re.fullmatch(r"\[exit -?[0-9]+ after ([0-9.]+) s\]", line)
            if m:
                took = float(m.group(1))
                per[name] = per.get(name, 0.0) + took
                step = ("venv" if " -m venv " in command else
                        "build lock install" if "-r /build/build-lock.txt" in command else
                        "build venv unpack" if "/build/venv.tar" in command else
                        "unpack" if " tar -xf " in command or " zipfile -e " in command else
                        "backend hooks (metadata, wheel)")
                steps[step] = steps.get(step, 0.0) + took
    if not per:
        return []
    for log in sorted(log_dir.glob("build-venv-*.log")):  # each build lock's venv, made once
        took = sum(float(m) for m in re.findall(r"^\[exit -?[0-9]+ after ([0-9.]+) s\]$",
                                                   log.read_text(errors="replace"), re.MULTILINE))
        steps[f"{log.stem} (once)"] = took
    slow = sorted(per.items(), key=lambda kv: -kv[1])[:top]
    return [f"    sdist builds: {sum(per.values()):.1f} s of commands over {len(per)} builds; "
            f"slowest: " + ", ".join(f"{n} {s:.1f} s" for n, s in slow),
            "    by step: " + ", ".join(f"{k} {v:.1f} s" for k, v in
                                        sorted(steps.items(), key=lambda kv: -kv[1]))]


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values) + " s"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/run --from-scratch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--release", default="2026.1")
    p.add_argument("--dist", default=None, help="distribution (default: the release's first)")
    p.add_argument("--runs", type=int, default=1, help="locks per way (default 1)")
    p.add_argument("--skip-wheels", action="store_true", help="time the locks only")
    a = p.parse_args(argv)
    cfg = config_mod.load(ROOT / "pipeline.toml")
    scratch = Path(tempfile.mkdtemp(prefix="venvdeb-bench-release-",
                                    dir=os.environ.get("TMPDIR", "/var/tmp")))
    scratch.chmod(0o755)
    try:
        print(host.line(scratch), flush=True)
        times: dict[str, list[float]] = {w: [] for w, _ in WAYS}
        wheel_times: list[float] = []
        locks: dict[str, bytes] = {}
        entries = 0
        work = Workdir(scratch / "none")
        said = _Said()
        for i in range(a.runs):
            for way, prefetch in WAYS:
                work = Workdir(scratch / f"lock-{prefetch}-{i}")
                t = release_target(cfg, a.release, a.dist, work)
                lock.PREFETCH = prefetch
                start = time.monotonic()
                lock_stage.run_lock(cfg, work, t, scope="all", force=True)
                times[way].append(time.monotonic() - start)
                lock_file = work.lock_file(a.release, t.distribution.name)
                locks[way] = lock_file.read_bytes()
                entries = len(lock.parse_lock(lock_file))
                say(f"lock run {i + 1}/{a.runs}, {way}: {times[way][-1]:.1f} s, {entries} entries")
                # where the time went (piptools_compile's own lines: prefetch, sdists, hashes)
                lock_log = work.log(t.logs, "lock")
                if lock_log.exists():
                    for line in lock_log.read_text(errors="replace").splitlines():
                        if line.startswith("venvdeb: "):
                            say(f"  {line[len('venvdeb: '):]}")
            if a.skip_wheels:
                continue
            # the wheels, cold, in the workdir of venvdeb's lock (the last way) of this run
            start = time.monotonic()
            said = _Said()
            try:
                with contextlib.redirect_stderr(said):
                    wheels_stage.run_wheels(cfg, work, t, jobs=os.cpu_count() or 1)
            except VenvdebError as e:  # the locks' figures stand; the wheels' is missing
                print("\n".join([
                    f"  wheels: FAILED in run {i + 1} after {time.monotonic() - start:.1f} s: {e}",
                    f"target full release (lock + wheels) <= {TARGET:.0f} s: not measured "
                    f"(the wheels failed)"]), flush=True)
                return 1
            wheel_times.append(time.monotonic() - start)
            say(f"wheels run {i + 1}/{a.runs}: {wheel_times[-1]:.1f} s; lock + wheels "
                f"{times[WAYS[-1][0]][-1] + wheel_times[-1]:.1f} s")
        t = release_target(cfg, a.release, a.dist, work)
        base, ours = (w for w, _ in WAYS)
        lb, lo = statistics.median(times[base]), statistics.median(times[ours])
        same = len(set(locks.values())) == 1
        lines = [f"== {a.release} {t.distribution.name} --scope all from scratch ({entries} "
                 f"lock entries), cold, {os.cpu_count()} cores, median of {a.runs} ==",
                 f"  lock, {base:<40} {lb:>7.1f} s   runs: {_runs(times[base])}",
                 f"  lock, {ours:<40} {lo:>7.1f} s   runs: {_runs(times[ours])}   "
                 f"{lb / lo:.1f}x",
                 f"  the two locks are {'byte-identical' if same else 'DIFFERENT'}"]
        if not a.skip_wheels:
            records = wheelhouse_mod.read_manifest(work.wheelhouse(a.release, t.distribution.name))
            built = sum(r.origin == "built" for r in records)
            lines.append(f"  wheels ({len(records) - built} downloaded, {built} built from "
                         f"sdists){'':<13} {statistics.median(wheel_times):>7.1f} s   "
                         f"runs: {_runs(wheel_times)}")
            lines += [f"    last run: {x[len('wheels: '):]}" for x in said.lines
                      if x.startswith(("wheels: read the index", "wheels: build backends asked",
                                       "wheels: build locks"))]
            lines += slowest_builds(work.log_dir(t.logs, "wheels"),
                                    [r.name for r in records if r.origin == "built"])
            totals = [x + y for x, y in zip(times[ours], wheel_times, strict=True)]
            total = statistics.median(totals)
            met = total <= TARGET
            lines.append(f"target full release (lock + wheels) <= {TARGET:.0f} s: "
                         f"{'met' if met else 'MISSED'}: {total:.1f} s (median of "
                         f"{len(totals)}; runs: {_runs(totals)})"
                         + ("" if met else f", {total - TARGET:.0f} s over"))
        print("\n".join(lines), flush=True)
        return 0 if same else 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
