"""A commit on a project's stable branch rebuilds that project for that release;
nightly rebuilds of the requirements packages, then nightly audits; force for every
builder; promotion only by hand."""
from __future__ import annotations

from buildbot.plugins import schedulers, util

from venvdeb.buildbot.plan import BuilderPlan, Settings

#: the force scheduler of the promote builders: only admins may use it (www.py)
PROMOTE = "promote"


def make(site: Settings, plans: tuple[BuilderPlan, ...]) -> list[schedulers.BaseScheduler]:
    out: list[schedulers.BaseScheduler] = []
    for p in plans:
        if p.poller is not None:
            out.append(schedulers.SingleBranchScheduler(
                name=f"commit-{p.name}", builderNames=[p.name], treeStableTimer=None,
                change_filter=util.ChangeFilter(project=p.change_project,
                                                branch=p.poller.branch)))
        if p.kind == "project":  # what a requirements build triggers
            out.append(schedulers.Triggerable(name=f"rebuild-{p.name}", builderNames=[p.name]))
    requirements = [p.name for p in plans if p.kind == "requirements"]
    if requirements:
        out.append(schedulers.Nightly(name="nightly-requirements", builderNames=requirements,
                                      hour=site.nightly_hour, minute=0))
    audits = [p.name for p in plans if p.kind == "audit"]
    if audits:  # after the requirements builds: the pins they left, today's advisories
        out.append(schedulers.Nightly(name="nightly-audit", builderNames=audits,
                                      hour=site.nightly_hour, minute=30))
    out.append(schedulers.ForceScheduler(
        name="force", builderNames=[p.name for p in plans if p.kind != "promote"]))
    promote = [p.name for p in plans if p.kind == "promote"]
    if promote:
        out.append(schedulers.ForceScheduler(name=PROMOTE, builderNames=promote,
                                             buttonName="Promote to production"))
    return out
