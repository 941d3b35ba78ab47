"""``venvdeb tooldeb``: venvdeb itself as a Debian package, built, linted and
install-tested (venvdeb.debian.tool_package makes it)."""
from __future__ import annotations

from dataclasses import dataclass

from venvdeb import __version__
from venvdeb.core import build_record, layout, versions
from venvdeb.core.config import Config, Distribution
from venvdeb.core.errors import ConfigError
from venvdeb.core.outcome import Outcome, Planned
from venvdeb.core.workdir import Workdir
from venvdeb.debian import tool_package
from venvdeb.qa import candidates, gate, install_test


@dataclass(frozen=True)
class ToolStep:
    distribution: Distribution
    plan: tool_package.ToolPlan
    version: versions.Assigned  # peeked
    record: build_record.BuildRecord | None

    @property
    def up_to_date(self) -> bool:
        return self.record is not None and not self.version.new and \
            self.record.version == f"{self.version.version}-1" and self.record.complete


def _distribution(config: Config, name: str | None) -> Distribution:
    if name is not None and name not in config.distributions:
        raise ConfigError(f"unknown distribution {name!r}",
                          hint=f"the config has: {', '.join(sorted(config.distributions))}")
    return config.distributions[name] if name else next(iter(config.distributions.values()))


def plan_tooldeb(config: Config, work: Workdir, dist_name: str | None = None) -> ToolStep:
    """Pure: the package's plan from the checkout's files, its version, its record."""
    dist = _distribution(config, dist_name)
    log = work.fresh_log("tool", f"tooldeb-{dist.name}")
    root = layout.SOURCE_TREE
    the_plan = tool_package.plan(config, dist, root, tool_package.tracked_files(root, log))
    peeked = versions.peek(work.versions, f"{tool_package.PACKAGE}/{dist.name}", __version__,
                           the_plan.digest, tag=dist.version_tag)
    return ToolStep(dist, the_plan, peeked, build_record.find(work.tool(dist.name)))


def dry_run(config: Config, work: Workdir, dist_name: str | None = None) -> Planned:
    step = plan_tooldeb(config, work, dist_name)
    want = f"{step.version.version}-1"
    if not step.up_to_date or step.record is None:
        return Planned("tooldeb", step.plan.distribution, True, f"venvdeb {want} is not built")
    todo = [c for c in ("lintian", "install")
            if gate.pending(work.checks, step.record.debs, c)]  # type: ignore[arg-type]
    if todo:
        return Planned("tooldeb", step.plan.distribution, True,
                       f"venvdeb {want}: {' and '.join(todo)} not passed")
    return Planned("tooldeb", step.plan.distribution, False, f"venvdeb {want} is built and passed")


def run_tooldeb(config: Config, work: Workdir, dist_name: str | None = None, *,
                force: bool = False, refresh_chroot: bool = False) -> Outcome:
    step = plan_tooldeb(config, work, dist_name)
    dist = step.distribution
    out = work.tool(dist.name)
    out.mkdir(parents=True, exist_ok=True)
    log = work.log("tool", f"tooldeb-{dist.name}")
    assigned = versions.assign(work.versions, f"{tool_package.PACKAGE}/{dist.name}",
                               __version__, step.plan.digest, tag=dist.version_tag)
    rec = step.record
    built = False
    if force or not step.up_to_date or rec is None:
        rec = tool_package.build(step.plan, layout.SOURCE_TREE, assigned,
                                 work.cache / "tool-vendor", out, log)
        built = True
    [deb] = rec.debs
    ledger = work.checks
    gate.lint(ledger, rec.changes, rec.debs, log, distribution=dist, force=force or built,
              stage="tooldeb")
    the_plan = install_test.ToolPlan(tool_package.PACKAGE, tool_package.SMOKE,
                                     tool_package.OWNED)

    def test() -> list[str]:
        with candidates.candidate_chroot(dist, (deb,), log, refresh=refresh_chroot) as box:
            return install_test.run_tool(the_plan, box)

    seen = gate.install(ledger, rec.debs, test, force=force or built)
    if seen is None:
        return Outcome("tooldeb", dist.name, f"tooldeb: up to date: {deb.name} passed lintian "
                                             f"and the install test", changed=False)
    return Outcome("tooldeb", dist.name,
                   f"tooldeb: {deb.name}: {'built, ' if built else ''}lintian passed; install "
                   f"test passed: {'; '.join(seen)}")
