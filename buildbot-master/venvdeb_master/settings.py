"""Load pipeline.toml and the buildbot settings; compute the plan."""
from __future__ import annotations

from pathlib import Path

from buildbot import config as bb_config

from venvdeb.buildbot import plan as buildbot_plan
from venvdeb.buildbot import users
from venvdeb.core import config as venvdeb_config
from venvdeb.core.errors import VenvdebError


def load(checkout: str) -> tuple[venvdeb_config.Config, buildbot_plan.Settings,
                                 tuple[buildbot_plan.BuilderPlan, ...]]:
    try:
        site = buildbot_plan.load_settings(None, Path(checkout))
        users.load(site.users)  # a broken users file fails checkconfig, not a login
        config = venvdeb_config.load(site.config)
        plans = buildbot_plan.plan(config, site)
        buildbot_plan.check_sources(plans, site.basedir.parent / "checkconfig.log")
    except VenvdebError as exc:
        bb_config.error(f"venvdeb: {exc.message}" + (f"; {exc.hint}" if exc.hint else ""))
        raise
    return config, site, plans
