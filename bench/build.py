"""venvdeb's recipe against the reference dh-virtualenv recipe, side by side.

One project, one version, one requirements package; the two recipes differ
only in debian/rules' speed-related parts (``bench/reference/rules.j2``
extends the product's template and replaces its ``install``, ``finish`` and
``speed`` blocks with what dh-virtualenv documents: ``dh_virtualenv --python
/usr/bin/python3`` with bookworm's virtualenv and pip, debhelper's defaults:
xz, dh_strip_nondeterminism, dbgsym, dwz). Both build offline
(``unshare -n dpkg-buildpackage -b``) against the same wheels, alternating,
each run in a new directory. Then, in clean chroots, ``apt-get install`` of
the built packages against ``pip install --no-index`` of the same closure into
a fresh venv, and a no-op ``venvdeb pipeline`` rerun. Prints medians and ratios
and each target, met or missed by how much. Never run by the tests.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402
from builder.check import cache_root, candidates_repo  # noqa: E402
from builder.pipeline import leaves  # noqa: E402
from builder.workdir import Workdir  # noqa: E402

from builder import chroot, command, debbuild, render, stages  # noqa: E402
from builder import config as config_mod  # noqa: E402

#: a line of the build log that starts a stage -> the stage's name
MARKERS = (
    (re.compile(r"^   debian/rules (?:override|execute_before|execute_after)_(dh_[a-z0-9_]+)"),
     None),
    (re.compile(r"^   (dh_[a-z0-9_]+)"), None),
    (re.compile(r"^dh_virtualenv "), "dh_virtualenv"),
    (re.compile(r"finish-venv\.py"), "venvdeb: finish venv"),
    (re.compile(r"-m compileall"), "bytecode (compileall)"),
    (re.compile(r"oslo-config-generator|^install -D -m 0644"), "config files"),
)
RECIPES = ("reference", "venvdeb")


@dataclass
class Run:
    recipe: str
    total: float
    stages: dict[str, float]
    debs: dict[str, int]  # file name -> size
    out: Path


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, recipe: str) -> list[Run]:
        return [r for r in self.runs if r.recipe == recipe]

    def median(self, recipe: str, stage: str | None = None) -> float:
        values = [r.total if stage is None else r.stages.get(stage, 0.0) for r in self.of(recipe)]
        return statistics.median(values) if values else 0.0


def say(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _stage_of(line: str) -> str | None:
    for pattern, name in MARKERS:
        m = pattern.search(line)
        if m:
            return name or m.group(1)
    return None


def timed_build(tree: Path, env: dict[str, str], log: Path) -> tuple[float, dict[str, float]]:
    """dpkg-buildpackage -b with the network cut; wall time per stage from its output."""
    stages_: dict[str, float] = {}
    current, since = "dpkg-buildpackage (setup)", time.monotonic()
    start = since
    with log.open("w") as out:
        proc = subprocess.Popen(["unshare", "-n", "--", "dpkg-buildpackage", "-b", "-us", "-uc",
                                 "--no-sign"], cwd=tree, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            name = _stage_of(line.rstrip("\n"))
            if name and name != current:
                now = time.monotonic()
                stages_[current] = stages_.get(current, 0.0) + now - since
                current, since = name, now
        code = proc.wait()
    now = time.monotonic()
    stages_[current] = stages_.get(current, 0.0) + now - since
    if code != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(True)[-25:])
        raise SystemExit(f"bench: the build in {tree} failed (exit {code}):\n{tail}")
    return now - start, stages_


def reference_rules(context: dict[str, object]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(
        [str(ROOT / "bench" / "reference"), str(render.TEMPLATES / "venv")]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.get_template("reference-rules.j2").render(**context)


def build_once(recipe: str, dsc: Path, rules: str | None, epoch: int, into: Path) -> Run:
    into.mkdir(parents=True)
    tree = into / "src"
    subprocess.run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], check=True,
                   stdout=subprocess.DEVNULL)
    if rules is not None:
        (tree / "debian" / "rules").write_text(rules)
    env = command.clean_environment({"SOURCE_DATE_EPOCH": str(epoch),
                                     "DEB_BUILD_OPTIONS": "nocheck"})
    total, split = timed_build(tree, env, into / "build.log")
    debs = {d.name: d.stat().st_size for d in sorted(into.glob("*.deb"))}
    return Run(recipe, total, split, debs, into)


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


def report_builds(res: Results, project: str, runs: int, venv_package: str) -> list[str]:
    lines = [f"== {project}: build, median of {runs} runs per recipe, alternating "
             f"(reference, venvdeb), offline, {os.cpu_count()} cores =="]
    names = sorted({s for r in res.runs for s in r.stages},
                   key=lambda s: -max(res.median(x, s) for x in RECIPES))
    rows = [("stage", "reference", "venvdeb", "ratio")]
    for s in names:
        a, b = res.median("reference", s), res.median("venvdeb", s)
        if max(a, b) < 0.5:
            continue
        ratio = f"{a / b:.1f}x" if b >= 0.05 and a >= 0.05 else (
            "not run by venvdeb" if a >= 0.05 else "venvdeb only")
        rows.append((s, f"{a:.1f} s", f"{b:.1f} s", ratio))
    a, b = res.median("reference"), res.median("venvdeb")
    rows.append(("total", f"{a:.1f} s", f"{b:.1f} s", f"{a / b:.1f}x"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in rows]
    lines.append("")
    for recipe in RECIPES:
        last = res.of(recipe)[-1]
        lines.append(f"{recipe} packages:")
        lines += [f"  {name}  {_mb(size)}" for name, size in last.debs.items()]
    ref_venv = _venv_size(res.of("reference")[-1], venv_package)
    our_venv = _venv_size(res.of("venvdeb")[-1], venv_package)
    lines.append(f"venv package size: reference {_mb(ref_venv)}, venvdeb {_mb(our_venv)}: "
                 f"{our_venv / ref_venv:.2f}x")
    return lines


def _venv_size(run: Run, venv_package: str) -> int:
    return sum(s for n, s in run.debs.items()
               if n.startswith(venv_package + "_"))


def reproducible(res: Results) -> list[str]:
    ours = res.of("venvdeb")
    if len(ours) < 2:
        return ["reproducibility: needs 2 runs"]
    a, b = ours[0].out, ours[1].out
    differ = []
    for deb in sorted(a.glob("*.deb")):
        other = b / deb.name
        if not other.exists() or deb.read_bytes() != other.read_bytes():
            differ.append(f"{deb.name}: {', '.join(debbuild.differences(deb, other)[:5])}")
    if differ:
        return [f"reproducibility: MISSED: {len(differ)} packages differ between two builds "
                f"in different directories:", *("  " + d for d in differ)]
    return [f"reproducibility: met: all {len(list(a.glob('*.deb')))} venvdeb packages are "
            f"byte-identical across two builds in different directories"]


def target(name: str, ok: bool, detail: str) -> str:
    return f"target {name}: {'met' if ok else 'MISSED'}: {detail}"


# --- node install --------------------------------------------------------------------------

def node_install(cfg: config_mod.Config, dist_name: str, project: str, release: str,
                 run: Run, wheels_files: Path, requirements: Path, project_wheel: Path,
                 runs: int, log: Path) -> tuple[list[float], list[float]]:
    dist = cfg.distributions[dist_name]
    image = chroot.tarball(dist.name, dist.architecture, dist.mirror, cache_root() / "chroot", log)
    leaf = leaves(cfg.projects[project])
    apt_times: list[float] = []
    pip_times: list[float] = []
    debs = tuple(sorted(run.out.glob("*.deb")))
    with tempfile.TemporaryDirectory(prefix="venvdeb-bench-") as tmp:
        cand = Path(tmp) / "repo"
        candidates_repo(debs, cand, log)
        stage = Path(tmp) / "pip"
        stage.mkdir()
        shutil.copy(requirements, stage / "requirements.txt")
        shutil.copy(project_wheel, stage / project_wheel.name)
        binds = [chroot.Bind(cand, "/srv/candidates"), chroot.Bind(wheels_files, "/srv/wheels"),
                 chroot.Bind(stage, "/srv/pip")]
        for i in range(runs):
            for how in ("apt", "pip"):
                with chroot.session(image, log, binds,
                                    apt_cache=cache_root() / "apt-archives") as box:
                    (box.root / "etc/apt/sources.list.d/bench.list").write_text(
                        "deb [trusted=yes] file:/srv/candidates ./\n")
                    box.sh("apt-get update -q", what="apt-get update")
                    # what both need from Debian, installed before the clock starts
                    box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                             "python3-venv", "adduser"], what="python3-venv")
                    deps = box.sh("apt-get install -y -q --no-install-recommends -s "
                                  f"{' '.join(leaf)} | awk '/^Inst /{{print $2}}'",
                                  what="dependencies").output.split()
                    ours = {d.name.split("_")[0] for d in debs}
                    debian = [d for d in deps if d not in ours]
                    if debian:
                        box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                 *debian], what="Debian dependencies")
                    start = time.monotonic()
                    if how == "apt":
                        box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                                 *leaf], what="apt-get install (timed)")
                        apt_times.append(time.monotonic() - start)
                    else:
                        box.sh("python3 -m venv /opt/venvs/bench && PIP_CONFIG_FILE=/dev/null "
                               "/opt/venvs/bench/bin/pip install -q --no-index "
                               "--find-links=/srv/wheels -r /srv/pip/requirements.txt",
                               what="pip install (timed)")
                        pip_times.append(time.monotonic() - start)
                    say(f"node install run {i + 1}/{runs} {how}: "
                        f"{(apt_times if how == 'apt' else pip_times)[-1]:.1f} s")
    return apt_times, pip_times


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="bench/run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--project", default="keystone", help="project to build (default: keystone)")
    p.add_argument("--full", action="store_true", help="nova instead of keystone")
    p.add_argument("--release", default="2026.1")
    p.add_argument("--runs", type=int, default=3, help="builds per recipe (default 3)")
    p.add_argument("--install-runs", type=int, default=3, help="node installs each (default 3)")
    p.add_argument("--workdir", type=Path, default=ROOT / "build",
                   help="venvdeb workdir holding the release's wheels (default: build/)")
    p.add_argument("--skip-install", action="store_true", help="no node install timing")
    p.add_argument("--skip-pipeline", action="store_true", help="no no-op pipeline timing")
    a = p.parse_args(argv)
    project = "nova" if a.full else a.project
    cfg = config_mod.load(ROOT / "pipeline.toml")
    work = Workdir(a.workdir.resolve())
    t = stages.target(cfg, a.release, None, work)
    say(f"preparing {project} {a.release}: lock, wheels, requirements package, source package")
    for line in (stages.run_lock(cfg, work, t), stages.run_wheels(cfg, work, t, jobs=os.cpu_count() or 1),
                 stages.run_reqdeb(cfg, work, t)):
        say(line)
    src = stages.run_source(cfg, work, t, project)
    log = work.log(a.release, "bench")
    log.parent.mkdir(parents=True, exist_ok=True)
    debbuild.ensure_installed(src.reqdeb_package, src.reqdeb_version, src.reqdeb_deb, log)
    rules = reference_rules(dict(src.plan.context))
    res = Results()
    scratch = Path(tempfile.mkdtemp(prefix="venvdeb-bench-", dir=os.environ.get("TMPDIR")))
    try:
        for i in range(a.runs):
            for recipe in RECIPES:
                say(f"build {i + 1}/{a.runs}: {recipe} recipe")
                run = build_once(recipe, src.dsc, rules if recipe == "reference" else None,
                                 src.plan.epoch, scratch / f"{recipe}-{i}")
                res.runs.append(run)
                say(f"build {i + 1}/{a.runs}: {recipe}: {run.total:.1f} s")
        lines = report_builds(res, f"{project} {src.plan.upstream_version} ({a.release})",
                              a.runs, src.plan.venv_package)
        ratio = res.median("reference") / res.median("venvdeb")
        size_ratio = (_venv_size(res.of("venvdeb")[-1], src.plan.venv_package)
                      / _venv_size(res.of("reference")[-1], src.plan.venv_package))
        lines += ["", *reproducible(res)]
        lines.append(target("build >= 8x faster (set for nova)", ratio >= 8,
                            f"{ratio:.1f}x" + ("" if ratio >= 8 else f", {8 / ratio:.2f}x short")))
        lines.append(target("venv .deb <= 1.15x the reference's", size_ratio <= 1.15,
                            f"{size_ratio:.2f}x"))
        print("\n".join(lines), flush=True)
        lines = []
        if not a.skip_install:
            wheels_files = Path(f"/usr/share/venvdeb/wheels/{a.release}/files")
            wheel_dir = scratch / "project-wheel"
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                            f"--find-links={wheels_files}", "-w", str(wheel_dir),
                            str(src.plan.orig)], check=True,
                           env=command.clean_environment({"PBR_VERSION": src.plan.upstream_version}))
            [project_wheel] = wheel_dir.glob("*.whl")
            # the closure, hash-pinned as the venv package installs it, plus the project
            reqs = scratch / "requirements.txt"
            digest = hashlib.sha256(project_wheel.read_bytes()).hexdigest()
            reqs.write_text(next(v for k, v in src.plan.files
                                 if k == "debian/venvdeb/requirements.txt")
                            + f"/srv/pip/{project_wheel.name} --hash=sha256:{digest}\n")
            apt_t, pip_t = node_install(cfg, t.distribution.name, project, a.release,
                                        res.of("venvdeb")[-1], wheels_files, reqs, project_wheel,
                                        a.install_runs, log)
            am, pm = statistics.median(apt_t), statistics.median(pip_t)
            lines += ["", f"== node install of {project}, clean chroot, median of "
                          f"{a.install_runs} each (Debian's own dependencies preinstalled) ==",
                      f"  apt-get install {' '.join(leaves(cfg.projects[project]))}: {am:.1f} s",
                      f"  python3 -m venv + pip install --no-index (same closure, project as a "
                      f"wheel): {pm:.1f} s",
                      target("apt-get install >= 3x faster than pip", pm / am >= 3,
                             f"{pm / am:.1f}x")]
            print("\n".join(lines), flush=True)
            lines = []
        if not a.skip_pipeline:
            venvdeb = [sys.executable, "-m", "venvdeb", "--workdir", str(work.root), "pipeline"]
            subprocess.run(venvdeb, check=True, capture_output=True, cwd=ROOT)
            times = []
            for _ in range(3):
                start = time.monotonic()
                subprocess.run(venvdeb, check=True, capture_output=True, cwd=ROOT)
                times.append(time.monotonic() - start)
            m = statistics.median(times)
            lines += ["", f"== no-op 'venvdeb pipeline' rerun on the bundled config: {m:.1f} s "
                          f"(median of 3) ==", target("no-op rerun < 5 s", m < 5, f"{m:.1f} s")]
        print("\n".join(lines))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
