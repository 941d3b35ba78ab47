"""Each builder's steps: one venvdeb subcommand each, with its own log."""
from __future__ import annotations

from buildbot.plugins import steps, util

from builder.buildbot_plan import BuilderPlan

ENV = {"PIP_CONFIG_FILE": "/dev/null", "LC_ALL": "C.UTF-8"}


def make(plan: BuilderPlan) -> util.BuildFactory:
    factory = util.BuildFactory()
    for step in plan.steps:
        factory.addStep(steps.ShellCommand(
            name=step.name, command=list(step.argv), env=ENV, haltOnFailure=True,
            timeout=3600, description=step.name, descriptionDone=step.name))
    return factory
