"""The REST API's routing: a call, its reply, a route table entry and the errors handlers raise."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from tests.standin import auth
from tests.standin.state import App, GitHubState, Installation, Repo, Token
from tests.standin.users_json import Urls


class Caller(Enum):
    """Which credential a route accepts."""

    APP = "app JWT"
    INSTALLATION = "installation token"
    NONE = "no credential"


@dataclass(frozen=True)
class Call:
    """One authenticated API request, as a handler sees it."""

    state: GitHubState
    urls: Urls
    params: dict[str, str]
    query: dict[str, str]
    body: dict[str, Any]
    app: App | None = None
    installation: Installation | None = None
    token: Token | None = None  # an installation token's own scope: repos and permissions

    def repo(self) -> Repo:
        """Return the `{owner}/{repo}` of the path if the caller's token covers it."""
        repo = self.state.repos.get(f"{self.params['owner']}/{self.params['repo']}")
        if repo is None or self.token is None or not self.token.covers(repo):
            raise HttpError(404, "Not Found")
        return repo

    def number(self, name: str) -> int:
        """Return an integer path parameter."""
        return int(self.params[name])


@dataclass(frozen=True)
class Reply:
    """A JSON reply."""

    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HttpError(Exception):
    """Raised by a handler to answer with a `basic-error` body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Call], Reply]


@dataclass(frozen=True)
class Route:
    """One operation: method, path template, caller, handler.

    A template reads like `/repos/{owner}/{repo}/branches/{branch+}`: `{name}` matches one path
    segment and `{name+}` one or more (branch names hold slashes).
    """

    method: str
    template: str
    caller: Caller
    handler: Handler

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """Return the path parameters if this route serves the request, else None."""
        if method != self.method:
            return None
        found = re.fullmatch(re.sub(r"\{(\w+)(\+?)\}", _group, self.template), path)
        if found is None:
            return None
        return {name: urllib.parse.unquote(value) for name, value in found.groupdict().items()}

    def spec_path(self, params: dict[str, str]) -> str:
        """Return the path with each parameter as one percent-encoded segment (the spec's form)."""
        return re.sub(
            r"\{(\w+)\+?\}", lambda m: urllib.parse.quote(params[m[1]], safe=""), self.template
        )


def _group(param: re.Match[str]) -> str:
    """Return the regex group for one `{name}` or `{name+}` of a template."""
    return f"(?P<{param[1]}>{'.+' if param[2] else '[^/]+'})"


def find(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """Return the route serving a request and its path parameters, or None."""
    for route in routes:
        params = route.match(method, path)
        if params is not None:
            return route, params
    return None


def authenticate(
    state: GitHubState, route: Route, authorization: str | None
) -> tuple[App | None, Installation | None, Token | None]:
    """Return the caller's app, or installation and token, as the route requires; raise 401
    otherwise."""
    if route.caller is Caller.NONE:
        return None, None, None
    credential = auth.bearer(authorization)
    if route.caller is Caller.APP:
        app = auth.app_for_jwt(state, credential)
        if app is None:
            raise HttpError(401, "A JSON web token could not be decoded")
        return app, None, None
    token = auth.live_token(state, credential)
    installation = None if token is None else state.installations.get(token.installation_id)
    if token is None or installation is None:
        raise HttpError(401, "Bad credentials")
    return state.apps[installation.app_id], installation, token
