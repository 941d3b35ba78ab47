"""``venvdeb source``: a project's Debian source package (.dsc) for one release."""
from __future__ import annotations

from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import project


def run_source(config: Config, work: Workdir, t: Target, name: str, *,
               reason: str = "", assigned: tuple[int, int] | None = None) -> Outcome:
    _, _, dsc, made = project.make_source(config, work, t, name, reason=reason,
                                          assigned=assigned)
    return Outcome("source", name, f"source: {dsc}", changed=made)


def run_inputs(config: Config, work: Workdir, t: Target, name: str) -> Outcome:
    """What the version ledger knows the source package's inputs by (its key and
    digest), for a publisher that assigns the version; assigns and writes nothing."""
    log = work.fresh_log(t.logs, f"source-{name}")
    ps = project.plan(config, work, t, name, log)
    return Outcome("source", name, f"inputs: {ps.draft.ledger_key} {ps.draft.digest}",
                   changed=False)
