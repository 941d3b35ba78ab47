"""venvdeb's recipe against the reference dh-virtualenv recipe, side by side.

One project, one version, one requirements package; the two recipes differ
only in debian/rules' speed-related parts (``bench/reference/reference-rules.j2``
extends the product's template and replaces its ``install``, ``finish`` and
``speed`` blocks with what dh-virtualenv documents: ``dh_virtualenv --python
/usr/bin/python3`` with bookworm's virtualenv and pip, debhelper's defaults:
xz, dh_strip_nondeterminism, dbgsym, dwz). Both build offline
(``unshare -n dpkg-buildpackage -b``) against the same wheels, alternating,
each run in a new directory; each build's output is split into per-stage
wall times as it comes (venvdeb.core.runner's ``on_line``). The source package
is written into a scratch directory with the version the workdir's ledger
gives it or would give it (``project.peek_version``): bench records no
version. Then, in clean chroots, ``apt-get install`` of the built packages
against ``pip install --no-index`` of the same closure into a fresh venv, and
a no-op ``venvdeb pipeline`` rerun. Prints medians and ratios and each target,
met or missed by how much. Never run by the tests.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "builder"))  # venvdeb, also without .venv's editable install

import host  # noqa: E402  (bench/host.py, beside this file)
import jinja2  # noqa: E402
from debian.debfile import DebFile  # noqa: E402

from venvdeb.core import config as config_mod  # noqa: E402
from venvdeb.core import images, ledger, mounts, render, runner  # noqa: E402
from venvdeb.core.errors import CommandFailed  # noqa: E402
from venvdeb.core.files import sha256  # noqa: E402
from venvdeb.core.target import Target  # noqa: E402
from venvdeb.core.target import target as release_target  # noqa: E402
from venvdeb.core.workdir import Workdir, shared_cache  # noqa: E402
from venvdeb.debian import builders, requirements_package, source_package  # noqa: E402
from venvdeb.debian import project as debian_project  # noqa: E402
from venvdeb.pipeline import leaves  # noqa: E402
from venvdeb.python import bytecode  # noqa: E402
from venvdeb.qa import candidates, chroot  # noqa: E402
from venvdeb.stages import lock as lock_stage  # noqa: E402
from venvdeb.stages import reqdeb as reqdeb_stage  # noqa: E402
from venvdeb.stages import wheels as wheels_stage  # noqa: E402

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
#: what the local builder runs, timed here stage by stage (as root, in the view that
#: shows the requirements package's wheels: builders.dependency_view)
BUILD = builders.BUILD


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


#: apt-get install's phases, by the lines dpkg and apt print as each starts
APT_MARKERS = (
    (re.compile(r"^(?:Preparing to unpack|Selecting previously unselected)"), "dpkg: unpack"),
    (re.compile(r"^Setting up "), "dpkg: configure (maintainer scripts)"),
    (re.compile(r"^Processing triggers for "), "dpkg: triggers"),
)
Markers = tuple[tuple[re.Pattern[str], str | None], ...]


def _stage_of(line: str, markers: Markers = MARKERS) -> str | None:
    for pattern, name in markers:
        m = pattern.search(line)
        if m:
            return name or m.group(1)
    return None


class StageClock:
    """Wall time per stage: a stage runs from the line that starts it (``markers``) to
    the line that starts the next one, the last until ``stop``."""

    def __init__(self, markers: Markers = MARKERS,
                 first: str = "dpkg-buildpackage (setup)") -> None:
        self.markers = markers
        self.stages: dict[str, float] = {}
        self.current = first
        self.start = self.since = time.monotonic()

    def _switch(self, name: str) -> float:
        now = time.monotonic()
        self.stages[self.current] = self.stages.get(self.current, 0.0) + now - self.since
        self.current, self.since = name, now
        return now

    def on_line(self, line: str) -> None:
        """The runner's per-line callback: called as each line is produced."""
        name = _stage_of(line.rstrip("\n"), self.markers)
        if name and name != self.current:
            self._switch(name)

    def stop(self) -> float:
        """Close the current stage; the total wall time."""
        return self._switch(self.current) - self.start


def timed_build(tree: Path, env: dict[str, str], log: Path,
                view: mounts.View) -> tuple[float, dict[str, float]]:
    """dpkg-buildpackage -b with the network cut; wall time per stage from its output."""
    clock = StageClock()
    result = runner.run(view.wrap(BUILD), cwd=tree, env=env, log=log, check=False,
                        on_line=clock.on_line,
                        what="dpkg-buildpackage (offline, unshare -n)")
    total = clock.stop()
    if result.returncode != 0:
        tail = "".join(result.output.splitlines(True)[-25:])
        raise SystemExit(f"bench: the build in {tree} failed (exit {result.returncode}):\n{tail}")
    return total, clock.stages


def reference_rules(context: dict[str, object]) -> str:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(
        [str(ROOT / "bench" / "reference"), str(render.TEMPLATES / "venv")]),
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    # the product's quoting filters, which its rules.j2 uses outside the replaced blocks
    env.filters.update(sh=render.shell_word, systemd=render.systemd_word,
                       systemd_text=render.systemd_text)
    return env.get_template("reference-rules.j2").render(**context)


def build_once(recipe: str, dsc: Path, rules: str | None, epoch: int, into: Path,
               view: mounts.View) -> Run:
    into.mkdir(parents=True)
    tree = into / "src"
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(epoch),
                                    "DEB_BUILD_OPTIONS": "nocheck"})
    runner.run(["dpkg-source", "--no-check", "-x", str(dsc), str(tree)], env=env,
               log=into / "source.log", what="dpkg-source -x")
    if rules is not None:
        (tree / "debian" / "rules").write_text(rules)
    total, split = timed_build(tree, env, into / "build.log", view)
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
            differ.append(f"{deb.name}: {', '.join(builders.differences(deb, other)[:5])}")
    if differ:
        return [f"reproducibility: MISSED: {len(differ)} packages differ between two builds "
                f"in different directories:", *("  " + d for d in differ)]
    return [f"reproducibility: met: all {len(list(a.glob('*.deb')))} venvdeb packages are "
            f"byte-identical across two builds in different directories"]


def target(name: str, ok: bool, detail: str) -> str:
    return f"target {name}: {'met' if ok else 'MISSED'}: {detail}"


# --- node install --------------------------------------------------------------------------

#: the node-install variants, alternating within each run: apt-get as a node runs it
#: (the venv package's postinst compiles its bytecode, as py3compile does for Debian's
#: python3 packages), the same with dpkg's fsyncs off (what they cost), the venv package
#: repacked with its bytecode compiled at build time and no maintainer scripts (how
#: venvdeb shipped it before), the venv package's files alone written by ``dpkg-deb -x``
#: (no dpkg database, no fsync: the floor of any unpack), and pip into a fresh venv
INSTALL_WAYS = ("apt", "apt, dpkg --force-unsafe-io", "apt, bytecode shipped in the package",
                "files only (dpkg-deb -x)", "pip")
WAY_SHIPPED, WAY_FILES = INSTALL_WAYS[2], INSTALL_WAYS[3]


@dataclass
class Install:
    way: str
    total: float
    stages: dict[str, float]


def with_bytecode(deb: Path, into: Path, venv_path: str, image: Path, log: Path
                  ) -> tuple[Path, int]:
    """``deb`` repacked into ``into`` as venvdeb's rules built it before the node compiled
    the bytecode: the modules its postinst compiles (all but the wheels' test suites),
    compiled for ``venv_path`` with hashes (compileall -j0 in a clean chroot of the
    distribution, its own python3), their md5sums lines added, no
    postinst or prerm, compressed as the rules compress; how many .pyc files it added."""
    tree = into / "tree"
    runner.run(["dpkg-deb", "-R", str(deb), str(tree)], log=log, what="dpkg-deb -R")
    uid, gid = mounts.subordinate()  # root of the chroot writes the bytecode
    runner.run(["chown", "-R", f"{uid}:{gid}", str(tree)], log=log, what="chown (repack)")
    with chroot.session(image, log, [chroot.Bind(tree, "/srv/tree", writable=True)],
                        apt_cache=shared_cache() / "apt-archives") as box:
        box.sh("apt-get update -q", what="apt-get update", network=True)
        box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends", "python3"],
                what="python3", network=True)
        box.run(["python3", "-m", "compileall", "-q", "-f", "-j0", "-d", f"{venv_path}/lib",
                 "--invalidation-mode", "checked-hash", "-x", bytecode.UNCOMPILED,
                 f"/srv/tree{venv_path}/lib"],
                what="compileall (the bytecode the package ships)")
    added = sorted(tree.rglob("*.pyc"))  # all of them: the package as built holds none
    with (tree / "DEBIAN" / "md5sums").open("a") as sums:
        for pyc in added:
            digest = hashlib.md5(pyc.read_bytes()).hexdigest()  # noqa: S324 (dpkg's md5sums)
            sums.write(f"{digest}  {pyc.relative_to(tree).as_posix()}\n")
    for script in ("postinst", "prerm"):
        (tree / "DEBIAN" / script).unlink(missing_ok=True)
    out = into / deb.name
    runner.run(["dpkg-deb", "--root-owner-group", "-Zzstd",
                f"-z{source_package.ZSTD_LEVEL}", "-b", str(tree), str(out)],
               log=log, what="dpkg-deb -b (with bytecode)")
    shutil.rmtree(tree)
    return out, len(added)


#: where the node installs' chroots are unpacked (``--node-disk``)
NODE_DISKS = {
    "host": "this host's own filesystem (TMPDIR, or /tmp)",
    "new": "a new ext4 filesystem made for the bench (a sparse image, loop-mounted), "
           "as a node's own disk",
}
#: the sparse image behind ``--node-disk new``: room for a chroot with nova installed
NODE_DISK_SIZE = "40G"


@contextmanager
def node_disk(kind: str, scratch: Path, log: Path) -> Iterator[None]:
    """The chroots made inside (``chroot.session`` makes them under TMPDIR) on the
    disk ``kind`` names. ``new``: a new ext4 filesystem, loop-mounted for the duration:
    this host's root filesystem has been written for months, and creating files there
    costs system time a node's own disk does not have (nova's 12,000 files by
    ``dpkg-deb -x``: 16.3 s, 15.7 s of it system time, against 1.2 s on a new ext4 on
    the same device; measured 2026-12-03)."""
    if kind == "host":
        yield
        return
    image = scratch / "node-disk.img"
    # not under ``scratch`` (mode 700): the chroots' mapped root must pass to its tree
    mnt = Path(tempfile.mkdtemp(prefix="venvdeb-node-disk-"))
    before = os.environ.get("TMPDIR")
    try:  # the mount point goes even when mkfs or mount fail
        runner.run(["truncate", "-s", NODE_DISK_SIZE, str(image)], log=log, what="truncate")
        runner.run(["mkfs.ext4", "-q", "-F", str(image)], log=log, what="mkfs.ext4 (node disk)")
        runner.run(["mount", "-o", "loop", str(image), str(mnt)], log=log,
                   what="mount (node disk)")
        mnt.chmod(0o1777)  # the new filesystem's root, as /tmp
        os.environ["TMPDIR"] = str(mnt)  # chroots only: commands in them get TMPDIR=/tmp
        yield
    finally:
        if before is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = before
        runner.run(["umount", str(mnt)], log=log, what="umount (node disk)", check=False)
        image.unlink(missing_ok=True)
        mnt.rmdir()


def node_install(cfg: config_mod.Config, dist_name: str, project: str, release: str,
                 run: Run, venv_package: str, venv_path: str, wheels_files: Path,
                 requirements: Path, project_wheel: Path, runs: int, log: Path,
                 disk: str = "host") -> list[Install]:
    """Each way ``runs`` times in a fresh clean chroot on ``disk`` (``NODE_DISKS``),
    the setup (Debian's own dependencies) before the clock and flushed to disk
    (``sync``: the chroot's unpacking leaves hundreds of MB of dirty pages that
    dpkg's fsyncs would otherwise wait for); apt-get's time split by the lines dpkg
    prints as each phase starts."""
    dist = cfg.distributions[dist_name]
    image = images.tarball("minbase", dist.name, dist.architecture, dist.mirror,
                           shared_cache() / "chroot", log, what="mmdebstrap (install-test chroot)")
    leaf = leaves(cfg.projects[project])
    debs = tuple(sorted(run.out.glob("*.deb")))
    [venv_deb] = [d for d in debs if d.name.startswith(venv_package + "_")]
    with tempfile.TemporaryDirectory(prefix="venvdeb-bench-") as tmp:
        cand = Path(tmp) / "repo"
        candidates.repo(debs, cand, log)
        (Path(tmp) / "repack").mkdir()
        shipped, added = with_bytecode(venv_deb, Path(tmp) / "repack", venv_path, image, log)
        cand_shipped = Path(tmp) / "repo-with-bytecode"
        candidates.repo(tuple(shipped if d == venv_deb else d for d in debs), cand_shipped, log)
        say(f"node install: {venv_deb.name} {_mb(venv_deb.stat().st_size)}, with "
            f"{added} .pyc files compiled at build time {_mb(shipped.stat().st_size)}")
        stage = Path(tmp) / "pip"
        stage.mkdir()
        shutil.copy(requirements, stage / "requirements.txt")
        shutil.copy(project_wheel, stage / project_wheel.name)
        binds = [chroot.Bind(cand, "/srv/candidates"), chroot.Bind(wheels_files, "/srv/wheels"),
                 chroot.Bind(stage, "/srv/pip"), chroot.Bind(cand_shipped, "/srv/shipped")]
        with node_disk(disk, Path(tmp), log):
            done = _installs(image, log, binds, leaf, debs, venv_deb, runs)
    return done


def _installs(image: Path, log: Path, binds: list[chroot.Bind], leaf: tuple[str, ...],
              debs: tuple[Path, ...], venv_deb: Path, runs: int) -> list[Install]:
    done: list[Install] = []
    for i in range(runs):
        for how in INSTALL_WAYS:
            with chroot.session(image, log, binds,
                                apt_cache=shared_cache() / "apt-archives") as box:
                repo = "/srv/shipped" if how == WAY_SHIPPED else "/srv/candidates"
                (box.root / "etc/apt/sources.list.d/bench.list").write_text(
                    f"deb [trusted=yes] file:{repo} ./\n")
                box.sh("apt-get update -q", what="apt-get update", network=True)
                # what both need from Debian, installed before the clock starts
                box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                         "python3-venv", "adduser"], what="python3-venv", network=True)
                deps = box.sh("apt-get install -y -q --no-install-recommends -s "
                              f"{' '.join(leaf)} | awk '/^Inst /{{print $2}}'",
                              what="dependencies", network=True).output.split()
                ours = {d.name.split("_")[0] for d in debs}
                debian = [d for d in deps if d not in ours]
                if debian:
                    box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                             *debian], what="Debian dependencies", network=True)
                runner.run(["sync"], log=log, what="sync (the setup's writes)")
                if how.startswith("apt"):
                    clock = StageClock(APT_MARKERS, "apt: read lists, resolve")
                    unsafe = (["-o", "Dpkg::Options::=--force-unsafe-io"]
                              if "unsafe" in how else [])
                    box.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                             *unsafe, *leaf], what=f"apt-get install (timed: {how})",
                            on_line=clock.on_line)
                    total = clock.stop()
                    stages = dict(clock.stages)
                    done.append(Install(how, total, stages))
                elif how == WAY_FILES:
                    inside = f"/srv/candidates/{venv_deb.name}"
                    start = time.monotonic()
                    box.sh(f"dpkg-deb --fsys-tarfile {inside} >/dev/null",
                           what="dpkg-deb --fsys-tarfile (timed)")
                    read = time.monotonic()
                    box.run(["dpkg-deb", "-x", inside, "/var/tmp/files"],
                            what="dpkg-deb -x (timed)")
                    end = time.monotonic()
                    done.append(Install(how, end - read, {
                        "(before the clock) decompress only": read - start,
                        "decompress and write the venv package's files": end - read}))
                else:
                    start = time.monotonic()
                    box.sh("python3 -m venv /opt/venvs/bench", what="python3 -m venv")
                    made = time.monotonic()
                    box.sh("PIP_CONFIG_FILE=/dev/null /opt/venvs/bench/bin/pip install -q "
                           "--no-index --find-links=/srv/wheels -r /srv/pip/requirements.txt",
                           what="pip install (timed)")
                    end = time.monotonic()
                    done.append(Install(how, end - start, {
                        "python3 -m venv": made - start,
                        "pip install (and its bytecode)": end - made}))
                say(f"node install run {i + 1}/{runs} {how}: {done[-1].total:.1f} s")
    return done


def report_installs(done: list[Install], runs: int, project: str, leaf: tuple[str, ...],
                    venv_deb: Path, disk: str = "host") -> list[str]:
    lines = [f"== node install of {project}, clean chroot, median of {runs} each, "
             f"alternating (Debian's own dependencies preinstalled and synced to disk) ==",
             f"  on {NODE_DISKS[disk]} (--node-disk {disk})",
             f"  apt-get install {' '.join(leaf)}; pip: python3 -m venv + pip install "
             f"--no-index (same closure, the project as a wheel)"]
    medians = {}
    for way in INSTALL_WAYS:
        got = [d for d in done if d.way == way]
        medians[way] = statistics.median(d.total for d in got)
        seen = f"{min(d.total for d in got):.1f}-{max(d.total for d in got):.1f} s"
        lines.append(f"  {way:<36} {medians[way]:>6.1f} s   (runs: {seen})")
        for stage in sorted({s for d in got for s in d.stages}):
            m = statistics.median(d.stages.get(stage, 0.0) for d in got)
            lines.append(f"      {stage:<46} {m:>6.1f} s")
    apt, pip = medians["apt"], medians["pip"]
    fsync = apt - medians["apt, dpkg --force-unsafe-io"]
    lines.append(f"  dpkg's fsyncs cost {fsync:.1f} s of apt-get's {apt:.1f} s (median against "
                 f"median)")
    _, files = _deb_facts(venv_deb)
    unpack = statistics.median(d.stages.get("dpkg: unpack", 0.0) for d in done if d.way == "apt")
    floor = medians[WAY_FILES]
    lines.append(f"  dpkg's unpack {unpack:.1f} s against writing the venv package's {files:,} "
                 f"files alone {floor:.1f} s: dpkg's own work (its database, fsyncs, renames; "
                 f"and the leaf's other packages) {unpack - floor:.1f} s, "
                 f"{1000 * (unpack - floor) / files:.2f} ms per file")
    shipped = medians[WAY_SHIPPED]
    configure = statistics.median(d.stages.get("dpkg: configure (maintainer scripts)", 0.0)
                                  for d in done if d.way == "apt")
    lines.append(f"  dpkg's configure {configure:.1f} s of apt-get's {apt:.1f} s: the venv "
                 f"package's postinst compiling its bytecode, and the other packages' scripts")
    # a difference of medians inside the runs' spread decides nothing
    spread = max(max(d.total for d in done if d.way == w) - min(d.total for d in done
                                                                if d.way == w)
                 for w in ("apt", WAY_SHIPPED))
    verdict = ("a tie within the runs' spread (" + f"{spread:.1f} s): node install speed does "
               "not decide it; the package's size and build time do"
               if abs(apt - shipped) < spread else
               f"{'compile it on the node' if apt < shipped else 'ship it'} (node install "
               "speed wins over package size)")
    lines.append(f"  bytecode: compiled on the node (the postinst) {apt:.1f} s against shipped "
                 f"in the package {shipped:.1f} s ({shipped / apt:.2f}x): {verdict}")
    lines.append(target("apt-get install >= 5x faster than pip (median of 3)", pip / apt >= 5,
                        f"{pip / apt:.1f}x" + ("" if pip / apt >= 5 else
                                               f", {5 / (pip / apt):.2f}x short")))
    return lines


def requirements_stages(cfg: config_mod.Config, work: Workdir, t: Target) -> None:
    """The release's lock, wheels and requirements package (up to date: a few seconds)."""
    for outcome in (lock_stage.run_lock(cfg, work, t),
                    wheels_stage.run_wheels(cfg, work, t, jobs=os.cpu_count() or 1),
                    reqdeb_stage.run_reqdeb(cfg, work, t)):
        for line in outcome.lines():
            say(line)


@dataclass
class Prepared:
    plan: source_package.SourcePlan
    dsc: Path
    view: mounts.View
    dependencies: int


def prepare(cfg: config_mod.Config, work: Workdir, t: Target, project: str, scratch: Path,
            log: Path) -> Prepared:
    """``project``'s source package in ``scratch`` and the view of its requirements
    package. The version the ledger gives this source, or would give it: peeked, not
    recorded, and the .dsc written into the scratch directory, not the workdir."""
    ps = debian_project.plan(cfg, work, t, project, log)
    assigned = debian_project.peek_version(work, t, ps)
    the_plan = source_package.versioned(ps.draft, assigned)
    dsc = source_package.make(the_plan, scratch / f"source-{project}", log)
    say(f"source: {the_plan.source} {the_plan.version}"
        f"{' (a version the ledger would give; not recorded)' if assigned.new else ''}: "
        f"{ps.dependencies} dependencies, packages {', '.join(the_plan.packages)}")
    view = builders.dependency_view(
        (builders.BuildDependency(ps.reqdeb_deb, requirements_package.INSTALL_ROOT),),
        scratch / f"depends-{project}", log)
    return Prepared(the_plan, dsc, view, ps.dependencies)


# --- scaling -------------------------------------------------------------------------------

#: the projects of the closure table, smallest first (the fixture service: tests' index)
SCALING_PROJECTS = ("fixture-service", "keystone", "cloudkitty", "nova")


def _fixture_service(scratch: Path) -> tuple[config_mod.Config, Workdir, Target]:
    """The tests' fixture service (tests/data/fixture-service) in its fixture release,
    from the tests' own offline index: lock, wheels and requirements package made here."""
    sys.path.insert(0, str(ROOT))
    from tests.conftest import RELEASE, Project, open_to_all
    from tests.fixtures.make_index import build_index
    from tests.integration.test_venv_fixture import service_project
    base = scratch / "fixture"
    # pip-compile reads a file:// index as its sandbox user: the index open to all
    (shown := scratch / "fixture-index").mkdir()
    scratch.chmod(0o755)
    index = open_to_all(build_index(shown))
    (base / "checkout").mkdir(parents=True)
    project = service_project(Project(base / "checkout", index, base / "work"))
    cfg = config_mod.load(project.config)
    work = Workdir(project.workdir)
    t = release_target(cfg, RELEASE, None, work)
    requirements_stages(cfg, work, t)
    return cfg, work, t


def _deb_facts(deb: Path) -> tuple[int, int]:
    """Installed-Size (kB) of ``deb`` and how many regular files it ships."""
    d = DebFile(str(deb))
    files = sum(1 for m in d.data.tgz().getmembers() if m.isfile())
    return int(d.debcontrol().get("Installed-Size", "0")), files


def scaling(cfg: config_mod.Config, work: Workdir, t: Target, a: argparse.Namespace,
            scratch: Path, log: Path) -> list[str]:
    lines = [f"== scaling: venvdeb's build with the closure, median of {a.runs} builds each, "
             f"offline, {os.cpu_count()} cores ==",
             f"  {'project':<16} {'closure':>7} {'files':>7} {'build':>8} {'venv .deb':>10} "
             f"{'installed':>10} {'s per 1,000 more files':>23}"]
    # the smallest closure's build is the fixed cost (dpkg-buildpackage, the dh sequence):
    # the last column is what each 1,000 files more adds to it
    fixed: tuple[float, int] | None = None
    for project in SCALING_PROJECTS:
        c, w, tt = _fixture_service(scratch) if project == "fixture-service" else (cfg, work, t)
        prep = prepare(c, w, tt, project, scratch, w.log(tt.release.name, "bench"))
        times, run = [], None
        for i in range(a.runs):
            run = build_once("venvdeb", prep.dsc, None, prep.plan.epoch,
                             scratch / f"scaling-{project}-{i}", prep.view)
            times.append(run.total)
            say(f"scaling: {project} build {i + 1}/{a.runs}: {run.total:.1f} s")
        assert run is not None
        [venv] = [run.out / n for n in run.debs if n.startswith(prep.plan.venv_package + "_")]
        m = statistics.median(times)
        installed, files = _deb_facts(venv)
        lines.append(f"  {project:<16} {prep.dependencies:>7} {files:>7} {m:>6.1f} s "
                     f"{_mb(venv.stat().st_size):>10} {installed / 1e3:>7.1f} MB "
                     + (f"{'(the fixed cost)':>23}" if fixed is None else
                        f"{1000 * (m - fixed[0]) / max(files - fixed[1], 1):>21.2f} s"))
        fixed = fixed or (m, files)
    print("\n".join(lines), flush=True)
    return pipeline_scaling(cfg.pipeline_projects, work, t, scratch, log)


def _keep_verdicts_of_kept_files(work: Workdir) -> None:
    """Drop every check verdict but those of the .debs still in ``work`` (the
    requirements package): the projects' packages build byte-identical, so their old
    verdicts would skip the checks the table measures; the requirements package's
    lintian and install test are not a per-project cost."""
    kept = {sha256(deb) for deb in (work.root / "releases").rglob("*.deb") if deb.is_file()}
    with ledger.change(work.checks) as data:
        before = len(data)
        for digest in set(data) - kept:
            del data[digest]
        say(f"scaling: kept the check verdicts of {len(data)} of {before} checked files "
            f"(the requirements package's)")


def pipeline_scaling(projects: tuple[str, ...], work: Workdir, t: Target, scratch: Path,
                     log: Path) -> list[str]:
    """``venvdeb pipeline`` for the first 1..n of ``projects`` (the config's
    ``[pipeline] projects``: nova is not one, its install test needs a cloud),
    one distribution, at --build-jobs 1 and 2,
    each run on a fresh copy of the workdir without its project builds, their check
    verdicts and its repository (lock, wheels and requirements package warm, the
    requirements package's check verdicts kept): the wall time of source, build, checks
    and publish for that many projects."""
    release, dist = t.release.name, t.distribution.name
    base = scratch / "pipeline-base"
    say(f"scaling: copying {work.root} (without its project builds) to {base}")
    runner.run(["cp", "-a", "--reflink=auto", str(work.root), str(base)], log=log,
               what="cp -a (the workdir)")
    for tree in [*base.glob("releases/*/*/projects"), *base.glob("releases/*/*/uploads"),
                 base / "repo", base / "repo.d", base / "repo.lock",
                 base / "logs"]:
        if tree.is_symlink() or tree.is_file():  # repo: a link to its generation in repo.d
            tree.unlink()
        elif tree.is_dir():
            shutil.rmtree(tree)
    _keep_verdicts_of_kept_files(Workdir(base))
    rows: list[tuple[int, int, float | None]] = []
    for jobs in (1, 2):
        for n in range(1, len(projects) + 1):
            run_dir = scratch / f"pipeline-j{jobs}-n{n}"
            runner.run(["cp", "-a", "--reflink=auto", str(base), str(run_dir)], log=log,
                       what="cp -a (the base workdir)")
            argv = [sys.executable, "-m", "venvdeb", "--workdir", str(run_dir), "pipeline",
                    "--release", release, "--dist", dist, "--build-jobs", str(jobs),
                    *projects[:n]]
            start = time.monotonic()
            try:
                runner.run(argv, cwd=ROOT, env=dict(os.environ), log=log,
                           what=f"venvdeb pipeline ({n} projects, --build-jobs {jobs})")
            except CommandFailed as e:  # the other runs' figures stand; this one is missing
                rows.append((jobs, n, None))
                say(f"scaling: pipeline, {n} projects, --build-jobs {jobs}: FAILED after "
                    f"{time.monotonic() - start:.1f} s: {e} (log: {log})")
            else:
                rows.append((jobs, n, time.monotonic() - start))
                say(f"scaling: pipeline, {n} projects, --build-jobs {jobs}: "
                    f"{rows[-1][2]:.1f} s")
            shutil.rmtree(run_dir)
    lines = ["", f"== scaling: 'venvdeb pipeline --release {release} --dist {dist}' from a "
                 f"warm requirements package (source, build, checks, publish), "
                 f"{os.cpu_count()} cores ==",
             f"  {'projects':<28} {'--build-jobs 1':>15} {'--build-jobs 2':>15} {'1 / 2':>6}"]
    def cell(took: float | None) -> str:
        return f"{'FAILED':>15}" if took is None else f"{took:>13.1f} s"

    for n in range(1, len(projects) + 1):
        one = next(r[2] for r in rows if r[:2] == (1, n))
        two = next(r[2] for r in rows if r[:2] == (2, n))
        lines.append(f"  {', '.join(projects[:n]):<28} {cell(one)} {cell(two)} "
                     + (f"{one / two:>5.2f}x" if one and two else f"{'-':>6}"))
    return lines


def main(argv: list[str]) -> int:
    runner.interrupt_on_sigterm()  # a stopped bench stops the pipeline it runs, too
    if "--from-scratch" in argv:  # a full release's lock and wheels: bench/release.py
        sys.path.insert(0, str(ROOT / "bench"))
        import release
        return int(release.main([x for x in argv if x != "--from-scratch"]))
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
    p.add_argument("--node-disk", choices=tuple(NODE_DISKS), default="host",
                   help="where the node installs' chroots go: " + "; ".join(
                       f"{k}: {v}" for k, v in NODE_DISKS.items()) + " (default: host)")
    p.add_argument("--skip-pipeline", action="store_true", help="no no-op pipeline timing")
    p.add_argument("--from-scratch", action="store_true",
                   help="instead: a full release's lock (pip-compile as is, and with "
                        "venvdeb's prefetch) and wheels from scratch (bench/release.py; "
                        "--help after it for its options)")
    p.add_argument("--scaling", action="store_true",
                   help="instead: how build time and package size grow with the closure "
                        "(fixture service, keystone, cloudkitty, nova; --runs builds each), "
                        "and the pipeline's wall time with the number of projects at "
                        "--build-jobs 1 and 2 (a scratch copy of the workdir)")
    a = p.parse_args(argv)
    project = "nova" if a.full else a.project
    cfg = config_mod.load(ROOT / "pipeline.toml")
    work = Workdir(a.workdir.resolve())
    t = release_target(cfg, a.release, None, work)
    say(f"preparing {a.release}: lock, wheels, requirements package")
    requirements_stages(cfg, work, t)
    log = work.log(a.release, "bench")
    log.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="venvdeb-bench-", dir=os.environ.get("TMPDIR")))
    try:
        print(host.line(scratch), flush=True)
        if a.scaling:
            print("\n".join(scaling(cfg, work, t, a, scratch, log)), flush=True)
            return 0
        prepared = prepare(cfg, work, t, project, scratch, log)
        the_plan, dsc, view = prepared.plan, prepared.dsc, prepared.view
        rules = reference_rules(dict(the_plan.context))
        res = Results()
        for i in range(a.runs):
            for recipe in RECIPES:
                say(f"build {i + 1}/{a.runs}: {recipe} recipe")
                run = build_once(recipe, dsc, rules if recipe == "reference" else None,
                                 the_plan.epoch, scratch / f"{recipe}-{i}", view)
                res.runs.append(run)
                say(f"build {i + 1}/{a.runs}: {recipe}: {run.total:.1f} s")
        lines = report_builds(res, f"{project} {the_plan.upstream_version} ({a.release})",
                              a.runs, the_plan.venv_package)
        ratio = res.median("reference") / res.median("venvdeb")
        size_ratio = (_venv_size(res.of("venvdeb")[-1], the_plan.venv_package)
                      / _venv_size(res.of("reference")[-1], the_plan.venv_package))
        lines += ["", *reproducible(res)]
        lines.append(target("build >= 8x faster (set for nova)", ratio >= 8,
                            f"{ratio:.1f}x" + ("" if ratio >= 8 else f", {8 / ratio:.2f}x short")))
        lines.append(target("venv .deb <= 1.15x the reference's", size_ratio <= 1.15,
                            f"{size_ratio:.2f}x"))
        print("\n".join(lines), flush=True)
        lines = []
        if not a.skip_install:
            # the release's wheels as the workdir holds them (the requirements package is
            # not installed on the build host: builds see it in a private mount view)
            wheels_files = work.wheelhouse(a.release, t.distribution.name) / "files"
            wheel_dir = scratch / "project-wheel"
            runner.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-index",
                        f"--find-links={wheels_files}", "-w", str(wheel_dir), str(the_plan.orig)],
                       log=log, what="pip wheel (the project)",
                       env=runner.clean_environment({"PBR_VERSION": the_plan.upstream_version}))
            [project_wheel] = wheel_dir.glob("*.whl")
            # the closure, hash-pinned as the venv package installs it, plus the project
            reqs = scratch / "requirements.txt"
            digest = hashlib.sha256(project_wheel.read_bytes()).hexdigest()
            reqs.write_text(next(v for k, v in the_plan.files
                                 if k == "debian/venvdeb/requirements.txt")
                            + f"/srv/pip/{project_wheel.name} --hash=sha256:{digest}\n")
            built = res.of("venvdeb")[-1]
            done = node_install(cfg, t.distribution.name, project, a.release, built,
                                the_plan.venv_package, str(the_plan.context["venv_path"]),
                                wheels_files, reqs, project_wheel, a.install_runs, log,
                                a.node_disk)
            [venv_deb] = [built.out / n for n in built.debs
                          if n.startswith(the_plan.venv_package + "_")]
            lines += ["", *report_installs(done, a.install_runs, project,
                                           tuple(leaves(cfg.projects[project])), venv_deb,
                                           a.node_disk)]
            print("\n".join(lines), flush=True)
            lines = []
        if not a.skip_pipeline:
            venvdeb = [sys.executable, "-m", "venvdeb", "--workdir", str(work.root), "pipeline"]
            # the caller's environment, as an operator runs it (VENVDEB_CACHE and all)
            env = dict(os.environ)
            runner.run(venvdeb, cwd=ROOT, env=env, log=log, what="venvdeb pipeline")
            times = []
            for _ in range(3):
                start = time.monotonic()
                runner.run(venvdeb, cwd=ROOT, env=env, log=log, what="venvdeb pipeline (no-op)")
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
