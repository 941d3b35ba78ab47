"""Each builder's steps: one venvdeb subcommand each, with its own log."""
from __future__ import annotations

from buildbot.plugins import steps, util
from buildbot.process import buildstep, logobserver
from buildbot.process.results import FAILURE, SUCCESS, WARNINGS
from twisted.internet import defer, threads

from venvdeb.buildbot import publisher
from venvdeb.buildbot.plan import (
    ASSIGNED,
    INCOMING,
    NOTE,
    PATH_POSITIONS,
    REASON,
    REQUIREMENTS,
    REQUIREMENTS_ASSIGNED,
    UPLOAD_DIR,
    WORKER,
    Assignment,
    BuilderPlan,
    SameVenvdeb,
)
from venvdeb.core.errors import VenvdebError

ENV = {"PIP_CONFIG_FILE": "/dev/null", "LC_ALL": "C.UTF-8"}
#: the rebuild reason written into the changelog of a new version
WHY = util.Interpolate("buildbot %(prop:buildername)s build %(prop:buildnumber)s: "
                       "%(prop:branch:-no branch)s at %(prop:revision:-the branch head)s "
                       "(%(prop:scheduler)s)%(prop:venvdeb_why:-)s")


def _affected(rc: int, stdout: str, stderr: str) -> dict[str, object]:
    """``affected``: the projects to rebuild (the last line); ``affected_why``: each one's
    reason, from its verdict line (``rebuild P OLD -> NEW: why``)."""
    last = [line for line in stdout.splitlines() if line.startswith("affected:")]
    why = {line.split()[1]: line.split(": ", 1)[1] for line in stdout.splitlines()
           if line.startswith("rebuild ") and ": " in line}
    return {"affected": last[-1].split()[1:] if last else [], "affected_why": why}


def _why(project: str):  # type: ignore[no-untyped-def]
    """What a triggered rebuild's changelog says: the requirements build and why."""
    @util.renderer  # type: ignore[misc]
    def render(props):  # type: ignore[no-untyped-def]
        why = (props.getProperty("affected_why") or {}).get(project)
        return (f"; requirements update ({props.getProperty('buildername')} build "
                f"{props.getProperty('buildnumber')}): {why}") if why else ""
    return render


def _inputs(prefix: str):  # type: ignore[no-untyped-def]
    def extract(rc: int, stdout: str, stderr: str) -> dict[str, str]:
        return publisher.inputs(stdout, prefix)
    return extract


def _wanted(project: str):  # type: ignore[no-untyped-def]
    def check(step) -> bool:  # type: ignore[no-untyped-def]
        return project in (step.getProperty("affected") or [])
    return check


def _incoming(workdir: str) -> util.Interpolate:
    """Where the build's upload lands on the master (the publisher's workdir)."""
    return util.Interpolate(f"{workdir}/incoming/%(prop:buildername)s-%(prop:buildnumber)s")


PLACEHOLDERS = {
    REASON: WHY,
    NOTE: util.Interpolate("%(prop:venvdeb_note)s"),
    ASSIGNED: util.Interpolate("%(prop:venvdeb_serial)s:%(prop:venvdeb_epoch)s"),
    REQUIREMENTS_ASSIGNED: util.Interpolate(f"%(prop:{REQUIREMENTS}venvdeb_serial)s:"
                                            f"%(prop:{REQUIREMENTS}venvdeb_epoch)s"),
    WORKER: util.Interpolate("%(prop:workername)s"),
}


def _command(argv: tuple[str, ...], master: bool = False,
             incoming: util.Interpolate | None = None) -> list[object]:
    """The step's argv; the venvdeb, config and workdir paths as the worker says, if it
    does (a step on the master: its own)."""
    out: list[object] = []
    for i, a in enumerate(argv):
        if a in PLACEHOLDERS:
            out.append(PLACEHOLDERS[a])
        elif a == INCOMING and incoming is not None:
            out.append(incoming)
        elif i in PATH_POSITIONS and not master:
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


class PublisherVersion(buildstep.BuildStep):  # type: ignore[misc]
    """On the master: the version of the inputs the worker reported, from the
    publisher's ledger (venvdeb.buildbot.publisher), as build properties."""

    def __init__(self, assignment: Assignment, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.assignment = assignment

    @defer.inlineCallbacks
    def run(self):  # type: ignore[no-untyped-def]
        a = self.assignment
        log = yield self.addLog("stdio")
        why = yield self.build.render(WHY)
        try:
            reported = publisher.check(a.key, a.versioned,
                                       self.getProperty(f"{a.prefix}ledger_key"),
                                       self.getProperty(f"{a.prefix}inputs_digest"))
            got = yield threads.deferToThread(publisher.assign, a.ledger, a.release, a.tag,
                                              reported, str(why))
        except VenvdebError as exc:
            line = exc.message + (f"; {exc.hint}" if exc.hint else "")
            yield log.addStderr(line + "\n")
            yield log.finish()
            self.descriptionDone = [line]
            return FAILURE
        for name, value in (("venvdeb_serial", got.serial), ("venvdeb_epoch", got.epoch),
                            ("venvdeb_note", got.note)):
            self.setProperty(f"{a.prefix}{name}", value, "publisher")
        yield log.addStdout(f"{reported.key} {reported.digest}: serial {got.serial}, "
                            f"date {got.date}, from the publisher's ledger {a.ledger}\n"
                            f"reason: {got.note}\n")
        yield log.finish()
        self.descriptionDone = [f"serial {got.serial}"]
        return SUCCESS


def make(plan: BuilderPlan) -> util.BuildFactory:
    factory = util.BuildFactory()
    incoming = _incoming(str(plan.publisher)) if plan.publisher else None
    for step in plan.steps:
        if step.kind == "version":
            assert step.expect is not None
            factory.addStep(VenvdebVersion(
                step.expect, name=step.name, command=_command(step.argv), env=ENV,
                haltOnFailure=True, timeout=120, description=step.name))
            continue
        if step.kind == "inputs":
            factory.addStep(steps.SetPropertyFromCommand(
                name=step.name, command=_command(step.argv), env=ENV,
                extract_fn=_inputs(step.prefix), haltOnFailure=True,
                timeout=3600))
            continue
        if step.kind == "assign":
            assert step.assign is not None
            factory.addStep(PublisherVersion(step.assign, name=step.name, haltOnFailure=True))
            continue
        if step.kind == "accept":
            factory.addStep(steps.MasterShellCommand(
                name=step.name, command=_command(step.argv, True, incoming), env=ENV,
                haltOnFailure=True, description=step.name, descriptionDone=step.name))
            continue
        if step.kind == "affected":
            factory.addStep(steps.SetPropertyFromCommand(
                name=step.name, command=_command(step.argv),
                env=ENV, extract_fn=_affected, haltOnFailure=True, timeout=3600))
            for project, builder in plan.triggers:
                factory.addStep(steps.Trigger(
                    name=f"rebuild {project}", schedulerNames=[f"rebuild-{builder}"],
                    waitForFinish=False, doStepIf=_wanted(project), hideStepIf=False,
                    set_properties={"venvdeb_why": _why(project)}))
            continue
        if step.kind == "audit":  # red on a finding, orange without an advisory source
            factory.addStep(steps.ShellCommand(
                name=step.name, command=_command(step.argv), env=ENV, haltOnFailure=False,
                flunkOnFailure=True, decodeRC={0: SUCCESS, 3: FAILURE, 69: WARNINGS},
                timeout=3600, description=step.name, descriptionDone=step.name))
            continue
        factory.addStep(steps.ShellCommand(
            name=step.name, command=_command(step.argv), env=ENV,
            haltOnFailure=True,
            timeout=3600, description=step.name, descriptionDone=step.name))
        if step.kind == "upload":  # to the master, over the worker's own connection
            factory.addStep(steps.DirectoryUpload(
                name="upload to the publisher", workersrc=UPLOAD_DIR,
                masterdest=incoming, haltOnFailure=True))
    return factory
