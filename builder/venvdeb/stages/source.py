"""``venvdeb source``: a project's Debian source package (.dsc) for one release."""
from __future__ import annotations

from venvdeb.core.config import Config
from venvdeb.core.outcome import Outcome
from venvdeb.core.progress import say
from venvdeb.core.target import Target
from venvdeb.core.workdir import Workdir
from venvdeb.debian import project, source_package


def run_source(config: Config, work: Workdir, t: Target, name: str, *,
               reason: str = "") -> Outcome:
    log = work.fresh_log(t.release.name, f"source-{name}")
    say(f"source: {name} for {t.release.name}: fetching the upstream source")
    ps = project.plan(config, work, t, name, log)
    the_plan = project.assign_version(work, t, ps, reason=reason)
    say(f"source: {the_plan.source} {the_plan.version}: {ps.dependencies} dependencies, "
        f"packages {', '.join(the_plan.packages)}")
    existed = (ps.out_dir / the_plan.dsc_name).exists()
    dsc = source_package.make(the_plan, ps.out_dir, log)
    return Outcome("source", name, f"source: {dsc}", changed=not existed)
