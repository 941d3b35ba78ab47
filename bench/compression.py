"""Side by side: dpkg-deb -b of the same tree with xz (debhelper's default,
the baseline) and with venvdeb's gzip -1, alternating, median of N runs.
Commands run through venvdeb.core.runner, their output in build/logs/bench-compression.log."""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "builder"))

from venvdeb.core import runner  # noqa: E402
from venvdeb.debian.requirements_package import DPKG_DEB_OPTIONS  # noqa: E402

RECIPES = (("baseline (xz, debhelper default)", ["-Zxz"]),
           (f"venvdeb ({DPKG_DEB_OPTIONS})", DPKG_DEB_OPTIONS.split()))


def main(argv: list[str]) -> int:
    debs = sorted(Path("build").glob("releases/*/*/reqdeb/openstack-wheels-*.deb"),
                  key=lambda p: p.stat().st_mtime)
    deb = Path(argv[0]) if argv else (debs[-1] if debs else None)
    runs = int(argv[1]) if len(argv) > 1 else 3
    if deb is None or not deb.exists():
        print("no requirements deb: run bin/run-pipeline first, or pass a .deb", file=sys.stderr)
        return 1
    log = Path("build") / "logs" / "bench-compression.log"
    if log.exists():
        log.replace(log.with_name(log.name + ".1"))
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        env = dict(os.environ)  # the caller's, as before (e.g. DPKG_DEB_THREADS_MAX)
        runner.run(["dpkg-deb", "-R", str(deb), str(tree)], env=env, log=log)
        times: dict[str, list[float]] = {name: [] for name, _ in RECIPES}
        sizes: dict[str, int] = {}
        for run in range(runs):
            for name, options in RECIPES:
                out = Path(tmp) / "out.deb"
                start = time.monotonic()
                runner.run(["dpkg-deb", "--root-owner-group", *options, "-b", str(tree), str(out)],
                           env=env, log=log)
                times[name].append(time.monotonic() - start)
                sizes[name] = out.stat().st_size
                print(f"run {run + 1}/{runs} {name}: {times[name][-1]:.2f} s", file=sys.stderr)
    print(f"{deb.name}, median of {runs} runs each, alternating")
    print(f"{'recipe':<36} {'seconds':>8} {'MB':>8}")
    for name, _ in RECIPES:
        print(f"{name:<36} {statistics.median(times[name]):>8.2f} {sizes[name] / 1e6:>8.1f}")
    (base, _), (ours, _) = RECIPES
    speed = statistics.median(times[base]) / statistics.median(times[ours])
    print(f"speed-up {speed:.1f}x, size ratio {sizes[ours] / sizes[base]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
