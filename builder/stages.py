"""The pipeline's stages, each resumable: lock, wheels, reqdeb.

Each takes the loaded config and a workdir, says what it does on stderr, logs
its commands to ``<workdir>/logs/<release>/<stage>.log`` and returns a short
summary line.
"""
from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from builder import (
    build_record,
    checks,
    closure,
    command,
    constraints,
    debbuild,
    index,
    lock,
    reqdeb,
    source_package,
    upstream,
    wheelhouse,
)
from builder.config import Config, Distribution, Project, Release, Scope
from builder.errors import ConfigError
from builder.progress import say, size
from builder.workdir import Workdir


@dataclass(frozen=True)
class Target:
    release: Release
    distribution: Distribution


def target(config: Config, release: str, distribution: str | None,
           work: Workdir | None = None) -> Target:
    """The release on a distribution; with ``work``, a release whose requirement files
    come from git reads the copy ``venvdeb requirements`` fetched into the workdir."""
    rel = config.release(release)
    if work is not None and rel.requirements_git:
        fetched = work.root / "releases" / release / "requirements"
        if not (fetched / "upper-constraints.txt").is_file():
            raise ConfigError(f"release {release} takes its requirement files from "
                              f"{rel.requirements_git} ({rel.requirements_branch}), not fetched",
                              hint=f"run 'venvdeb requirements --release {release}' first")
        rel = dataclasses.replace(rel, requirements_dir=fetched)
    dist_name = distribution or rel.distributions[0]
    if dist_name not in rel.distributions:
        raise ConfigError(f"release {release} is not built for distribution '{dist_name}' "
                          f"(its distributions: {', '.join(rel.distributions)})")
    return Target(rel, config.distribution(dist_name))


def run_lock(config: Config, work: Workdir, t: Target, *, scope: Scope | None = None,
             force: bool = False) -> str:
    lock.check_interpreter(t.distribution)
    pins = constraints.load_pins(t.release, t.distribution, config.path)
    lock_plan = lock.plan(config, t.release, t.distribution, pins, scope)
    lock_dir = work.lock_dir(t.release.name, t.distribution.name)
    log = work.fresh_log(t.release.name, "lock")
    say(f"lock: {t.release.name} on {t.distribution.name} (Python "
        f"{t.distribution.python_version}), scope {lock_plan.scope}: {len(pins.pins)} pins apply, "
        f"{pins.skipped_by_marker} skipped by marker, {len(pins.denied)} deny-listed")
    changed = lock.compile_lock(lock_plan, lock_dir, work.cache / "pip-tools", log, pins,
                                force=force)
    entries = lock.parse_lock(lock_dir / "lock.txt")
    state = "compiled" if changed else "up to date"
    return f"lock: {state}: {len(entries)} entries in {lock_dir / 'lock.txt'}"


def _entries(work: Workdir, t: Target) -> tuple[lock.LockEntry, ...]:
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    if not lock_file.exists():
        raise ConfigError(f"no lock for release {t.release.name} on {t.distribution.name} "
                          f"({lock_file} is missing)",
                          hint=f"run 'venvdeb lock --release {t.release.name}' first")
    return lock.parse_lock(lock_file)


def run_wheels(config: Config, work: Workdir, t: Target, *, jobs: int) -> str:
    entries = _entries(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    files_dir = wheel_dir / "files"
    known = wheelhouse.load_records(wheel_dir / wheelhouse.RECORDS)
    the_plan = wheelhouse.plan(entries, t.release, t.distribution, config, files_dir, known)
    say(f"wheels: {t.release.name}: {the_plan.total} entries: {len(the_plan.cached)} cached, "
        f"{len(the_plan.fetch)} to download, {len(the_plan.build)} to build from sdists")
    wheelhouse.verify_cached(the_plan.cached, entries, files_dir)
    build_constraints = wheel_dir / "build-constraints.txt"
    build_constraints.parent.mkdir(parents=True, exist_ok=True)
    build_constraints.write_text("".join(f"{p}\n" for p in t.release.extra_pins))
    new = wheelhouse.execute(
        the_plan, release=t.release, files_dir=files_dir,
        sdists_dir=work.sdists(t.release.name, t.distribution.name),
        build_constraints=build_constraints,
        log_dir=work.log_dir(t.release.name, "wheels"), jobs=jobs)
    known.update({(r.name, r.version): r for r in new})
    wheelhouse.write_records(wheel_dir / wheelhouse.RECORDS, known.values())
    current = tuple(known[(e.name, e.version)] for e in entries)
    wheelhouse.publish(current, wheel_dir)
    downloaded = sum(r.origin == "downloaded" for r in current)
    built = sum(r.origin == "built" for r in current)
    return (f"wheels: {len(current)} wheels ({downloaded} downloaded, {built} built; "
            f"{len(new)} new this run) in {wheel_dir}")


def run_reqdeb(config: Config, work: Workdir, t: Target, *, force: bool = False,
               lintian: bool = True) -> str:
    entries = _entries(work, t)
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    the_plan = reqdeb.plan(config, t.release, t.distribution, lock_file=lock_file,
                           entries=entries, wheel_dir=work.wheelhouse(t.release.name,
                                                                      t.distribution.name),
                           ledger=work.state / "versions.json")
    out_dir = work.reqdeb(t.release.name, t.distribution.name)
    say(f"reqdeb: {the_plan.package} {the_plan.version} ({the_plan.architecture}), "
        f"{len(the_plan.wheels)} wheels")
    deb, built = reqdeb.build(the_plan, out_dir, work.fresh_log(t.release.name, "reqdeb"),
                              force=force, lintian=lintian)
    [changes] = out_dir.glob(f"{the_plan.source}_{the_plan.version}_*.changes")
    build_record.write(out_dir, build_record.BuildRecord(
        the_plan.source, the_plan.version, None, changes, (deb,)))
    if built and lintian:
        checks.record(work.checks, (deb,), "lintian", True)
    size = os.path.getsize(deb) / 1e6
    state = "built" if built else "up to date"
    return f"reqdeb: {state}: {deb} ({size:.1f} MB)"


def sbuild_cache() -> Path:
    """Where sbuild chroot tarballs are kept, shared by every workdir:
    ``$VENVDEB_CACHE`` or ``$XDG_CACHE_HOME/venvdeb`` (``~/.cache/venvdeb``)."""
    base = os.environ.get("VENVDEB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "venvdeb")
    return Path(base) / "sbuild"


def default_jobs() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def default_build_jobs() -> int:
    return max(1, default_jobs() // 2)


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def project_for(config: Config, name: str, release: Release) -> Project:
    project = config.projects.get(name)
    if project is None:
        known = ", ".join(sorted(config.projects)) or "none"
        raise ConfigError(f"unknown project '{name}': {config.path.name} defines {known}",
                          hint=f"add a [projects.{name}] table to {config.path}")
    if project.version_for(release.name) is None and not project.upstream.ref_for(release.name):
        raise ConfigError(f"project {name} has no version for release {release.name}",
                          hint=f"add versions.\"{release.name}\" to [projects.{name}] in {config.path}")
    return project


@dataclass(frozen=True)
class SourceResult:
    plan: source_package.SourcePlan
    dsc: Path
    out_dir: Path
    reqdeb_deb: Path
    reqdeb_package: str
    reqdeb_version: str
    closure: tuple[str, ...]  # name==version of every wheel the venv installs


def run_source(config: Config, work: Workdir, t: Target, name: str, *,
               reason: str = "", plan_only: bool = False) -> SourceResult:
    """Make the project's source package; ``plan_only``: compute it (version included,
    a new one recorded in the ledger) without writing the .dsc."""
    project = project_for(config, name, t.release)
    entries = _entries(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    req = reqdeb.plan(config, t.release, t.distribution, lock_file=lock_file, entries=entries,
                      wheel_dir=wheel_dir, ledger=work.state / "versions.json")
    req_deb = work.reqdeb(t.release.name, t.distribution.name) / req.deb_name
    if not req_deb.exists():
        raise ConfigError(f"the requirements package {req.deb_name} is not built",
                          hint=f"run 'venvdeb reqdeb --release {t.release.name}' first")
    log = work.fresh_log(t.release.name, f"source-{name}")
    locked = {e.name: e for e in entries}.get(canonicalize_name(project.pypi_name))
    hashes: frozenset[str] = frozenset()
    if not project.upstream.ref_for(t.release.name):
        wanted = project.version_for(t.release.name)
        if locked is None or locked.version != wanted:
            have = f"it has {locked.version}" if locked else "it does not contain it"
            raise ConfigError(
                f"{project.pypi_name} {wanted} (projects.{name}) is not in the {t.release.name} "
                f"lock: {have}",
                hint="fix the version in pipeline.toml, or rebuild the lock (venvdeb lock)")
        hashes = locked.hashes
    say(f"source: {name} for {t.release.name}: fetching the upstream source")
    out_dir = work.target(t.release.name, t.distribution.name) / "projects" / name
    src = upstream.fetch(project, t.release, work.cache / "upstream", log, hashes)
    records = wheelhouse.read_manifest(wheel_dir)
    key = closure.cache_key(index.file_sha256(src.tarball), project.extras, project.pypi_name,
                            src.python_version, project.requirements, records)
    found = closure.cached(work.cache / "closures", key, project.pypi_name, records)
    if found is None:
        with tempfile.TemporaryDirectory(prefix="venvdeb-src-") as tmp:
            tree = upstream.unpack(src.tarball, Path(tmp))
            found = closure.resolve(tree, project.extras, project.pypi_name, wheel_dir / "files",
                                    records, log, src.python_version, project.requirements)
        closure.store(work.cache / "closures", key, found)
    header = (f"venvdeb: the closure of {project.pypi_name} {src.upstream_version} "
              f"in {req.package},\ninstalled offline with each wheel's hash.")
    native = sorted({dep for r in found.records if r.origin == "built"
                     for dep in config.build_dependencies_for(r.name)
                     if dep not in ("python3-dev", "pkg-config")})
    the_plan = source_package.plan(
        config, project, t.release, t.distribution, upstream=src,
        requirements=found.requirements(header), reqdeb_package=req.package,
        reqdeb_version=req.version, ledger=work.state / "versions.json",
        native_build_depends=tuple(native), reason=reason)
    say(f"source: {the_plan.source} {the_plan.version}: {len(found.records)} dependencies, "
        f"packages {', '.join(the_plan.packages)}")
    closure_pins = tuple(sorted(f"{r.name}=={r.version}" for r in found.records))
    if plan_only:
        return SourceResult(the_plan, out_dir / the_plan.dsc_name, out_dir, req_deb, req.package,
                            req.version, closure_pins)
    dsc = source_package.make(the_plan, out_dir, log)
    return SourceResult(the_plan, dsc, out_dir, req_deb, req.package, req.version, closure_pins)


def run_build(config: Config, work: Workdir, t: Target, name: str, *,
              builder: debbuild.Builder = "local", check_reproducible: bool = False,
              lintian: bool = True) -> str:
    src = run_source(config, work, t, name)
    the_plan = src.plan
    arch = t.distribution.architecture
    wanted = [src.out_dir / f"{the_plan.venv_package}_{the_plan.version_no_epoch}_{arch}.deb"]
    wanted += [src.out_dir / f"{p}_{the_plan.version_no_epoch}_all.deb" for p in the_plan.packages[1:]]
    record = build_record.BuildRecord(
        the_plan.source, the_plan.version, src.dsc,
        src.out_dir / f"{the_plan.source}_{the_plan.version_no_epoch}_{arch}.changes",
        tuple(wanted), src.closure)
    if all(d.exists() for d in wanted) and not check_reproducible:
        build_record.write(src.out_dir, record)
        return f"build: up to date: {', '.join(d.name for d in wanted)} in {src.out_dir}"
    log = work.fresh_log(t.release.name, f"build-{name}")
    dist = t.distribution

    def build_once(work_name: str) -> debbuild.BuildResult:
        if builder == "sbuild":
            tarball = debbuild.chroot_tarball(dist.name, dist.architecture, dist.mirror,
                                              sbuild_cache(), log,
                                              extra=config.all_build_dependencies())
            return debbuild.build_sbuild(src.dsc, src.out_dir, log, tarball=tarball,
                                         distribution=dist.name, architecture=dist.architecture,
                                         extra_packages=(src.reqdeb_deb,), work_name=work_name)
        if debbuild.ensure_installed(src.reqdeb_package, src.reqdeb_version, src.reqdeb_deb, log):
            say(f"build: installed the build dependency {src.reqdeb_package} {src.reqdeb_version}")
        return debbuild.build_local(src.dsc, src.out_dir, log, source_date_epoch=the_plan.epoch,
                                    work_name=work_name)

    say(f"build: {the_plan.source} {the_plan.version} with the {builder} builder (log: {log})")
    first = build_once("tmp-build")
    if check_reproducible:
        say("build: building a second time, in another directory, to compare")
        second = build_once("tmp-build-again")
        report = _compare(first.debs, second.debs)
        shutil.rmtree(second.changes.parent)
        if report:
            shutil.rmtree(first.changes.parent)
            raise debbuild.BuildFailed(
                f"{the_plan.source} {the_plan.version} is not reproducible: {'; '.join(report)}",
                log=log)
        say("build: reproducible: both builds gave byte-identical packages")
    if lintian:
        say("build: lintian")
        debbuild.lintian(first.changes, log)
    debs = debbuild.publish_outputs(first, src.out_dir)
    build_record.write(src.out_dir, record)
    if lintian:
        checks.record(work.checks, debs, "lintian", True)
    sizes = ", ".join(f"{d.name} ({size(d.stat().st_size)})" for d in debs)
    return f"build: built {sizes} in {src.out_dir}"


def _compare(first: tuple[Path, ...], second: tuple[Path, ...]) -> list[str]:
    report = []
    for a, b in zip(sorted(first), sorted(second), strict=True):
        if a.read_bytes() != b.read_bytes():
            diff = debbuild.differences(a, b)
            shown = ", ".join(diff[:8]) + (f" and {len(diff) - 8} more" if len(diff) > 8 else "")
            report.append(f"{a.name} differs in {shown or 'its ar/tar framing'}")
    return report


REQUIREMENT_FILES = ("upper-constraints.txt", "global-requirements.txt", "denylist.txt")


def run_requirements(config: Config, work: Workdir, release_name: str) -> str:
    """Fetch the release's requirement files from its git branch into the workdir
    (written only when they change), with a PROVENANCE naming the commit."""
    release = config.release(release_name)
    if not release.requirements_git or not release.requirements_branch:
        return (f"requirements: {release_name} reads {release.requirements_dir} (no "
                f"requirements_git in the config)")
    log = work.fresh_log(release_name, "requirements")
    dest = work.root / "releases" / release_name / "requirements"
    with tempfile.TemporaryDirectory(prefix="venvdeb-req-") as tmp:
        checkout = Path(tmp) / "r"
        command.run(["git", "clone", "--quiet", "--depth", "1", "--branch",
                     release.requirements_branch, release.requirements_git, str(checkout)],
                    log=log, what="git clone (requirements)")
        commit = command.run(["git", "rev-parse", "HEAD"], log=log, cwd=checkout).output.strip()
        if not (checkout / "upper-constraints.txt").is_file():
            raise ConfigError(f"{release.requirements_git} ({release.requirements_branch}) has "
                              f"no upper-constraints.txt at its top",
                              hint=f"fix releases.\"{release_name}\".requirements_git")
        dest.mkdir(parents=True, exist_ok=True)
        changed = []
        for name in REQUIREMENT_FILES:
            if (checkout / name).is_file():
                text = (checkout / name).read_text()
                if not (dest / name).exists() or (dest / name).read_text() != text:
                    (dest / name).write_text(text)
                    changed.append(name)
        (dest / "PROVENANCE").write_text(
            f"Repository: {release.requirements_git}\nBranch: {release.requirements_branch}\n"
            f"Commit: {commit}\n")
    state = f"updated {', '.join(changed)}" if changed else "up to date"
    return f"requirements: {state} from {release.requirements_branch} at {commit[:10]} in {dest}"
