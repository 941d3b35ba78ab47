"""Workers from the settings: one local worker by default, more by adding entries."""
from __future__ import annotations

from buildbot.plugins import worker

from venvdeb.buildbot.plan import Settings


def make(site: Settings) -> list[worker.Worker]:
    return [worker.Worker(w.name, w.password, max_builds=w.max_builds,
                          properties=w.properties()) for w in site.workers]
