"""A GitPoller per project builder with an upstream git repository and branch."""
from __future__ import annotations

from buildbot.plugins import changes

from venvdeb.buildbot.plan import BuilderPlan, Settings


def make(site: Settings, plans: tuple[BuilderPlan, ...]) -> list[changes.GitPoller]:
    out = []
    for p in plans:
        if p.poller is None:
            continue
        out.append(changes.GitPoller(
            repourl=p.poller.repourl, branches=[p.poller.branch], project=p.change_project,
            pollInterval=site.poll_interval, pollAtLaunch=True,
            workdir=f"gitpoller-{p.name}"))
    return out
