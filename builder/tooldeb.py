"""``venvdeb tooldeb``: venvdeb itself as a Debian package, made with stdeb.

A worker machine then needs only our repository and ``apt install venvdeb``.
The package depends on Debian's packages for every tool venvdeb drives
(dh-virtualenv, debhelper, sbuild, mmdebstrap, lintian, reprepro,
python3-debian, buildbot-worker...). What Debian 12 lacks or has too old
(pip-tools; pip, build, click and packaging at the versions the checkout's
.venv pins) comes in ``builder/_vendor``: pure-Python wheels pinned by hash in
``debian-templates/tool/vendor.txt``, unpacked at build time and put first on
``sys.path`` by ``builder/__init__.py``. The templates, requirement files,
bundled config and buildbot master go to ``/usr/share/venvdeb``
(builder.layout).

The plan (files, digest, control fields) is data; ``run_tooldeb`` stages the
tree, runs stdeb's ``sdist_dsc`` for the source package, builds the binary
offline with dpkg-buildpackage, then lintian and an install test in a clean
chroot where ``venvdeb --help`` and the vendored pip-compile must run.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from debian.deb822 import Dsc

from builder import __version__, build_record, checks, command, debbuild, layout, render, version
from builder.check import candidate_chroot, lintian_recorded
from builder.config import Config, Distribution
from builder.errors import CommandFailed, ConfigError, InstallTestFailed
from builder.install_test import CANDIDATES, SOURCES
from builder.progress import say
from builder.workdir import Workdir

PACKAGE = "venvdeb"
#: Homepage: of the package (no public site yet; the maintainer address is .invalid too)
HOMEPAGE = "https://venvdeb.invalid/"
#: what goes into the package, as paths of the git checkout
DATA_DIRS = ("debian-templates", "requirements-repo", "buildbot-master")
DATA_TOP = ("pipeline.toml",)
CODE = ("builder/",)
#: Debian's packages for the tools venvdeb runs (bin/setup installs the same on a checkout)
DEPENDS = ("python3-debian", "python3-jinja2", "dh-virtualenv", "debhelper", "devscripts",
           "dpkg-dev", "fakeroot", "build-essential", "lintian", "reprepro", "sbuild",
           "mmdebstrap", "uidmap", "python3-venv", "python3-dev", "python3-wheel-whl", "gnupg",
           "gpgv", "git", "ca-certificates", "apt-utils", "buildbot-worker",
           "${misc:Depends}", "${python3:Depends}")
#: What building this package needs on the host (stdeb's debian/control plus stdeb itself)
BUILD_TOOLS = ("python3-stdeb", "dh-python", "python3-all", "python3-setuptools")
#: run in the install test's chroot; each must exit 0
SMOKE = (("venvdeb", "--help"), ("venvdeb", "--version"), ("venvdeb", "buildbot", "--help"),
         ("python3", "-m", "builder.piptools_compile", "--version"),
         ("python3", "-m", "builder.pip_run", "--version"), ("buildbot-worker", "--version"))


@dataclass(frozen=True)
class VendorWheel:
    name: str
    version: str
    hashes: tuple[str, ...]


@dataclass(frozen=True)
class ToolPlan:
    distribution: str
    files: tuple[str, ...]  # relative to the checkout, sorted
    vendor: tuple[VendorWheel, ...]
    depends: tuple[str, ...]
    recommends: tuple[str, ...]  # the sdist build dependencies pipeline.toml declares
    maintainer: str
    digest: str  # of everything above and the files' content

    def upstream(self, serial: int) -> str:
        return version.format_version(__version__, serial, self.digest)


def templates() -> Path:
    return render.TEMPLATES / "tool"


def parse_vendor(path: Path) -> tuple[VendorWheel, ...]:
    """``name==version \\ --hash=sha256:...`` entries of a pip-compile output."""
    wheels: list[VendorWheel] = []
    for number, raw in enumerate(path.read_text().replace("\\\n", " ").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        if "==" not in words[0] or not any(w.startswith("--hash=sha256:") for w in words[1:]):
            raise ConfigError(f"{path}: entry {number} ({words[0]!r}) is not 'name==version "
                              f"--hash=sha256:...'", hint="regenerate it with pip-compile "
                              "--generate-hashes (see its header)")
        name, _, pinned = words[0].partition("==")
        wheels.append(VendorWheel(name, pinned, tuple(
            w.split(":", 1)[1] for w in words[1:] if w.startswith("--hash=sha256:"))))
    return tuple(wheels)


def tracked_files(root: Path, log: Path) -> tuple[str, ...]:
    """The checkout's files that go into the package (git's list: no build output)."""
    try:
        out = command.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                           "--exclude-standard", "--", *CODE, *DATA_DIRS,
                           *DATA_TOP, "README.md"], log=log, what="git ls-files").output
    except CommandFailed:
        raise ConfigError(f"{root} is not a venvdeb git checkout: the venvdeb package is made "
                          f"from one", hint="run 'venvdeb tooldeb' from a clone of venvdeb "
                                            "(.venv/bin/venvdeb)") from None
    names = sorted(n for n in out.split("\0") if n and (root / n).is_file())
    if "builder/cli.py" not in names:
        raise ConfigError(f"{root}: git lists no builder/cli.py", hint="run it from a clone "
                                                                       "of venvdeb")
    return tuple(n for n in names if not n.endswith(".pyc"))


def plan(config: Config, dist: Distribution, root: Path, files: tuple[str, ...]) -> ToolPlan:
    vendor = parse_vendor(templates() / "vendor.txt")
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0" + hashlib.sha256((root / name).read_bytes()).digest())
    recommends = config.all_build_dependencies()
    h.update(json.dumps([dist.name, DEPENDS, recommends, config.repository.maintainer,
                         [v.__dict__ for v in vendor]], default=list).encode())
    return ToolPlan(dist.name, files, vendor, DEPENDS, recommends, config.repository.maintainer,
                    h.hexdigest())


def render_setup(the_plan: ToolPlan, upstream: str) -> dict[str, str]:
    """setup.py and stdeb.cfg of the staged tree (pure)."""
    name, _, email = the_plan.maintainer.partition("<")
    context = {
        "version": upstream, "data_dirs": list(DATA_DIRS), "data_top": list(DATA_TOP),
        "description": "Ship Python services as virtualenvs inside Debian packages",
        "author": name.strip(), "author_email": email.rstrip(">").strip(),
        "homepage": HOMEPAGE, "suite": the_plan.distribution, "maintainer": the_plan.maintainer,
        "depends": the_plan.depends, "recommends": the_plan.recommends,
    }
    return {"setup.py": render.render_file("tool", "setup.py.j2", context),
            "stdeb.cfg": render.render_file("tool", "stdeb.cfg.j2", context)}


def _fetch_vendor(the_plan: ToolPlan, cache: Path, log: Path) -> list[Path]:
    """The vendored wheels, downloaded once into the cache, each checked by its hash."""
    cache.mkdir(parents=True, exist_ok=True)
    want = {w.name.lower().replace("-", "_"): w for w in the_plan.vendor}

    def have() -> dict[str, Path]:
        found = {}
        for whl in cache.glob("*.whl"):
            name, ver = whl.name.split("-")[:2]
            w = want.get(name.lower())
            if w and w.version == ver and hashlib.sha256(whl.read_bytes()).hexdigest() in w.hashes:
                found[name.lower()] = whl
        return found

    if set(have()) != set(want):
        say(f"tooldeb: downloading {len(want)} vendored wheels (pip-tools and what it needs)")
        reqs = cache / "vendor.txt"
        reqs.write_text((templates() / "vendor.txt").read_text())
        command.run([sys.executable, "-m", "builder.pip_run", "download", "--no-deps",
                     "--only-binary=:all:", "--require-hashes", "-r", str(reqs), "-d", str(cache),
                     "--progress-bar=off"], log=log, env=command.clean_environment(),
                    what="pip download (vendored wheels)", heartbeat=30)
    found = have()
    missing = sorted(set(want) - set(found))
    if missing:
        raise ConfigError(f"vendored wheels missing or not matching vendor.txt's hashes: "
                          f"{', '.join(missing)}", hint=f"see {log}", log=log)
    return [found[n] for n in sorted(found)]


def _stage(the_plan: ToolPlan, root: Path, upstream: str, wheels: list[Path], into: Path) -> None:
    for name in the_plan.files:
        dest = into / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, dest)
    vendor = into / "builder" / "_vendor"
    for whl in wheels:
        with zipfile.ZipFile(whl) as z:
            for member in z.namelist():
                # Windows launchers and scripts are of no use on Debian
                if member.endswith((".exe", "/")) or ".data/scripts/" in member:
                    continue
                z.extract(member, vendor)
    # They come as one set: dh_python3 must not turn their Requires-Dist into
    # Depends on Debian's older python3-pip, python3-build...
    for metadata in vendor.glob("*.dist-info/METADATA"):
        metadata.write_text("".join(line for line in metadata.read_text().splitlines(True)
                                    if not line.startswith("Requires-Dist:")))
    for name, text in render_setup(the_plan, upstream).items():
        (into / name).write_text(text)
    (into / "debian-copyright").write_text((templates() / "copyright").read_text())
    (into / "lintian").mkdir()
    (into / "lintian" / PACKAGE).write_text((templates() / "lintian-overrides").read_text())
    (into / "MANIFEST.in").write_text("graft builder\n" + "".join(
        f"graft {d}\n" for d in DATA_DIRS) + "include pipeline.toml README.md debian-copyright "
                                              "lintian/venvdeb\nglobal-exclude *.pyc\n")


def out_dir(work: Workdir, dist: str) -> Path:
    return work.root / "tool" / dist


def record(work: Workdir, dist: str) -> build_record.BuildRecord:
    return build_record.read(out_dir(work, dist), f"the venvdeb package for {dist}",
                             hint=f"run 'venvdeb tooldeb --dist {dist}' first")


def _build(the_plan: ToolPlan, root: Path, assigned: version.Assigned, work: Workdir,
           out: Path, log: Path) -> build_record.BuildRecord:
    upstream = assigned.version
    missing = [p for p in BUILD_TOOLS if not _installed(p, log)]
    if missing:
        raise ConfigError(f"building the venvdeb package needs {', '.join(missing)}",
                          hint="run bin/setup (it installs them)")
    wheels = _fetch_vendor(the_plan, work.cache / "tool-vendor", log)
    env = command.clean_environment({"SOURCE_DATE_EPOCH": str(assigned.epoch)})
    with tempfile.TemporaryDirectory(prefix="venvdeb-tooldeb-", dir=out) as tmp:
        tree = Path(tmp) / f"{PACKAGE}-{upstream}"
        _stage(the_plan, root, upstream, wheels, tree)
        dist_dir = Path(tmp) / "deb_dist"
        say(f"tooldeb: stdeb sdist_dsc {PACKAGE} {upstream}")
        command.run(["/usr/bin/python3", "setup.py", "--command-packages=stdeb.command",
                     "sdist_dsc", f"--dist-dir={dist_dir}", "--with-python2=False",
                     "--with-python3=True"], cwd=tree, env=env, log=log,
                    what="stdeb (setup.py sdist_dsc)", heartbeat=30)
        [dsc] = dist_dir.glob("*.dsc")
        sources = [dsc] + [dist_dir / f["name"] for f in _dsc_files(dsc)]
        for old in out.glob(f"{PACKAGE}_*"):
            old.unlink()
        for f in sources:
            shutil.copy2(f, out / f.name)
    say(f"tooldeb: dpkg-buildpackage (offline) {dsc.name}")
    result = debbuild.build_local(out / dsc.name, out, log, source_date_epoch=assigned.epoch)
    debs = debbuild.publish_outputs(result, out)
    changes = out / result.changes.name
    rec = build_record.BuildRecord(PACKAGE, f"{upstream}-1", out / dsc.name, changes, debs)
    build_record.write(out, rec)
    return rec


def _dsc_files(dsc: Path) -> list[dict[str, str]]:
    with dsc.open() as f:
        return list(Dsc(f)["Files"])


def _installed(package: str, log: Path) -> bool:
    r = command.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package], log=log,
                    check=False, what="dpkg-query")
    return r.returncode == 0 and r.output.strip().endswith("installed")


def install_test(dist: Distribution, deb: Path, log: Path, *, refresh_chroot: bool = False
                 ) -> list[str]:
    """apt-get install venvdeb in a clean chroot, run it, purge it: what was seen."""
    seen: list[str] = []
    with candidate_chroot(dist, (deb,), log, refresh=refresh_chroot) as box:
        def step(what: str, argv: list[str]) -> str:
            try:
                return box.run(argv, what=what).output
            except CommandFailed as exc:
                raise InstallTestFailed(f"install test of {PACKAGE}: {what} failed "
                                        f"({exc.hint or 'see the log'})", log=log) from None

        (box.root / SOURCES).write_text(f"deb [trusted=yes] file:{CANDIDATES} ./\n")
        say(f"tooldeb: apt-get install {PACKAGE} in a clean chroot (pulls the tools it drives)")
        step("apt-get update", ["apt-get", "update"])
        step("apt-get install", ["apt-get", "install", "-y", "--no-install-recommends",
                                 PACKAGE])
        seen.append(f"installed {deb.name}")
        for argv in SMOKE:
            out = step(" ".join(argv), list(argv)).strip().splitlines()
            seen.append(f"ran {' '.join(argv)}: {out[0] if out else '(no output)'}")
        owned = [p for p in step("dpkg -L", ["dpkg", "-L", PACKAGE]).splitlines()
                 if p.startswith("/usr/lib/python3/dist-packages/builder/")
                 or p.startswith(str(layout.INSTALLED))]
        step("apt-get purge", ["apt-get", "purge", "-y", PACKAGE])
        left = [p for p in owned if box.path(p).exists() and not box.path(p).is_dir()]
        if left:
            raise InstallTestFailed(f"install test of {PACKAGE}: purge left "
                                    f"{', '.join(left[:5])}", log=log)
        if box.path("/usr/lib/python3/dist-packages/builder").exists():
            raise InstallTestFailed(f"install test of {PACKAGE}: purge left "
                                    f"/usr/lib/python3/dist-packages/builder", log=log)
        seen.append(f"purge removed its {len(owned)} files")
    return seen


def run_tooldeb(config: Config, work: Workdir, dist_name: str | None = None, *,
                force: bool = False, refresh_chroot: bool = False) -> str:
    dist = config.distributions[dist_name] if dist_name else next(
        iter(config.distributions.values()))
    out = out_dir(work, dist.name)
    out.mkdir(parents=True, exist_ok=True)
    log = work.fresh_log("tool", f"tooldeb-{dist.name}")
    root = layout.SOURCE_TREE
    the_plan = plan(config, dist, root, tracked_files(root, log))
    assigned = version.assign(work.state / "versions.json", f"{PACKAGE}/{dist.name}",
                              __version__, the_plan.digest)
    want = f"{assigned.version}-1"
    try:
        rec: build_record.BuildRecord | None = record(work, dist.name)
    except ConfigError:
        rec = None
    built = False
    if force or rec is None or rec.version != want or not all(f.exists() for f in rec.files):
        rec = _build(the_plan, root, assigned, work, out, log)
        built = True
    [deb] = rec.debs
    ledger = work.checks
    if force or built or checks.result(ledger, deb, "lintian") != "passed":
        say(f"tooldeb: lintian {rec.changes.name}")
        lintian_recorded(ledger, rec.changes, rec.debs, log)
    if force or built or checks.result(ledger, deb, "install") != "passed":
        try:
            seen = install_test(dist, deb, log, refresh_chroot=refresh_chroot)
        except InstallTestFailed as exc:
            checks.record(ledger, rec.debs, "install", False, exc.message)
            raise
        checks.record(ledger, rec.debs, "install", True, "; ".join(seen))
        return (f"tooldeb: {deb.name}: {'built, ' if built else ''}lintian passed; install "
                f"test passed: {'; '.join(seen)}")
    return f"tooldeb: up to date: {deb.name} passed lintian and the install test"
