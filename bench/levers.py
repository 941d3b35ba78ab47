"""Each speed lever of venvdeb's recipe, measured on its own (bench/levers).

On the tree of a built venv package (the newest ``venv-<project>-<release>``
under the workdir, or the .deb given): the installer (bookworm's pip 23, the
requirements package's pip, uv) into a fresh venv offline from the same
wheels; bytecode compiled with one process or all cores; dh_strip_nondeterminism
over every file or without .py/.pyc/.whl/.gz/.zip; and ``dpkg-deb -b`` with xz
(debhelper's default) against zstd at several levels. Median of N runs each
(default 3); prints seconds and sizes side by side with the baseline's ratio.
Every command runs through venvdeb.core.runner; their output goes to
``<workdir>/logs/<release>/bench-levers.log``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "builder"))  # venvdeb, also without .venv's editable install

from venvdeb.core import runner  # noqa: E402
from venvdeb.core.workdir import Workdir  # noqa: E402

#: the caller's environment without pip, uv and Python settings (not runner's
#: clean_environment: the levers measure the tools as a shell would run them)
ENV = {**{k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "UV_", "PYTHON"))},
       "PIP_CONFIG_FILE": "/dev/null", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "LC_ALL": "C.UTF-8",
       "UV_NO_CONFIG": "1"}


#: where every command's output goes: <workdir>/logs/<release>/bench-levers.log (main sets it)
LOG = ROOT / "build" / "logs" / "bench-levers.log"


def run(argv: list[str], cwd: Path | None = None) -> None:
    r = runner.run(argv, cwd=cwd, env=ENV, log=LOG, check=False)
    if r.returncode != 0:
        raise SystemExit(f"bench/levers: {' '.join(argv)} failed (log: {LOG}):\n"
                         f"{r.output[-2000:]}")


def timed(fn: Callable[[], object], runs: int, before: Callable[[], object] = lambda: None
          ) -> float:
    times = []
    for _ in range(runs):
        before()
        start = time.monotonic()
        fn()
        times.append(time.monotonic() - start)
    return statistics.median(times)


def table(title: str, rows: list[tuple[str, float, str]]) -> list[str]:
    base = rows[0][1]
    out = [f"== {title} =="]
    width = max(len(r[0]) for r in rows)
    for name, t, extra in rows:
        out.append(f"  {name.ljust(width)}  {t:7.2f} s  {base / t:5.1f}x  {extra}".rstrip())
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/levers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("deb", nargs="?", type=Path, help="a venv .deb (default: the newest built)")
    p.add_argument("--release", default="2026.1")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--workdir", type=Path, default=ROOT / "build")
    a = p.parse_args(argv)
    debs = sorted(a.workdir.glob(f"releases/{a.release}/*/projects/*/venv-*.deb"),
                  key=lambda d: d.stat().st_mtime)
    deb = a.deb or (debs[-1] if debs else None)
    if deb is None:
        print("bench/levers: no venv package built: run bin/run-pipeline first", file=sys.stderr)
        return 1
    wheels = next(iter(sorted(a.workdir.glob(f"releases/{a.release}/*/wheelhouse/files"))), None)
    if wheels is None:
        print(f"bench/levers: no wheels of {a.release} under {a.workdir}: run bin/run-pipeline "
              f"first", file=sys.stderr)
        return 1
    global LOG
    LOG = Workdir(a.workdir.resolve()).fresh_log(a.release, "bench-levers")
    out: list[str] = [f"levers on {deb.name}, median of {a.runs} runs each, {os.cpu_count()} cores"]
    with tempfile.TemporaryDirectory(prefix="venvdeb-levers-") as tmp_:
        tmp = Path(tmp_)
        tree = tmp / "tree"
        run(["dpkg-deb", "-R", str(deb), str(tree)])
        [venv] = [d for d in (tree / "opt" / "venvs").iterdir()]
        site = next(venv.glob("lib/python3*/site-packages"))
        # what the venv holds from the wheel repository (not the pip venv seeds itself)
        have = {"-".join(w.name.split("-")[:2]).lower() for w in wheels.glob("*.whl")}
        pins = sorted(n.replace("-", "==", 1) for n in
                      (d.name[:-len(".dist-info")].lower() for d in site.glob("*.dist-info"))
                      if n in have)
        reqs = tmp / "requirements.txt"
        reqs.write_text("\n".join(pins) + "\n")
        fresh = tmp / "venv"

        def new_venv() -> None:
            shutil.rmtree(fresh, ignore_errors=True)
            run(["/usr/bin/python3", "-m", "venv", str(fresh)])

        uv_wheels = sorted(wheels.glob("uv-*.whl"))
        pip_wheels = sorted(wheels.glob("pip-*.whl"))
        rows: list[tuple[str, float, str]] = []
        common = ["--no-index", f"--find-links={wheels}", "--no-deps", "-r", str(reqs)]
        rows.append(("pip 23 (bookworm's ensurepip)", timed(
            lambda: run([str(fresh / "bin/python"), "-m", "pip", "install", "-q",
                         "--no-compile", *common]), a.runs, new_venv), ""))
        if pip_wheels:
            newer = tmp / "newer-pip"
            run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                 str(newer), str(pip_wheels[-1])])
            rows.append((f"{pip_wheels[-1].name.split('-')[1]} pip", timed(
                lambda: run([str(fresh / "bin/python"), str(newer / "pip"), "install", "-q",
                             "--no-compile", *common]), a.runs, new_venv), ""))
        if uv_wheels:
            uvdir = tmp / "uv"
            run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
                 str(uvdir), str(uv_wheels[-1])])
            uv = next(uvdir.glob("bin/uv"))
            rows.append((f"uv {uv_wheels[-1].name.split('-')[1]}", timed(
                lambda: run([str(uv), "pip", "install", "--python", str(fresh / "bin/python"),
                             "--offline", "--link-mode=copy", "--no-cache", *common]),
                a.runs, new_venv), ""))
        out += ["", *table(f"installer: {len(pins)} wheels into a fresh venv, offline, no bytecode",
                           rows)]

        def clean_pyc() -> None:
            run(["find", str(venv), "-name", "__pycache__", "-prune", "-exec", "rm", "-rf", "{}",
                 "+"])
        rows = []
        for jobs in ("1", "0"):
            rows.append((f"compileall -j{jobs}", timed(
                lambda j=jobs: run(["/usr/bin/python3", "-m", "compileall", "-q", "-f", f"-j{j}",
                                    "--invalidation-mode", "checked-hash", str(site)]),
                a.runs, clean_pyc), "-j0: one process per core"))
        out += ["", *table("bytecode", rows)]
        nfiles = sum(1 for _ in venv.rglob("*") if _.is_file())
        rows = []
        copy = tmp / "snd"

        def fresh_copy() -> None:
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(tree, copy, symlinks=True)
        for name, excl in (("dh_strip_nondeterminism, every file", []),
                           ("without .py .pyc .whl .gz .zip",
                            ["-X.py", "-X.pyc", "-X.whl", "-X.gz", "-X.zip"])):
            # dh_strip_nondeterminism works on debian/<package>/ of a source tree
            rows.append((name, timed(lambda ex=excl: _strip_nondeterminism(copy, ex), a.runs,
                                     fresh_copy), f"{nfiles} files"))
        out += ["", *table("dh_strip_nondeterminism", rows),
                "  venvdeb runs none: every file comes from a wheel (bench/run checks that two "
                "builds are byte-identical)"]
        rows = []
        target = tmp / "out.deb"
        for name, opts in (("xz (debhelper's default)", ["-Zxz"]),
                           *((f"zstd -{lvl}", ["-Zzstd", f"-z{lvl}"]) for lvl in (3, 6, 9, 12, 15,
                                                                                   19))):
            t = timed(lambda o=opts: run(["dpkg-deb", "--root-owner-group", *o, "-b", str(tree),
                                          str(target)]), a.runs)
            rows.append((name, t, f"{target.stat().st_size / 1e6:.1f} MB"))
        out += ["", *table("dpkg-deb -b compression", rows)]
    print("\n".join(out))
    return 0


def _strip_nondeterminism(root: Path, excludes: list[str]) -> None:
    """dh_strip_nondeterminism on ``root`` as the package tree of a minimal source."""
    src = root.parent / "snd-src"
    shutil.rmtree(src, ignore_errors=True)
    (src / "debian").mkdir(parents=True)
    (src / "debian" / "control").write_text("Source: bench\n\nPackage: bench\nArchitecture: any\n"
                                            "Description: bench\n bench\n")
    (src / "debian" / "changelog").write_text(
        "bench (1-1) unstable; urgency=medium\n\n  * bench\n\n -- b <b@b.invalid>  "
        "Thu, 01 Jan 2026 00:00:00 +0000\n")
    os.rename(root, src / "debian" / "bench")
    try:
        run(["dh_strip_nondeterminism", *excludes], cwd=src)
    finally:
        os.rename(src / "debian" / "bench", root)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
