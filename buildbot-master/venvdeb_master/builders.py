"""One builder per (project, release, distribution), per release's requirements
package, and per release's promotion; every worker can take any of them."""
from __future__ import annotations

from buildbot.plugins import util

from builder.buildbot_plan import BuilderPlan, Settings
from venvdeb_master import factories

#: the local builder installs a release's requirements package on the host:
#: builds of one release on one worker must not overlap
HOST_LOCK = util.WorkerLock("venvdeb-host", maxCount=1)


def make(site: Settings, plans: tuple[BuilderPlan, ...]) -> list[util.BuilderConfig]:
    names = [w.name for w in site.workers]
    locks = [HOST_LOCK.access("exclusive")] if site.builder == "local" else []
    return [util.BuilderConfig(name=p.name, workernames=names, factory=factories.make(p),
                               tags=[p.kind, p.release, p.distribution],
                               locks=locks if p.kind != "promote" else [])
            for p in plans]
