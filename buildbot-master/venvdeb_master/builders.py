"""One builder per (project, release, distribution), per release's requirements
package, and per release's promotion; every worker can take any of them."""
from __future__ import annotations

from buildbot.plugins import util

from venvdeb.buildbot.plan import BuilderPlan, Settings
from venvdeb_master import factories

_MASTER_LOCKS: dict[str, util.MasterLock] = {}


def _master_lock(name: str, max_count: int = 1) -> util.MasterLock:
    if name not in _MASTER_LOCKS:
        _MASTER_LOCKS[name] = util.MasterLock(name, maxCount=max_count)
    return _MASTER_LOCKS[name]


def _locks(site: Settings, p: BuilderPlan) -> list[object]:
    """One build per builder at a time (its outputs live in the shared workdir); a
    requirements build excludes the release's project builds, which share it."""
    release = _master_lock(f"release-{p.release}-{p.distribution}", max_count=1000)
    own = _master_lock(f"builder-{p.name}")
    if p.kind == "promote":
        return [release.access("counting"), own.access("exclusive")]
    # (no lock per worker host: the local builder installs nothing on the host, each
    # build sees its own requirements package in a private mount namespace)
    # (an audit locks and fetches wheels like a requirements build)
    return [own.access("exclusive"),
            release.access("exclusive" if p.kind in ("requirements", "audit") else "counting")]


def make(site: Settings, plans: tuple[BuilderPlan, ...]) -> list[util.BuilderConfig]:
    names = [w.name for w in site.workers]
    return [util.BuilderConfig(name=p.name, workernames=names, factory=factories.make(p),
                               tags=[p.kind, p.release, p.distribution], locks=_locks(site, p))
            for p in plans]
