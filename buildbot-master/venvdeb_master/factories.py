"""Each builder's steps: one venvdeb subcommand each, with its own log."""
from __future__ import annotations

from buildbot.plugins import steps, util

from venvdeb.buildbot.plan import PATH_POSITIONS, REASON, BuilderPlan

ENV = {"PIP_CONFIG_FILE": "/dev/null", "LC_ALL": "C.UTF-8"}
#: the rebuild reason written into the changelog of a new version
WHY = util.Interpolate("buildbot %(prop:buildername)s build %(prop:buildnumber)s: "
                       "%(prop:branch:-no branch)s at %(prop:revision:-the branch head)s "
                       "(%(prop:scheduler)s)")


def _affected(rc: int, stdout: str, stderr: str) -> dict[str, list[str]]:
    last = [line for line in stdout.splitlines() if line.startswith("affected:")]
    return {"affected": last[-1].split()[1:] if last else []}


def _wanted(project: str):  # type: ignore[no-untyped-def]
    def check(step) -> bool:  # type: ignore[no-untyped-def]
        return project in (step.getProperty("affected") or [])
    return check


def _command(argv: tuple[str, ...]) -> list[object]:
    """The step's argv; the venvdeb, config and workdir paths as the worker says, if it does."""
    out: list[object] = []
    for i, a in enumerate(argv):
        if a == REASON:
            out.append(WHY)
        elif i in PATH_POSITIONS:
            out.append(util.Interpolate(f"%(prop:{PATH_POSITIONS[i]}:-{a})s"))
        else:
            out.append(a)
    return out


def make(plan: BuilderPlan) -> util.BuildFactory:
    factory = util.BuildFactory()
    for step in plan.steps:
        if step.kind == "affected":
            factory.addStep(steps.SetPropertyFromCommand(
                name=step.name, command=_command(step.argv),
                env=ENV, extract_fn=_affected, haltOnFailure=True, timeout=3600))
            for project, builder in plan.triggers:
                factory.addStep(steps.Trigger(
                    name=f"rebuild {project}", schedulerNames=[f"rebuild-{builder}"],
                    waitForFinish=False, doStepIf=_wanted(project), hideStepIf=False))
            continue
        factory.addStep(steps.ShellCommand(
            name=step.name, command=_command(step.argv), env=ENV,
            haltOnFailure=True,
            timeout=3600, description=step.name, descriptionDone=step.name))
    return factory
