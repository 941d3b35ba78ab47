"""Commit to staging: a stable commit lands in a project's upstream; how long until its
packages are in the staging codename, nothing else having changed (issue 17, item 1).

Needs a workdir where the bundled job ran (``./bin/run-pipeline``: ``build/``). In a
scratch copy of it (the original is never touched), the project's upstream becomes a
local git repository made from its orig tarball (tag = its version, branch
``stable/<release>``), so that ``venvdeb`` fetches it as it fetches an upstream's stable
branch. Each run adds one commit on that branch (a line in ``README.rst``, as a
backport changes a file) and runs, timed one by one, what a worker and the publisher run
for it: ``venvdeb source``, ``build --no-lintian``, the checks, ``publish``. The checks run
two ways, alternating commit by commit: one after the other as buildbot's steps ran
them before issue 17 (``check --only lintian``, then ``check --only install``), and at
once as ``venvdeb check``, the pipeline and buildbot's one checks step run them. The
first commit after the switch to git is a warm-up (its source differs from the PyPI
sdist's in more than one file), not counted.

Prints each step's wall time (median of the runs) for both ways, the totals, and the
target (<= 120 s on 2 cores) met or missed by how much. Never run by the tests.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import host

ROOT = Path(__file__).resolve().parent.parent
TARGET = 120.0
#: how the checks run: one after the other (buildbot's two steps before), or 'venvdeb check'
#: at once (the pipeline's and buildbot's one step now)
WAYS = {"one after the other": ("lintian", "install test"), "at once": ("check",)}


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def git(repo: Path, *args: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(repo.parent), "GIT_AUTHOR_NAME": "bench",
           "GIT_AUTHOR_EMAIL": "bench@venvdeb.invalid", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "bench@venvdeb.invalid", "LC_ALL": "C.UTF-8"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout


def upstream_repo(orig: Path, version: str, branch: str, into: Path) -> Path:
    """A git repository of the orig tarball's tree, tagged ``version`` on ``branch``."""
    into.mkdir(parents=True)
    subprocess.run(["tar", "-xzf", str(orig), "-C", str(into), "--strip-components=1"],
                   check=True)
    git(into, "init", "-q", "-b", branch)
    git(into, "add", "-A")
    git(into, "commit", "-q", "-m", f"{version} from {orig.name}")
    git(into, "tag", version)
    return into


def stable_commit(repo: Path, n: int) -> None:
    readme = next((p for p in (repo / "README.rst", repo / "README.md") if p.exists()),
                  repo / "README.rst")
    with readme.open("a") as out:
        out.write(f"\n.. bench: stable commit {n}\n")
    git(repo, "commit", "-q", "-am", f"bench: stable commit {n}")


def with_git_upstream(config: str, project: str, url: str, release: str, branch: str) -> str:
    """The config with ``[projects.<project>]`` fetched from ``url``'s ``branch``."""
    head = f"[projects.{project}]\n"
    if head not in config:
        raise SystemExit(f"bench: the config has no {head.strip()}")
    return config.replace(head, head + f'upstream = {{ git = "{url}", refs = {{ "{release}" = '
                                       f'"{branch}" }} }}\n', 1)


def report(a: argparse.Namespace, times: dict[tuple[str, str], list[float]],
           totals: dict[str, list[float]]) -> list[str]:
    lines = [f"== commit to staging: {a.project} ({a.release}, {a.dist}), a stable commit "
             f"of its upstream only, median of {a.runs} per way, {os.cpu_count()} cores =="]
    ways = list(WAYS)
    lines.append(f"  {'step':<13} " + "  ".join(f"{w:>20}" for w in ways))
    for step in ("source", "build", "lintian", "install test", "check", "publish"):
        cells = [f"{statistics.median(times[(w, step)]):18.1f} s" if (w, step) in times
                 else f"{'-':>20}" for w in ways]
        lines.append(f"  {step:<13} " + "  ".join(cells))
    medians = {w: statistics.median(totals[w]) for w in ways}
    lines.append(f"  {'total':<13} " + "  ".join(f"{medians[w]:18.1f} s" for w in ways))
    best = min(medians.values())
    lines.append(f"checks at once: {medians[ways[0]] - medians[ways[1]]:+.1f} s against one "
                 f"after the other ({medians[ways[0]] / medians[ways[1]]:.2f}x)")
    lines.append(f"target commit to staging <= {TARGET:.0f} s: "
                 f"{'met' if best <= TARGET else 'MISSED'}: {best:.1f} s"
                 + ("" if best <= TARGET else f", {best - TARGET:.1f} s over"))
    return lines


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="bench/commit-to-staging", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", default="keystone")
    p.add_argument("--release", default="2026.1")
    p.add_argument("--dist", default="bookworm")
    p.add_argument("--runs", type=int, default=2, help="timed commits (default 2)")
    p.add_argument("--workdir", type=Path, default=ROOT / "build",
                   help="a workdir where the bundled job ran (default: build/)")
    a = p.parse_args(argv)
    source = a.workdir.resolve()
    projects = source / "releases" / a.release / a.dist / "projects" / a.project
    origs = sorted(projects.glob(f"{a.project}_*.orig.tar.gz"))
    if not origs:
        raise SystemExit(f"bench: no orig tarball of {a.project} in {projects}: run "
                         f"./bin/run-pipeline (or venvdeb pipeline) first")
    version = origs[-1].name.split("_", 1)[1].removesuffix(".orig.tar.gz")
    scratch = Path(tempfile.mkdtemp(prefix="venvdeb-bench-commit-",
                                    dir=os.environ.get("TMPDIR")))
    try:
        speed = host.line(scratch)
        say(speed)
        work = scratch / "work"
        say(f"copying {source} (the original stays as it is)")
        subprocess.run(["cp", "-a", "--reflink=auto", str(source), str(work)], check=True)
        branch = f"stable/{a.release}"
        repo = upstream_repo(origs[-1], version, branch, scratch / "upstream" / a.project)
        config = scratch / "pipeline.toml"
        text = (ROOT / "pipeline.toml").read_text().replace(
            'requirements_dir = "', f'requirements_dir = "{ROOT}/')
        config.write_text(with_git_upstream(text, a.project, f"file://{repo}", a.release,
                                            branch))
        target = ("--release", a.release, "--dist", a.dist)
        venvdeb = [sys.executable, "-m", "venvdeb", "--config", str(config), "--workdir",
                   str(work)]
        commands = {
            "source": [*venvdeb, "source", a.project, *target, "--reason", "bench commit"],
            "build": [*venvdeb, "build", a.project, *target, "--no-lintian"],
            "lintian": [*venvdeb, "check", a.project, *target, "--only", "lintian"],
            "install test": [*venvdeb, "check", a.project, *target, "--only", "install"],
            "check": [*venvdeb, "check", a.project, *target],
            "publish": [*venvdeb, "publish", *target],
        }
        times: dict[tuple[str, str], list[float]] = {}
        totals: dict[str, list[float]] = {w: [] for w in WAYS}
        plan = [("one after the other", False)] + [(w, True) for _ in range(a.runs) for w in WAYS]
        for n, (way, counted) in enumerate(plan):
            stable_commit(repo, n)
            total = 0.0
            for step in ("source", "build", *WAYS[way], "publish"):
                start = time.monotonic()
                r = subprocess.run(commands[step], cwd=ROOT, capture_output=True, text=True,
                                   env=dict(os.environ))
                took = time.monotonic() - start
                if r.returncode != 0:
                    raise SystemExit(f"bench: {step} failed (exit {r.returncode}):\n"
                                     f"{r.stderr[-3000:]}")
                total += took
                if counted:
                    times.setdefault((way, step), []).append(took)
                said = (r.stdout.strip().splitlines() or [""])[-1][:160]
                say(f"commit {n} ({way}{'' if counted else ', warm-up'}): {step}: "
                    f"{took:.1f} s: {said}")
            if counted:
                totals[way].append(total)
        print("\n".join([speed, *report(a, times, totals)]))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
