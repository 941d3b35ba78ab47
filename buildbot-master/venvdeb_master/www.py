"""The web UI: who may log in (the users file of the settings, read at each login)
and what each role may do. Anyone may view; a user of the file may force ordinary
builds; promotion, stop, cancel and every other control action need the admin role."""
from __future__ import annotations

from typing import Any

from buildbot.plugins import util
from buildbot.www.auth import UserInfoProviderBase
from buildbot.www.authz.endpointmatchers import EndpointMatcherBase, Match
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
        log.msg(f"venvdeb: login refused: {exc.message}")
        return None


class UsersFileAuth(util.CustomAuth):  # type: ignore[misc]
    """HTTP basic auth against the scrypt hashes of the users file."""

    def __init__(self, site: Settings) -> None:
        self.site = site
        super().__init__(userInfoProvider=UsersFileRoles(site))

    def check_credentials(self, username: bytes, password: bytes) -> bool:
        user = _user(self.site, username.decode("utf-8", "replace"))
        return user is not None and users.verify(user.password,
                                                 password.decode("utf-8", "replace"))


class UsersFileRoles(UserInfoProviderBase):  # type: ignore[misc]
    """A logged-in user's groups: ``user`` plus the roles the file gives."""

    def __init__(self, site: Settings) -> None:
        self.site = site

    def getUserInfo(self, username: str) -> defer.Deferred[dict[str, Any]]:
        user = _user(self.site, username)
        return defer.succeed({"username": username,
                              "groups": user.groups if user is not None else []})


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


def authz() -> util.Authz:
    """The first rule matching an action decides: a user without its role is refused."""
    return util.Authz(
        allowRules=[
            ForceSchedulerMatcher(PROMOTE, role=users.ADMIN),
            util.ForceBuildEndpointMatcher(role=users.USER),
            util.StopBuildEndpointMatcher(role=users.ADMIN),
            # everything else that is not a GET: cancel, rebuild, pause, workers' actions
            util.AnyControlEndpointMatcher(role=users.ADMIN),
        ],
        roleMatchers=[util.RolesFromGroups()])


def make(site: Settings) -> dict[str, object]:
    return {"port": site.web_endpoint, "plugins": {}, "auth": UsersFileAuth(site),
            "authz": authz()}
