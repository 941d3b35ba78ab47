"""``venvdeb source``: a project's Debian source package (.dsc) for one release."""
from __future__ import annotations

from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import project


def run_source(config: Config, work: Workdir, t: Target, name: str, *,
               reason: str = "") -> Outcome:
    _, _, dsc, made = project.make_source(config, work, t, name, reason=reason)
    return Outcome("source", name, f"source: {dsc}", changed=made)
