"""Each builder's steps: one venvdeb subcommand each, with its own log."""
from __future__ import annotations

from buildbot.plugins import steps, util

from builder.buildbot_plan import REASON, BuilderPlan

ENV = {"PIP_CONFIG_FILE": "/dev/null", "LC_ALL": "C.UTF-8"}
#: the rebuild reason written into the changelog of a new version
WHY = util.Interpolate("buildbot %(prop:buildername)s build %(prop:buildnumber)s: "
                       "%(prop:branch:-no branch)s at %(prop:revision:-the branch head)s "
                       "(%(prop:scheduler)s)")


def make(plan: BuilderPlan) -> util.BuildFactory:
    factory = util.BuildFactory()
    for step in plan.steps:
        factory.addStep(steps.ShellCommand(
            name=step.name, command=[WHY if a == REASON else a for a in step.argv], env=ENV,
            haltOnFailure=True,
            timeout=3600, description=step.name, descriptionDone=step.name))
    return factory
