"""Where a distribution's Python runs: on the host, or in that distribution's tree.

A distribution is the host's when its codename is the host's (``VERSION_CODENAME``
of /etc/os-release) and its ``python_version`` the running interpreter's: locking
and closures then run the host's Python, confined as the sandbox user
(``venvdeb.core.sandbox``). Any other distribution runs them in its tree, the
one its sdists build in (``tree``: made once by ``venvdeb.core.images``), entered
as an sdist build is: bound read-only, in a user namespace, as the unprivileged
``BUILDER``, with a scratch directory of its own bound on ``/build``; the network
only for a command that reads the index (the host's /etc/resolv.conf bound
read-only then), cut otherwise. ``Place`` is that choice as data.
"""
from __future__ import annotations

import dataclasses
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from venvdeb.core import host, images, mounts, runner, sandbox
from venvdeb.core.config import Config, Distribution
from venvdeb.core.errors import BuildDependencyMissing, ConfigError, HostError
from venvdeb.core.progress import say
from venvdeb.core.workdir import shared_cache

#: Who runs in a tree, in its user namespace (uid and gid; root there is the first
#: id of root's range in /etc/subuid, so this is that id + 1000 on the host): no
#: other confined step shares it, and it owns nothing on the host.
BUILDER = 1000
#: What every tree holds beside the config's ``sdist_build_dependencies``
#: (python3-pip depends on ca-certificates: pip reaches the index over https).
CHROOT_BASE = ("python3", "python3-dev", "python3-pip", "python3-venv", "build-essential")
#: Debian's pip (python3-pip) runs in the build's venv through its runner (what
#: ``pip --python`` does): it imports only pip from there, not the rest of dist-packages.
PIP_RUNNER = Path("/usr/lib/python3/dist-packages/pip/__pip-runner__.py")
#: The PATH in a tree: the target's own tools, never root's (pyenv shims...).
PATH = "/usr/bin:/bin"
#: Where the scratch directory is bound in a tree.
INSIDE = Path(images.SCRATCH)
#: The host's resolver configuration and the CA certificates it trusts (a proxy's
#: CA too, which the tree's ca-certificates lacks), bound read-only over the tree's
#: for a command that has the network: it reaches the index as the host does.
RESOLV_CONF = "/etc/resolv.conf"
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def chroot_packages(declared: Sequence[str]) -> tuple[str, ...]:
    """The Debian packages of a distribution's tree: ``CHROOT_BASE`` and ``declared``."""
    return tuple(sorted({*CHROOT_BASE, *declared}))


def target_pip(root: Path | None = None) -> str:
    """Debian's pip of the target interpreter (in ``root``, the build chroot, if
    given), run as ``python3 PIP_RUNNER`` (what ``pip --python`` does): nothing of
    venvdeb's own venv reaches the sandbox."""
    where = PIP_RUNNER if root is None else root / PIP_RUNNER.relative_to("/")
    if not where.is_file():
        raise BuildDependencyMissing(
            f"{where} is missing: closures, locks and sdist builds run the target's pip",
            hint="run: apt-get install python3-pip" if root is None
            else f"remove {root} (a damaged build chroot): the next run makes it again")
    return str(PIP_RUNNER)


def tree(config: Config, distribution: Distribution, log: Path) -> Path:
    """The tree of ``distribution`` (made on first use, shared by every workdir); a
    package apt cannot install names the config key declaring it."""
    packages = chroot_packages(config.all_build_dependencies())
    dist = distribution
    say(f"{dist.name}: its tree (sdist builds, locks, closures): {len(packages)} packages "
        f"(made once, then reused)")
    try:
        return images.tree(dist.name, dist.architecture, dist.mirror, shared_cache() / "trees",
                           log, packages=packages, what=f"mmdebstrap ({dist.name} tree)")
    except images.ImageError as exc:
        declared = [f'[sdist_build_dependencies] "{name}"'
                    for name, deps in sorted(config.sdist_build_dependencies.items())
                    if set(deps) & set(exc.packages)]
        if not declared:
            raise
        raise ConfigError(
            f"{config.path}: {', '.join(declared)}: {dist.name} has no package "
            f"{', '.join(exc.packages)} (apt cannot install it into its tree)",
            hint="name the Debian package that provides the headers or tool "
                 "(apt-cache search on a node of that distribution)", log=exc.log) from None


@dataclass(frozen=True)
class Place:
    """Where confined commands of a distribution run: the host (``root`` None) or
    the distribution's tree ``root``; ``python``: its interpreter there."""

    root: Path | None = None
    python: str = "/usr/bin/python3"
    #: more read-only binds for commands in the tree (a local index)
    binds: tuple[mounts.Bind, ...] = ()

    def scratch(self, prefix: str) -> AbstractContextManager[Path]:
        """A scratch directory the command's user owns (see ``sandbox.scratch``)."""
        return sandbox.scratch(prefix, owner=None if self.root is None else builder())

    def give(self, path: Path) -> None:
        sandbox.give(path, None if self.root is None else builder())

    def inside(self, box: Path) -> Path:
        """Where the scratch directory ``box`` is, seen by the command."""
        return box if self.root is None else INSIDE

    def confine(self, box: Path, argv: Sequence[str | os.PathLike[str]], *,
                network: bool = False) -> tuple[str, ...]:
        """``argv`` confined, working in ``box`` (the network cut unless ``network``)."""
        if self.root is None:
            return sandbox.confine(argv, network=network)
        return wrap(self.root, box, argv, network=network, binds=self.binds)

    def environment(self, box: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The command's environment: home and temporary files in ``box``."""
        where = self.inside(box)
        if self.root is None:
            return runner.clean_environment({"HOME": str(where), "TMPDIR": str(where),
                                             **(extra or {})})
        return tree_environment({"HOME": str(where / "home"), "TMPDIR": str(where / "tmp"),
                                 **(extra or {})})


#: The host: its Python, confined as the sandbox user.
HOST = Place()


def place(config: Config, distribution: Distribution, log: Path, what: str) -> Place:
    """Where ``what`` (a step, for errors) runs for ``distribution``: the host when it
    is the host's, else its tree (made on first use), checked to hold its Python."""
    if host.native(distribution):
        return HOST
    if os.geteuid() != 0:
        raise HostError(f"{what} for {distribution.name} runs in its tree (Debian "
                        f"{distribution.debian_version}, Python {distribution.python_version}): "
                        f"that needs root", hint="run venvdeb as root (it drops to an "
                        "unprivileged uid in the tree)")
    root = tree(config, distribution, log)
    python = f"python{distribution.python_version}"
    if not (root / "usr" / "bin" / python).is_file():
        raise ConfigError(f"{config.path}: distributions.{distribution.name}.python_version: "
                          f"its tree {root} has no {python}",
                          hint=f"set python_version to {distribution.name}'s python3 version")
    for name in (RESOLV_CONF, CA_BUNDLE):
        if not (root / name.lstrip("/")).is_file():
            raise HostError(f"the tree {root} of {distribution.name} has no {name} to bind the "
                            f"host's on", hint=f"remove {root}: the next run makes it again")
    return Place(root, str(distribution.python))


def builder() -> sandbox.Identity:
    """``BUILDER`` as the host sees it (the owner of a tree's scratch directories)."""
    sub_uid, sub_gid = mounts.subordinate()
    return sandbox.Identity(sub_uid + BUILDER, sub_gid + BUILDER)


def host_ca_bundle() -> Path:
    """The CA certificates the host's own pip-compile trusts: ``SSL_CERT_FILE``, else
    Debian's bundle (with the local CAs update-ca-certificates added)."""
    named = os.environ.get("SSL_CERT_FILE")
    return Path(named) if named and Path(named).is_file() else Path(CA_BUNDLE)


def tree_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a command in a tree: the tree's PATH and CA certificates
    (the host's bound there, see ``wrap``), never the host's paths."""
    env = runner.clean_environment({"PATH": PATH, **(extra or {})})
    env.pop("SSL_CERT_DIR", None)
    env["SSL_CERT_FILE"] = CA_BUNDLE
    return env


def index_in(where: Place, box: Path, index_url: str) -> tuple[str, Place]:
    """The release's index as a command in the tree ``where`` reaches it: an http(s)
    index at its URL; a local one (file://) with its parent directory (where a
    simple/ index's links lead: files/ beside it) bound read-only on /build/index (a
    mount point made in ``box``), with ``where`` carrying that bind."""
    if where.root is None or not index_url.startswith("file://"):
        return index_url, where
    path = Path(urllib.parse.urlparse(index_url).path)
    (box / "index").mkdir()
    bind = mounts.Bind(path.parent, str(INSIDE / "index"))
    return f"file://{INSIDE / 'index' / path.name}", \
        dataclasses.replace(where, binds=(*where.binds, bind))


def wrap(root: Path, box: Path, argv: Sequence[str | os.PathLike[str]], *,
         network: bool = False, cwd: str = str(INSIDE),
         binds: Sequence[mounts.Bind] = ()) -> tuple[str, ...]:
    """``argv`` run in the tree ``root`` as ``BUILDER`` with ``box`` bound on /build
    (then ``binds``, read-only); with ``network``, the host's resolver configuration
    is bound too."""
    binds = [mounts.Bind(box, str(INSIDE), writable=True), *binds]
    if network:
        binds += [mounts.Bind(Path(RESOLV_CONF), RESOLV_CONF),
                  mounts.Bind(host_ca_bundle(), CA_BUNDLE)]
    view = mounts.View(tuple(binds), root, read_only=True, userns=True, user=(BUILDER, BUILDER),
                       cwd=cwd)
    return view.wrap(argv, network=network)

