"""Who may see the dashboard, and which repos each viewer may see.

Two policies. `LocalAccess` serves only this host: a request from a loopback address, to a
loopback host name, that no proxy forwarded (a proxy in front means the port is reachable from
elsewhere). `GitHubAccess` signs people in with the App's OAuth and shows each only the repos
GitHub says their token can read, asked again every few minutes. Tokens stay in this process's
memory, keyed by a random session id in an HttpOnly cookie; nothing else about them is kept.
"""

from __future__ import annotations

import ipaddress
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from kevolve.bot.dashboard.oauth import OAuthApp, OAuthError, authorize_url, can_read, exchange
from kevolve.bot.dashboard.oauth import login_of as github_login

SESSION_COOKIE = "kevolve_session"
STATE_COOKIE = "kevolve_signin"
SESSION_S = 8 * 3600.0
SIGNIN_S = 600.0  # a sign-in started must come back within this
RECHECK_S = 300.0  # a repo's readability is asked of GitHub again after this
MAX_PENDING = 1000  # sign-ins started and not finished, oldest dropped first
PROXY_HEADERS = ("forwarded", "x-forwarded-for", "x-forwarded-host", "x-real-ip", "via")
LOCAL_NAMES = ("localhost",)


@dataclass(frozen=True)
class Viewer:
    """Who looks: a GitHub login, or None for a local viewer who needs no sign-in."""

    login: str | None
    session: str | None = None


@dataclass(frozen=True)
class Caller:
    """What a policy needs of a request."""

    client: str | None  # the peer's address
    host: str  # the Host header
    headers: Mapping[str, str]  # lower-case names
    cookies: Mapping[str, str]


class Access(Protocol):
    """A dashboard's access policy."""

    signs_in: bool  # True: a viewer without a session is sent to sign in

    def viewer(self, caller: Caller) -> Viewer | None:
        """The viewer of a request; None when it may not see the dashboard (as it is)."""
        ...

    def readable(self, viewer: Viewer, repos: Iterable[str]) -> set[str]:
        """Those of `repos` the viewer may see."""
        ...


class LocalAccess:
    """Every repo, to requests on this host only (or to anyone, with `open_to_all`)."""

    signs_in = False

    def __init__(self, open_to_all: bool = False) -> None:
        self._open = open_to_all

    def viewer(self, caller: Caller) -> Viewer | None:
        """A local viewer, or None for a request from elsewhere."""
        return Viewer(None) if self._open or is_local(caller) else None

    def readable(self, viewer: Viewer, repos: Iterable[str]) -> set[str]:
        """Every repo."""
        return set(repos)


def is_local(caller: Caller) -> bool:
    """Whether a request came from this host, to a loopback name, not through a proxy."""
    if any(name in caller.headers for name in PROXY_HEADERS):
        return False
    host = caller.host.rsplit(":", 1)[0] if caller.host.count(":") == 1 else caller.host
    host = host.strip("[]").split("]")[0]
    return _loopback(caller.client) and (host in LOCAL_NAMES or _loopback(host))


def _loopback(address: str | None) -> bool:
    """Whether `address` is a loopback IP address."""
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@dataclass
class _Session:
    """One signed-in person: their token (never shown) and what it could read, when."""

    login: str
    token: str = field(repr=False)
    expires: float
    checked: dict[str, tuple[bool, float]] = field(default_factory=dict)


class GitHubAccess:
    """Sign-in with GitHub; each viewer sees the repos their token can read."""

    signs_in = True

    def __init__(
        self,
        app: OAuthApp,
        clock: Callable[[], float] = time.monotonic,
        reader: Callable[[OAuthApp, str, str], bool] = can_read,
    ) -> None:
        self._app, self._clock, self._reader = app, clock, reader
        self._sessions: dict[str, _Session] = {}
        self._pending: dict[str, tuple[str, float]] = {}  # state -> (page to return to, expiry)
        self._lock = threading.Lock()

    def begin(self, back_to: str, redirect_uri: str) -> tuple[str, str]:
        """Start a sign-in: GitHub's page to send the browser to, and the state to remember."""
        state = secrets.token_urlsafe(24)
        with self._lock:
            self._pending[state] = (back_to, self._clock() + SIGNIN_S)
            while len(self._pending) > MAX_PENDING:
                del self._pending[next(iter(self._pending))]
        return authorize_url(self._app, redirect_uri, state), state

    def finish(self, state: str, remembered: str, code: str, redirect_uri: str) -> tuple[str, str]:
        """End a sign-in: (the new session id, the page to return to). OAuthError when the
        state is not the one this browser started with, expired, or GitHub refuses the code."""
        with self._lock:
            pending = self._pending.pop(state, None)
        if pending is None or not secrets.compare_digest(state, remembered):
            raise OAuthError("this sign-in was not started here, or took too long: sign in again")
        back_to, expiry = pending
        if expiry < self._clock():
            raise OAuthError("this sign-in took too long: sign in again")
        token = exchange(self._app, code, redirect_uri)
        login = github_login(self._app, token)
        session = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[session] = _Session(login, token, self._clock() + SESSION_S)
        return session, back_to

    def end(self, session: str) -> None:
        """Sign out: forget the session and its token."""
        with self._lock:
            self._sessions.pop(session, None)

    def viewer(self, caller: Caller) -> Viewer | None:
        """The signed-in viewer of a request, or None without a live session."""
        sid = caller.cookies.get(SESSION_COOKIE, "")
        with self._lock:
            found = self._sessions.get(sid)
            if found is not None and found.expires < self._clock():
                del self._sessions[sid]
                found = None
        return None if found is None else Viewer(found.login, sid)

    def readable(self, viewer: Viewer, repos: Iterable[str]) -> set[str]:
        """The repos GitHub says the viewer's token can read (asked again after RECHECK_S);
        none when the session is gone or GitHub cannot be asked (fail closed)."""
        with self._lock:
            found = self._sessions.get(viewer.session or "")
        if found is None:
            return set()
        now, seen = self._clock(), set()
        for repo in set(repos):
            known = found.checked.get(repo)
            if known is None or now - known[1] > RECHECK_S:
                try:
                    known = (self._reader(self._app, found.token, repo), now)
                except OAuthError:
                    known = (False, now - RECHECK_S)  # ask again next time
                found.checked[repo] = known
            if known[0]:
                seen.add(repo)
        return seen
