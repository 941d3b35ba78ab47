"""venvdeb itself as a Debian package, made with stdeb (``venvdeb tooldeb``).

A worker machine then needs only our repository and ``apt install venvdeb``.
The package depends on Debian's packages for every tool venvdeb drives
(dh-virtualenv, debhelper, sbuild, mmdebstrap, lintian, reprepro,
python3-debian, buildbot-worker...). What Debian 12 lacks or has too old
(pip-tools; pip, build, click and packaging at the versions the checkout's
.venv pins; the CycloneDX library the SBOMs are made with) comes in
``venvdeb/_vendor``: pure-Python wheels pinned by hash in
``debian-templates/tool/vendor.txt``, unpacked at build time and put first on
``sys.path`` by ``venvdeb/__init__.py``. The templates, requirement files,
bundled config and buildbot master go to ``/usr/share/venvdeb``
(venvdeb.core.layout).

The package holds git's tracked files only (``git ls-files``): an untracked file
in the checkout never goes in. A dirty tree (tracked files changed but not
committed) is built as it is, with a warning naming the files: the version's
digest covers their content, so such a build never shares a version with a
clean one; a release is built from a clean clone.

The plan (files, digest, control fields) is data and assigns nothing; ``build``
stages the tree, runs stdeb's ``sdist_dsc`` for the source package and builds
the binary offline with dpkg-buildpackage. The tooldeb stage adds lintian and
the install test.
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

from venvdeb.core import build_record, render, runner, versions
from venvdeb.core.config import Config, Distribution
from venvdeb.core.errors import CommandFailed, ConfigError
from venvdeb.core.progress import say
from venvdeb.debian import builders
from venvdeb.python import lock
from venvdeb.python.lock import LockEntry

PACKAGE = "venvdeb"
#: Homepage: of the package (no public site yet; the maintainer address is .invalid too)
HOMEPAGE = "https://venvdeb.invalid/"
#: what goes into the package, as paths of the git checkout
DATA_DIRS = ("debian-templates", "requirements-repo", "buildbot-master")
DATA_TOP = ("pipeline.toml",)
CODE = ("builder/",)  # the source root: builder/venvdeb/...
#: Debian's packages for the tools venvdeb runs (bin/setup installs the same on a checkout)
DEPENDS = ("python3-debian", "python3-jinja2", "dh-virtualenv", "debhelper", "devscripts",
           "dpkg-dev", "fakeroot", "build-essential", "lintian", "reprepro", "sbuild",
           "mmdebstrap", "uidmap", "python3-venv", "python3-dev", "python3-wheel-whl", "gnupg",
           "gpgv", "git", "ca-certificates", "apt-utils", "buildbot-worker",
           # the sandbox (adduser makes its user; sdist builds and closures run Debian's
           # pip), visudo for rendered sudoers, systemd-analyze for units
           "adduser", "python3-pip", "sudo", "systemd",
           "${misc:Depends}", "${python3:Depends}")
#: What building this package needs on the host (stdeb's debian/control plus stdeb itself)
BUILD_TOOLS = ("python3-stdeb", "dh-python", "python3-all", "python3-setuptools")
#: run in the install test's chroot; each must exit 0
SMOKE = (("venvdeb", "--help"), ("venvdeb", "--version"), ("venvdeb", "buildbot", "--help"),
         ("python3", "-m", "venvdeb.python.piptools_compile", "--version"),
         ("python3", "-m", "venvdeb.python.pip_run", "--version"), ("buildbot-worker", "--version"))
#: what the purge must remove: the code (the directory too) and the data
OWNED = ("/usr/lib/python3/dist-packages/venvdeb/", "/usr/share/venvdeb")


@dataclass(frozen=True)
class ToolPlan:
    distribution: str
    files: tuple[str, ...]  # relative to the checkout, sorted
    vendor: tuple[LockEntry, ...]
    depends: tuple[str, ...]
    recommends: tuple[str, ...]  # the sdist build dependencies pipeline.toml declares
    maintainer: str
    digest: str  # of everything above and the files' content


def templates() -> Path:
    return render.TEMPLATES / "tool"


def parse_vendor(path: Path) -> tuple[LockEntry, ...]:
    """The vendored wheels: a pip-compile ``--generate-hashes`` output, read like a lock."""
    return lock.parse_lock(path)


def _paths() -> tuple[str, ...]:
    return (*CODE, *DATA_DIRS, *DATA_TOP, "README.md")


def tracked_files(root: Path, log: Path) -> tuple[str, ...]:
    """The checkout's files that go into the package: what git tracks, nothing else
    (an untracked file, even one .gitignore misses, stays out)."""
    try:
        out = runner.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--",
                           *_paths()], log=log, what="git ls-files").output
    except CommandFailed:
        raise ConfigError(f"{root} is not a venvdeb git checkout: the venvdeb package is made "
                          f"from one", hint="run 'venvdeb tooldeb' from a clone of venvdeb "
                                            "(.venv/bin/venvdeb)") from None
    names = sorted(n for n in out.split("\0") if n)
    links = [n for n in names if (root / n).is_symlink()]
    if links:
        raise ConfigError(f"{root}: tracked symbolic links cannot go into the venvdeb package: "
                          f"{', '.join(links)}", hint="replace them with the files")
    names = [n for n in names if (root / n).is_file()]  # a tracked file deleted: left out
    if "builder/venvdeb/cli.py" not in names:
        raise ConfigError(f"{root}: git lists no builder/venvdeb/cli.py",
                          hint="run it from a clone of venvdeb")
    return tuple(n for n in names if not n.endswith(".pyc"))


def uncommitted(root: Path, log: Path) -> tuple[str, ...]:
    """Tracked files of the package that differ from the checkout's HEAD."""
    out = runner.run(["git", "-C", str(root), "status", "--porcelain=v1", "-z",
                       "--untracked-files=no", "--", *_paths()], log=log,
                      what="git status").output
    # entries are "XY name", a rename's old name follows as its own field
    fields = out.split("\0")
    names, skip = [], False
    for field in fields:
        if skip or len(field) < 4:
            skip = False
            continue
        skip = bool({"R", "C"} & set(field[:2]))
        names.append(field[3:])
    return tuple(sorted(names))


def plan(config: Config, dist: Distribution, root: Path, files: tuple[str, ...]) -> ToolPlan:
    vendor = parse_vendor(templates() / "vendor.txt")
    h = hashlib.sha256()
    for name in files:
        h.update(name.encode() + b"\0" + hashlib.sha256((root / name).read_bytes()).digest())
    recommends = config.all_build_dependencies()
    h.update(json.dumps([dist.name, DEPENDS, recommends, config.repository.maintainer,
                         [(v.project_name, v.version, sorted(v.hashes)) for v in vendor]],
                        default=list).encode())
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
    want = {w.name.replace("-", "_"): w for w in the_plan.vendor}

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
        runner.run([sys.executable, "-m", "venvdeb.python.pip_run", "download", "--no-deps",
                     "--only-binary=:all:", "--require-hashes", "-r", str(reqs), "-d", str(cache),
                     "--progress-bar=off"], log=log, env=runner.clean_environment(),
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
    vendor = into / "builder" / "venvdeb" / "_vendor"
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


def build(the_plan: ToolPlan, root: Path, assigned: versions.Assigned, vendor_cache: Path,
          out: Path, log: Path) -> build_record.BuildRecord:
    """Source package by stdeb, binary package offline; the build record written."""
    upstream = assigned.version
    missing = [p for p in BUILD_TOOLS if not _installed(p, log)]
    if missing:
        raise ConfigError(f"building the venvdeb package needs {', '.join(missing)}",
                          hint="run bin/setup (it installs them)")
    dirty = uncommitted(root, log)
    if dirty:  # a developer's build: allowed, and its version's digest covers the changes
        say(f"tooldeb: warning: {len(dirty)} tracked files differ from git's HEAD and go into "
            f"the package as they are: {', '.join(dirty[:5])}"
            + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
            + "; build from a clean clone for a release")
    wheels = _fetch_vendor(the_plan, vendor_cache, log)
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(assigned.epoch)})
    with tempfile.TemporaryDirectory(prefix="venvdeb-tooldeb-", dir=out) as tmp:
        tree = Path(tmp) / f"{PACKAGE}-{upstream}"
        _stage(the_plan, root, upstream, wheels, tree)
        dist_dir = Path(tmp) / "deb_dist"
        say(f"tooldeb: stdeb sdist_dsc {PACKAGE} {upstream}")
        runner.run(["/usr/bin/python3", "setup.py", "--command-packages=stdeb.command",
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
    result = builders.build_local(out / dsc.name, out, log, source_date_epoch=assigned.epoch)
    debs = builders.publish_outputs(result, out)
    changes = out / result.changes.name
    rec = build_record.BuildRecord(PACKAGE, f"{upstream}-1", out / dsc.name, changes, debs,
                                   package=PACKAGE)
    build_record.write(out, rec)
    return rec


def _dsc_files(dsc: Path) -> list[dict[str, str]]:
    with dsc.open() as f:
        return list(Dsc(f)["Files"])


def _installed(package: str, log: Path) -> bool:
    r = runner.run(["dpkg-query", "-W", "-f", "${db:Status-Status}", package], log=log,
                    check=False, what="dpkg-query")
    return r.returncode == 0 and r.output.strip().endswith("installed")
