"""A project's source package planned from the workdir, shared by the stages that
need it (source, build, affected) and by dry runs.

Pure with respect to the workdir's state: it reads the lock, the wheel manifest
and the requirements package's build record (never re-planning that package),
fetches the upstream source into the cache (or, with ``scratch``, anywhere else)
and resolves the closure (cached by its inputs' digest); it assigns no version.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from venvdeb.core import build_record, files, versions
from venvdeb.core.config import Config
from venvdeb.core.errors import ConfigError
from venvdeb.core.progress import say
from venvdeb.core.target import Target, project_on
from venvdeb.core.workdir import Workdir
from venvdeb.debian import source_package
from venvdeb.python import chroot, closure, inventory, lock, upstream, wheelhouse


@dataclass(frozen=True)
class ProjectSource:
    draft: source_package.SourceDraft
    out_dir: Path
    reqdeb: build_record.BuildRecord  # the requirements package it builds against
    closure: tuple[str, ...]  # name==version of every wheel the venv installs
    dependencies: int

    @property
    def reqdeb_deb(self) -> Path:
        return self.reqdeb.debs[0]


def current_reqdeb(work: Workdir, t: Target) -> build_record.BuildRecord:
    """The requirements package built from the current lock (its build record)."""
    rec = build_record.reqdeb_record(work, t)
    lock_file = work.lock_file(t.release.name, t.distribution.name)
    hint = f"run 'venvdeb reqdeb --release {t.release.name}' first"
    if not rec.complete:
        raise ConfigError(f"the requirements package {rec.debs[0].name} is not built", hint=hint)
    if rec.inputs and lock_file.exists() and files.sha256(lock_file) != rec.inputs:
        raise ConfigError(f"the requirements package {rec.package} {rec.version} was built "
                          f"from another lock than {lock_file}", hint=hint)
    return rec


def plan(config: Config, work: Workdir, t: Target, name: str, log: Path, *,
         scratch: Path | None = None) -> ProjectSource:
    project = project_on(config, name, t)
    entries = lock.entries_for(work, t)
    req = current_reqdeb(work, t)
    wheel_dir = work.wheelhouse(t.release.name, t.distribution.name)
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
    src = upstream.fetch(project, t.release, work.cache / "upstream", log, hashes,
                         scratch=scratch)
    records = wheelhouse.read_manifest(wheel_dir)
    source_sha256 = files.sha256(src.tarball)
    key = closure.cache_key(source_sha256, project.extras, project.pypi_name,
                            src.python_version, project.requirements, records,
                            interpreter=t.distribution.python_version)
    found = closure.cached(work.cache / "closures", key, project.pypi_name, records)
    if found is None:
        with tempfile.TemporaryDirectory(prefix="venvdeb-src-") as tmp:
            tree = upstream.unpack(src.tarball, Path(tmp))
            where = chroot.place(config, t.distribution, log, "resolving a closure")
            found = closure.resolve(tree, project.extras, project.pypi_name, wheel_dir / "files",
                                    records, log, src.python_version, project.requirements,
                                    where)
        if scratch is None:
            closure.store(work.cache / "closures", key, found)
    header = (f"venvdeb: the closure of {project.pypi_name} {src.upstream_version} "
              f"in {req.package},\ninstalled offline with each wheel's hash.")
    native = sorted({dep for r in found.records if r.origin == "built"
                     for dep in config.build_dependencies_for(r.name)
                     if dep not in ("python3-dev", "pkg-config")})
    items = (inventory.sdist_item(project.pypi_name, src.upstream_version, src.tarball,
                                  source_sha256),
             *inventory.of_closure(found.records, wheel_dir / "files"))
    draft = source_package.plan(
        config, project, t.release, t.distribution, upstream=src,
        requirements=found.requirements(header), reqdeb_package=req.package,
        reqdeb_version=req.version, native_build_depends=tuple(native), items=items)
    pins = tuple(sorted(f"{r.name}=={r.version}" for r in found.records))
    return ProjectSource(draft, work.project(t.release.name, t.distribution.name, name), req,
                         pins, len(found.records))


def expected_debs(plan: source_package.SourcePlan, out_dir: Path,
                  architecture: str) -> tuple[Path, ...]:
    """The .debs a build of ``plan`` makes: the venv package (arch), the others (all)."""
    v = plan.version_no_epoch
    return (out_dir / f"{plan.venv_package}_{v}_{architecture}.deb",
            *(out_dir / f"{p}_{v}_all.deb" for p in plan.packages[1:]))


def peek_version(work: Workdir, t: Target, ps: ProjectSource) -> versions.Assigned:
    """The version this source has or would get (pure)."""
    return versions.peek(work.versions, ps.draft.ledger_key, t.release.name, ps.draft.digest,
                         tag=t.distribution.version_tag)


def assign_version(work: Workdir, t: Target, ps: ProjectSource, *,
                   reason: str = "", assigned: tuple[int, int] | None = None,
                   ) -> source_package.SourcePlan:
    """The act step: record the version in the ledger (a new digest gets the next
    serial, with ``reason`` for its changelog) and complete the plan with it.
    ``assigned``: the (serial, epoch) the publisher's ledger gave these inputs
    (buildbot), adopted here instead."""
    if assigned is not None:
        versions.adopt(work.versions, ps.draft.ledger_key, ps.draft.digest, *assigned,
                       note=reason)
    given = versions.assign(work.versions, ps.draft.ledger_key, t.release.name,
                            ps.draft.digest, tag=t.distribution.version_tag, note=reason)
    return source_package.versioned(ps.draft, given)


def make_source(config: Config, work: Workdir, t: Target, name: str, *,
                reason: str = "", assigned: tuple[int, int] | None = None,
                ) -> tuple[ProjectSource, source_package.SourcePlan, Path, bool]:
    """Plan the project's source package, give it its version and write the .dsc (kept
    when it exists): the plan, the .dsc and whether it was made now."""
    log = work.fresh_log(t.logs, f"source-{name}")
    say(f"source: {name} for {t.release.name}: fetching the upstream source")
    ps = plan(config, work, t, name, log)
    the_plan = assign_version(work, t, ps, reason=reason, assigned=assigned)
    say(f"source: {the_plan.source} {the_plan.version}: {ps.dependencies} dependencies, "
        f"packages {', '.join(the_plan.packages)}")
    existed = (ps.out_dir / the_plan.dsc_name).exists()
    return ps, the_plan, source_package.make(the_plan, ps.out_dir, log), not existed
