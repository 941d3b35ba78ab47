"""Each builder's steps: one venvdeb subcommand each, with its own log."""
from __future__ import annotations

from buildbot.plugins import steps, util
from buildbot.process import buildstep, logobserver
from buildbot.process.results import FAILURE, SUCCESS
from twisted.internet import defer

from venvdeb.buildbot.plan import PATH_POSITIONS, REASON, BuilderPlan, SameVenvdeb

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


class VenvdebVersion(buildstep.ShellMixin, buildstep.BuildStep):  # type: ignore[misc]
    """``venvdeb --version`` on the worker: unless it prints the master's code digest,
    the build stops here with one line (in the log and the step's description) naming
    both versions, before any step could fail mid-build or change anything."""

    def __init__(self, expect: SameVenvdeb, **kwargs: object) -> None:
        kwargs = self.setupShellMixin(kwargs)
        super().__init__(**kwargs)
        self.expect = expect
        self.observer = logobserver.BufferLogObserver(wantStdout=True, wantStderr=True)
        self.addLogObserver("stdio", self.observer)

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def]
        cmd = yield self.makeRemoteShellCommand()
        yield self.runCommand(cmd)
        worker = self.getProperty("workername") or "?"
        refusal = self.expect.refusal(str(worker), str(self.command[0]), cmd.rc,
                                      self.observer.getStdout(), self.observer.getStderr())
        stdio = yield self.getLog("stdio")
        if refusal is None:
            yield stdio.finish()
            self.descriptionDone = [f"worker {worker} runs {self.expect.line}"]
            return SUCCESS
        yield stdio.addStderr(refusal + "\n")
        yield stdio.finish()
        self.descriptionDone = [refusal]
        return FAILURE


def make(plan: BuilderPlan) -> util.BuildFactory:
    factory = util.BuildFactory()
    for step in plan.steps:
        if step.kind == "version":
            assert step.expect is not None
            factory.addStep(VenvdebVersion(
                step.expect, name=step.name, command=_command(step.argv), env=ENV,
                haltOnFailure=True, timeout=120, description=step.name))
            continue
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
