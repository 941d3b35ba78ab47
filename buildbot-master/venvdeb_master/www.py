"""The web UI: who may log in and with which roles (the users file of the settings,
read at each login and each action) and what each role may do. Anyone may view; a
user of the file may force ordinary builds; promotion, stop, cancel and every other
control action need the admin role."""
from __future__ import annotations

from typing import Any

from buildbot.plugins import util
from buildbot.www.authz.endpointmatchers import EndpointMatcherBase, Match
from buildbot.www.authz.roles import RolesFromBase
from twisted.internet import defer
from twisted.python import log

from venvdeb.buildbot import users
from venvdeb.buildbot.plan import Settings
from venvdeb.core.errors import VenvdebError
from venvdeb_master.schedulers import PROMOTE


def _user(site: Settings, name: str) -> users.User | None:
    try:
        return users.load(site.users).get(name)
    except VenvdebError as exc:  # checkconfig read it; someone broke it since
        log.msg(f"venvdeb: {name} refused: {exc.message}")
        return None


class UsersFileAuth(util.CustomAuth):  # type: ignore[misc]
    """HTTP basic auth against the scrypt hashes of the users file."""

    def __init__(self, site: Settings) -> None:
        self.site = site
        super().__init__()

    def check_credentials(self, username: bytes, password: bytes) -> bool:
        user = _user(self.site, username.decode("utf-8", "replace"))
        return user is not None and users.verify(user.password,
                                                 password.decode("utf-8", "replace"))


class RolesFromUsersFile(RolesFromBase):  # type: ignore[misc]
    """A logged-in user's roles, read from the users file at each action, not kept in
    the session (a week-long cookie that survives restarts): a user or role removed
    from the file loses its rights at once."""

    def __init__(self, site: Settings) -> None:
        super().__init__()
        self.site = site

    def getRolesFromUser(self, userDetails: dict[str, Any]) -> list[str]:
        name = userDetails.get("username")
        user = _user(self.site, name) if isinstance(name, str) else None
        return user.groups if user is not None else []


class ForceSchedulerMatcher(EndpointMatcherBase):  # type: ignore[misc]
    """A force of the named force scheduler (whatever builder it names)."""

    def __init__(self, scheduler: str, **kwargs: Any) -> None:
        self.scheduler = scheduler
        super().__init__(**kwargs)

    def match_ForceSchedulerEndpoint_force(self, epobject: Any, epdict: dict[str, Any],
                                            options: dict[str, Any]) -> defer.Deferred[Any]:
        if epdict.get("schedulername") == self.scheduler:
            return defer.succeed(Match(self.master))
        return defer.succeed(None)


def authz(site: Settings) -> util.Authz:
    """The first rule matching an action decides: a user without its role is refused."""
    return util.Authz(
        allowRules=[
            ForceSchedulerMatcher(PROMOTE, role=users.ADMIN),
            util.ForceBuildEndpointMatcher(role=users.USER),
            util.StopBuildEndpointMatcher(role=users.ADMIN),
            # everything else that is not a GET: cancel, rebuild, pause, workers' actions
            util.AnyControlEndpointMatcher(role=users.ADMIN),
        ],
        roleMatchers=[RolesFromUsersFile(site)])


def make(site: Settings) -> dict[str, object]:
    return {"port": site.web_endpoint, "plugins": {}, "auth": UsersFileAuth(site),
            "authz": authz(site)}
