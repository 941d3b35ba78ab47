"""A project's Debian source package for one release (``venvdeb source``).

``plan`` computes the names and every file of ``debian/`` as data (rendered from
debian-templates/venv/) with their digest, and assigns nothing; ``versioned``
adds the version the ledger gives (changelog, copyright year); ``make`` writes
the orig tarball, unpacks it, adds ``debian/`` and runs ``dpkg-source -b``.
"""
from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from venvdeb.core import render, runner, versions
from venvdeb.core.binary_package import BinaryPackage
from venvdeb.core.config import Config, Distribution, Project, Release
from venvdeb.core.errors import CommandFailed, ConfigError
from venvdeb.core.files import sha256
from venvdeb.debian import sbom
from venvdeb.python import bytecode, upstream
from venvdeb.python.inventory import Item
from venvdeb.python.upstream import Source

#: dh_builddeb's zstd level: 2 s for keystone's venv where xz takes 29 s, 1.19 times
#: xz's size; -12 takes twice as long for 1.17 times, -19 longer than xz (bench/levers)
ZSTD_LEVEL = 9

LICENSES = {
    "Apache-2.0": ("On Debian systems, the full text of the Apache License, Version 2.0 can be",
                   "found in /usr/share/common-licenses/Apache-2.0."),
}


@dataclass(frozen=True)
class SourceDraft:
    """Everything but the version (pure): what the inputs digest identifies."""

    source: str
    upstream_version: str
    digest: str
    venv_package: str
    packages: tuple[str, ...]   # every binary package, venv first
    files: tuple[tuple[str, str], ...]  # debian/... -> text, without changelog and copyright
    orig: Path
    changes: tuple[str, ...]  # the changelog entry's lines, the rebuild reason aside
    epoch: int  # the package's epoch (90)
    context: Mapping[str, Any] = field(default_factory=dict, compare=False)
    #: the venv's distributions, the project first (its SBOM, made with the version)
    items: tuple[Item, ...] = field(default=(), compare=False)

    @property
    def ledger_key(self) -> str:
        return f"{self.source}/{self.context['release']}/{self.context['distribution']}/" \
               f"{self.upstream_version}"

    def version_for(self, serial: int) -> str:
        """``90:29.0.2-0+deb12u3``: revision 0 and the distribution before the serial,
        as Debian's stable updates (``+deb13u1`` sorts above ``+deb12u<any>``)."""
        return f"{self.epoch}:{self.upstream_version}-0+{self.context['version_tag']}u{serial}"


@dataclass(frozen=True)
class SourcePlan:
    source: str
    upstream_version: str
    version: str          # epoch:upstream-revision
    epoch: int            # SOURCE_DATE_EPOCH of the changelog entry
    venv_package: str
    packages: tuple[str, ...]   # every binary package, venv first
    files: tuple[tuple[str, str], ...]  # debian/... -> text
    orig: Path
    # what the templates were rendered with (bench/ renders the reference recipe from it)
    context: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def dsc_name(self) -> str:
        return f"{self.source}_{self.version.split(':', 1)[-1]}.dsc"

    @property
    def orig_name(self) -> str:
        return f"{self.source}_{self.upstream_version}.orig.tar.gz"

    @property
    def version_no_epoch(self) -> str:
        return self.version.split(":", 1)[-1]


def _context(config: Config, project: Project, release: Release, dist: Distribution,
             upstream: Source, reqdeb_package: str, reqdeb_version: str,
             native_build_depends: tuple[str, ...]) -> dict[str, Any]:
    lo, hi = dist.python_range
    venv_path = project.venv_path(release.name)
    # every command of the venv that the packages refer to: links, units, sudoers
    referenced = sorted({c for p in project.packages
                         for c in (*p.commands, *(u.command for u in p.units),
                                   *(r.command for r in p.sudoers))})
    units = [(p.name, u) for p in project.packages for u in p.units]
    uwsgi = [(p.name, u) for p in project.packages for u in p.uwsgi]
    sudoers = [(p.name, f"/etc/sudoers.d/{p.name}") for p in project.packages if p.sudoers]
    return {
        "source": project.name, "maintainer": config.repository.maintainer,
        "pypi_name": project.pypi_name, "upstream_version": upstream.upstream_version,
        "release": release.name, "series": release.series, "distribution": dist.name,
        "version_tag": dist.version_tag, "uwsgi_binary": dist.uwsgi_binary,
        "python_lo": lo, "python_hi": hi, "python": str(dist.python),
        "python_version": dist.python_version,
        "reqdeb_package": reqdeb_package, "reqdeb_version": reqdeb_version,
        "native_build_depends": native_build_depends,
        "wheels_root": f"/usr/share/venvdeb/wheels/{release.name}",
        "venv_package": project.venv_package(release.name), "venv_path": venv_path,
        "venv_suffix": venv_path.rsplit("/", 1)[1], "packages": project.packages,
        "extras": project.extras, "venv_commands": referenced,
        "config_files": [(p.name, c) for p in project.packages for c in p.config_files],
        "units": units, "uwsgi": uwsgi, "sudoers": sudoers,
        "wsgi_scripts": [(p.name, w.path) for p in project.packages for w in p.wsgi_scripts],
        "user": project.user, "home": project.home,
        "project": project.name, "license": "Apache-2.0",
        "license_text": LICENSES["Apache-2.0"], "zstd_level": ZSTD_LEVEL,
        "bytecode_uncompiled": bytecode.UNCOMPILED,
        "sbom_file": "", "sbom_path": "",  # set by plan() when it has the venv's items
    }


def _per_package(package: BinaryPackage, context: dict[str, Any]) -> dict[str, str]:
    ctx = {**context, "package": package}
    out: dict[str, str] = {}
    for suffix in ("links", "install", "dirs"):
        text = render.render_file("venv", f"package/{suffix}.j2", ctx).strip()
        if text:
            out[f"{package.name}.{suffix}"] = text + "\n"
    if package.creates_user or package.directories or package.config_files:
        out[f"{package.name}.postinst"] = render.render_file("venv", "package/postinst.j2", ctx)
    if any(d.path.startswith("/var/") for d in package.directories):
        out[f"{package.name}.postrm"] = render.render_file("venv", "package/postrm.j2", ctx)
    for unit in package.units:
        out[f"{package.name}.{unit.name}.service"] = render.render_file(
            "venv", "unit/service.j2", {**ctx, "unit": unit})
    for service in package.uwsgi:
        out[f"{package.name}.{service.name}.service"] = render.render_file(
            "venv", "unit/uwsgi.service.j2", {**ctx, "service": service})
        out[f"venvdeb/uwsgi/{package.name}/{service.ini.rsplit('/', 1)[1]}"] = render.render_file(
            "venv", "package/uwsgi.ini.j2", {**ctx, "service": service})
    if package.log_directories:
        out[f"{package.name}.logrotate"] = render.render_file(
            "venv", "package/logrotate.j2", ctx).strip() + "\n"
    for wsgi in package.wsgi_scripts:
        out[f"venvdeb/wsgi/{package.name}/{wsgi.path.rsplit('/', 1)[1]}"] = render.render_file(
            "venv", "package/wsgi.j2", {**ctx, "wsgi": wsgi})
    if package.sudoers:
        out[f"venvdeb/sudoers/{package.name}"] = render.render_file("venv", "package/sudoers.j2", ctx)
    overrides = render.render_file("venv", "package/lintian-overrides.j2", ctx).strip()
    if overrides:
        out[f"{package.name}.lintian-overrides"] = overrides + "\n"
    return out


def plan(config: Config, project: Project, release: Release, dist: Distribution, *,
         upstream: Source, requirements: str, reqdeb_package: str, reqdeb_version: str,
         native_build_depends: tuple[str, ...] = (), items: tuple[Item, ...] = ()
         ) -> SourceDraft:
    """Pure: every file of debian/ but the changelog and copyright, and their digest.

    ``native_build_depends``: Debian packages the closure's locally built wheels
    link against (their declared build dependencies); dpkg-shlibdeps needs the
    libraries to compute the venv package's Depends, in any chroot."""
    if not project.packages:
        raise ConfigError(f"{config.path}: projects.{project.name} has no [[projects."
                          f"{project.name}.packages]]",
                          hint="name at least one Debian package (e.g. the one puppet installs)")
    context = _context(config, project, release, dist, upstream, reqdeb_package, reqdeb_version,
                       native_build_depends)
    if items:
        context.update(sbom_file=sbom.SOURCE_FILE, sbom_path=sbom.path(context["venv_package"]))
    files = render.render_tree("venv", {**context, "copyright_year": "YYYY"})
    for script in ("lintian-overrides", "postinst", "prerm"):
        files[f"{context['venv_package']}.{script}"] = files.pop(f"venv.{script}")
    for package in project.packages:
        files.update(_per_package(package, context))
    files["venvdeb/requirements.txt"] = requirements
    orig_sha = sha256(upstream.tarball)
    if items:
        files["venvdeb/sbom-form"] = sbom.FORM + "\n"  # (in the digest; not written)
    h = hashlib.sha256()
    # Not the requirements package's version: a new one whose wheels this closure does
    # not use must not rebuild the project (requirements.txt pins each wheel's hash).
    for part in [orig_sha, *(f"{k}\n{v}" for k, v in sorted(files.items()))]:
        h.update(part.encode() + b"\0")
    digest = h.hexdigest()
    del files["copyright"]  # its year comes with the version
    files.pop("venvdeb/sbom-form", None)
    changes = (f"{project.pypi_name} {upstream.upstream_version} for OpenStack {release.name} "
               f"({release.series}) in {context['venv_path']}, from {upstream.origin}.",
               f"Built from {reqdeb_package}: each wheel's hash in debian/venvdeb/requirements.txt; "
               f"inputs digest {digest}.",
               f"Versions carry the distribution before the serial (+{dist.version_tag}u<serial>, "
               f"as Debian's stable updates); builds before that scheme were "
               f"{upstream.upstream_version}-<serial>, which sorts above: a node holding one "
               f"takes this one once with apt-get install --allow-downgrades.")
    packages = (context["venv_package"], *(p.name for p in project.packages))
    return SourceDraft(project.name, upstream.upstream_version, digest, context["venv_package"],
                       packages, tuple(sorted(files.items())), upstream.tarball, changes,
                       config.repository.epoch,
                       {**context, "origin": config.repository.origin,
                        "architecture": dist.architecture, "debian_version": dist.debian_version},
                       items)


def versioned(draft: SourceDraft, assigned: versions.Assigned) -> SourcePlan:
    """The draft with the version the ledger gave it: changelog and copyright (pure)."""
    context = draft.context
    full = draft.version_for(assigned.serial)
    files = dict(draft.files)
    files["copyright"] = render.render_tree(
        "venv", {**context, "copyright_year": assigned.year})["copyright"]
    files["changelog"] = render.changelog(
        draft.source, full, str(context["distribution"]),
        [*draft.changes, *([f"Rebuild reason: {assigned.note}"] if assigned.note else [])],
        str(context["maintainer"]), assigned.date)
    if draft.items:
        files[sbom.SOURCE_FILE] = _sbom(draft, full, assigned.epoch)
    return SourcePlan(draft.source, draft.upstream_version, full, assigned.epoch,
                      draft.venv_package, draft.packages,
                      tuple(sorted((f"debian/{k}", v) for k, v in files.items())),
                      draft.orig, context)


def _sbom(draft: SourceDraft, version: str, epoch: int) -> str:
    context = draft.context
    venv_path = str(context["venv_path"])
    origin = sbom.Origin(
        namespace=str(context["origin"]).lower(), distro=f"debian-{context['debian_version']}",
        architecture=str(context["architecture"]), venv_package=draft.venv_package,
        version=version, source=draft.source, reqdeb_package=str(context["reqdeb_package"]),
        reqdeb_version=str(context["reqdeb_version"]), wheels_root=str(context["wheels_root"]),
        site_packages=f"{venv_path}/lib/python{context['python_version']}/site-packages",
        orig_name=f"{draft.source}_{draft.upstream_version}.orig.tar.gz")
    return sbom.document(draft.items[0], draft.items[1:], origin, digest=draft.digest,
                         epoch=epoch)


def make(the_plan: SourcePlan, out_dir: Path, log: Path) -> Path:
    """Write the .dsc (and its tarballs) into ``out_dir``; return the .dsc path."""
    dsc = out_dir / the_plan.dsc_name
    if dsc.exists():
        return dsc
    work = out_dir / "tmp-source"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    orig = work / the_plan.orig_name
    shutil.copyfile(the_plan.orig, orig)
    tree = work / f"{the_plan.source}-{the_plan.upstream_version}"
    upstream.unpack(orig, work / "unpack").rename(tree)
    if (tree / "debian").exists():
        shutil.rmtree(tree / "debian")
    render.write_tree({k: v for k, v in the_plan.files}, tree / "_render")
    shutil.move(str(tree / "_render" / "debian"), tree / "debian")
    shutil.rmtree(tree / "_render")
    for script in (tree / "debian").glob("*.post*"):
        script.chmod(0o755)
    check_tree_paths(tree, tuple((package, c.path, c.source or c.generate)
                                 for package, c in the_plan.context.get("config_files", ())))
    check_sudoers(sorted((tree / "debian" / "venvdeb" / "sudoers").glob("*")), log)
    env = runner.clean_environment({"SOURCE_DATE_EPOCH": str(the_plan.epoch)})
    runner.run(["dpkg-source", "-b", tree.name], cwd=work, env=env, log=log, what="dpkg-source")
    out_dir.mkdir(parents=True, exist_ok=True)
    for produced in sorted(work.glob(f"{the_plan.source}_*")):
        if produced.name != the_plan.dsc_name:
            produced.replace(out_dir / produced.name)
    (work / the_plan.dsc_name).replace(dsc)
    shutil.rmtree(work)
    return dsc


def check_tree_paths(tree: Path, wanted: tuple[tuple[str, str, str], ...]) -> None:
    """Each ``(package, conffile, path in the tree)`` must name a regular file
    inside the upstream tree, reached through no symbolic link: a hostile sdist
    must not get a host file (``etc/x -> /etc/shadow``) into a conffile."""
    root = tree.resolve()
    for package, conffile, rel in wanted:
        path = tree / rel
        where = f"{package}: {conffile} comes from {rel!r} of the upstream tree"
        parts = Path(rel).parts
        links = [tree.joinpath(*parts[:i]) for i in range(1, len(parts) + 1)
                 if tree.joinpath(*parts[:i]).is_symlink()]
        if links:
            raise ConfigError(f"{where}, but {links[0].relative_to(tree)} is a symbolic link",
                              hint="only regular files of the upstream tree become conffiles")
        if not path.is_file() or not path.resolve().is_relative_to(root):
            raise ConfigError(f"{where}, which is not a regular file there",
                              hint="fix 'source'/'generate' in the config for this version")


def check_sudoers(files: list[Path], log: Path) -> None:
    """Every rendered sudoers file must pass ``visudo -cf`` (sudo's own parser)."""
    if files and shutil.which("visudo") is None:
        raise CommandFailed("visudo (from sudo) is needed to check the rendered sudoers files",
                            hint="apt-get install sudo (bin/setup does)")
    for path in files:
        path.chmod(0o440)
        runner.run(["visudo", "-cf", str(path)], log=log, what=f"visudo -cf {path.name}")
