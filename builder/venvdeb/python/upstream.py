"""A project's upstream source as an orig tarball: the index's sdist at the
pinned version (hash-verified), or ``git archive`` of a branch or tag."""
from __future__ import annotations

import re
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import InvalidSdistFilename, canonicalize_name, parse_sdist_filename
from packaging.version import InvalidVersion, Version

from venvdeb.core import runner
from venvdeb.core.config import Project, Release
from venvdeb.core.errors import ConfigError, IndexError_
from venvdeb.core.files import sha256
from venvdeb.python import index


@dataclass(frozen=True)
class Source:
    tarball: Path          # the orig tarball (.tar.gz), one top directory
    upstream_version: str  # Debian upstream_version
    python_version: str    # what pbr and pip see (PBR_VERSION)
    origin: str            # for the changelog: where it came from


def fetch(project: Project, release: Release, cache: Path, log: Path,
          locked_hashes: frozenset[str] = frozenset(), *, scratch: Path | None = None) -> Source:
    """The orig tarball, from ``cache`` when it holds it. With ``scratch`` (a dry run),
    what is not cached is fetched there and ``cache`` is left as it is."""
    ref = project.upstream.ref_for(release.name)
    if project.upstream.git and ref:
        return _git(project, project.upstream.git, ref, scratch or cache, log)
    version = project.version_for(release.name)
    if version is None:
        raise ConfigError(f"project {project.name} has no version for release {release.name}",
                          hint=f"add versions.\"{release.name}\" to [projects.{project.name}]")
    return _sdist(project, release, version, cache, locked_hashes, scratch)


def _sdist(project: Project, release: Release, version: str, cache: Path,
           locked_hashes: frozenset[str], scratch: Path | None) -> Source:
    files = index.project_files(release.index_url, project.pypi_name)
    wanted = Version(version)
    for f in files:
        if not f.filename.endswith(".tar.gz"):
            continue
        try:
            name, sversion = parse_sdist_filename(f.filename)
        except (InvalidSdistFilename, InvalidVersion):
            continue
        if name != canonicalize_name(project.pypi_name) or sversion != wanted:
            continue
        allowed = locked_hashes or (frozenset({f.sha256}) if f.sha256 else frozenset())
        dest = cache / f.filename
        if not (dest.exists() and sha256(dest) in allowed):
            dest = (scratch or cache) / f.filename
            if not allowed:
                raise IndexError_(f"the index lists {f.filename} without a sha256")
            index.download(f.url, dest, allowed, f"{project.pypi_name} {version} (sdist)")
        return Source(dest, version, version, f"{f.filename} from {release.index_url}")
    raise IndexError_(
        f"the index {release.index_url} has no sdist of {project.pypi_name} {version} "
        f"(projects.{project.name}.versions.\"{release.name}\")",
        hint="check the version in pipeline.toml against the index")


def _git(project: Project, url: str, ref: str, cache: Path, log: Path) -> Source:
    with tempfile.TemporaryDirectory(prefix="venvdeb-git-") as tmp:
        checkout = Path(tmp) / "src"
        result = runner.run(["git", "clone", "--quiet", "--branch", ref, "--single-branch",
                              "--", url, str(checkout)], log=log, check=False, what="git clone")
        if result.returncode != 0:
            raise IndexError_(
                f"cannot fetch {ref!r} of {url} for project {project.name}",
                hint="check upstream.git and upstream.refs in pipeline.toml", log=log)
        describe = runner.run(["git", "describe", "--tags", "--long", "--match", "[0-9]*"],
                               log=log, cwd=checkout, check=False).output.strip()
        sha = runner.run(["git", "rev-parse", "--short=10", "HEAD"], log=log,
                          cwd=checkout).output.strip()
        match = re.fullmatch(r"(.+)-([0-9]+)-g[0-9a-f]+", describe)
        if not match:
            raise ConfigError(f"{url} at {ref} has no version tag (git describe: {describe!r})",
                              hint="tag a release on the branch", log=log)
        tag, distance = match.group(1), int(match.group(2))
        version = tag if distance == 0 else f"{tag}.post{distance}"
        prefix = f"{project.pypi_name}-{version}/"
        dest = cache / f"{project.name}-{version}.tar.gz"
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".part")
        runner.run(["git", "archive", "--format=tar.gz", f"--prefix={prefix}", "-o",
                     str(partial), "HEAD"], log=log, cwd=checkout)
        shutil.move(str(partial), dest)
        return Source(dest, version, version, f"{url} {ref} at {sha}")


def unpack(tarball: Path, dest: Path) -> Path:
    """Extract ``tarball`` (one top directory, no absolute or ``..`` paths,
    no links out of the tree) into ``dest``; return the top directory."""
    with tarfile.open(tarball) as tar:
        members = tar.getmembers()
        tops = {m.name.split("/", 1)[0] for m in members}
        if len(tops) != 1:
            raise ConfigError(f"{tarball.name} must hold one top directory, not {sorted(tops)[:5]}")
        for m in members:
            link = m.linkname if (m.issym() or m.islnk()) else ""
            if m.name.startswith("/") or ".." in m.name.split("/") or m.isdev() or \
                    link.startswith("/") or ".." in link.split("/"):
                raise ConfigError(f"{tarball.name}: refusing unsafe member {m.name!r}")
        tar.extractall(dest)  # members checked above (Python 3.11.2 has no filter=)
    return dest / tops.pop()
