"""The publisher's cost per upload and per promotion (buildbot-master/README.md,
"One publisher, many workers"; docs/scale.md extrapolates from it).

From a workdir where a project was built and checked (``./bin/run-pipeline``
makes ``build/``), for each distribution the project was built for: ``venvdeb
upload`` (the worker's side, timed apart), then on a fresh publisher workdir
holding only a signing key: ``venvdeb accept`` into an empty repository, the
same upload again (up to date), the next distribution's upload into the
repository that now holds the first, and ``venvdeb promote`` of each; repeated
``--runs`` times, each on a new publisher workdir. Prints medians, the upload's
size, and the repository's size at the end. Publishing is serialised (one
repository lock): a publisher takes at most 3600 / (accept time) uploads an
hour. Never run by the tests.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVDEB = ROOT / ".venv" / "bin" / "venvdeb"


def venvdeb(config: Path, workdir: Path, *args: str) -> float:
    """Run one venvdeb command; its wall time in seconds (a failure stops the bench)."""
    started = time.monotonic()
    result = subprocess.run([str(VENVDEB), "--config", str(config), "--workdir", str(workdir),
                             *args], capture_output=True, text=True)
    took = time.monotonic() - started
    if result.returncode != 0:
        sys.exit(f"bench/publisher: venvdeb {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return took


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "build",
                        help="where the project was built and checked (default: build/)")
    parser.add_argument("--config", type=Path, default=ROOT / "pipeline.toml")
    parser.add_argument("--release", default="2026.1")
    parser.add_argument("--project", default="keystone")
    parser.add_argument("--dist", action="append", default=None,
                        help="distributions built (default: each with a build of the project)")
    parser.add_argument("--runs", type=int, default=3)
    a = parser.parse_args()
    base = a.workdir / "releases" / a.release
    dists = a.dist or sorted(d.name for d in base.iterdir()
                             if (d / "projects" / a.project / "venvdeb-build.json").exists())
    if not dists:
        sys.exit(f"bench/publisher: no build of {a.project} {a.release} in {a.workdir}: run "
                 f"./bin/run-pipeline (or venvdeb build and check) first")
    scratch = Path(tempfile.mkdtemp(prefix="bench-publisher-", dir="/var/tmp"))
    try:
        uploads, worker = {}, {}
        for dist in dists:
            uploads[dist] = scratch / f"upload-{dist}"
            worker[dist] = venvdeb(a.config, a.workdir, "upload", a.project, "--release",
                                   a.release, "--dist", dist, "--to", str(uploads[dist]))
        keyed = scratch / "keyed"  # a publisher with its key made, its repository dropped
        venvdeb(a.config, keyed, "accept", str(uploads[dists[0]]), "--release", a.release,
                "--dist", dists[0], "--uploader", "bench")
        times: dict[str, list[float]] = {}
        for run in range(a.runs):
            pub = scratch / f"publisher-{run}"
            shutil.copytree(keyed / "keys", pub / "keys", symlinks=True,
                            ignore=shutil.ignore_patterns("S.*"))
            for i, dist in enumerate(dists):
                copy = scratch / f"in-{run}-{dist}"
                shutil.copytree(uploads[dist], copy)
                label = "accept into an empty repository" if i == 0 else \
                    f"accept beside {', '.join(dists[:i])}"
                times.setdefault(f"{label} ({dist})", []).append(venvdeb(
                    a.config, pub, "accept", str(copy), "--release", a.release, "--dist",
                    dist, "--uploader", "bench"))
                times.setdefault(f"the same upload again: up to date ({dist})", []).append(
                    venvdeb(a.config, pub, "accept", str(copy), "--release", a.release,
                            "--dist", dist, "--uploader", "bench"))
            for dist in dists:
                times.setdefault(f"promote ({dist})", []).append(venvdeb(
                    a.config, pub, "promote", "--release", a.release, "--dist", dist))
            repo_size = size((pub / "repo").resolve())
        print(f"publisher cost, {a.project} {a.release}, median of {a.runs} runs "
              f"(fresh publisher workdir each)")
        for dist in dists:
            print(f"  worker: venvdeb upload ({dist}): {worker[dist]:.1f} s, "
                  f"{size(uploads[dist]) / 1e6:.1f} MB in "
                  f"{len(list(uploads[dist].iterdir()))} files")
        for label, values in times.items():
            print(f"  publisher: {label}: {statistics.median(values):.1f} s "
                  f"(min {min(values):.1f}, max {max(values):.1f})")
        accept = [statistics.median(v) for k, v in times.items() if k.startswith("accept")]
        print(f"  repository at the end: {repo_size / 1e6:.1f} MB; serialised publishing: about "
              f"{3600 / max(accept):.0f} uploads an hour at the slowest accept")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
