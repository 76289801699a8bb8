"""The GitHub stand-in: a loopback HTTP server for the REST API (/api/v3) and git over HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.standin import (
    api_actions,
    api_apps,
    api_checks,
    api_issues,
    api_manifests,
    api_orgs,
    api_pulls,
    api_repos,
    app_pages,
    auth,
    githttp,
    user_auth,
    users_json,
)
from tests.standin.routing import Call, HttpError, Reply, Route, authenticate, find
from tests.standin.spec import ResponseChecker, checker
from tests.standin.state import GitHubState, Repo
from tests.standin.users_json import Urls

API_PREFIX = "/api/v3"
RATE_LIMIT = 5000
ROUTES: list[Route] = [
    *api_apps.ROUTES,
    *api_repos.ROUTES,
    *api_issues.ROUTES,
    *api_pulls.ROUTES,
    *api_checks.ROUTES,
    *api_orgs.ROUTES,
    *api_actions.ROUTES,
    *api_manifests.ROUTES,
]
Tamper = Callable[[Any], Any]


class StandIn:
    """GitHub on 127.0.0.1: REST state in memory, repos as bare git repos under `root`."""

    def __init__(self, root: Path, spec: ResponseChecker | None = None) -> None:
        self.root = root
        self.git_root = root / "git"
        self.git_root.mkdir(parents=True, exist_ok=True)
        self.state = GitHubState()
        self.violations: list[str] = []
        self._spec = spec or checker()
        self._requests = 0
        self._throttled = 0
        self._retry_after = 0
        self._tamper: Tamper | None = None
        self._httpd = _Server(self)
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def urls(self) -> Urls:
        """Return where the API and web pages are served."""
        web = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return Urls(api=web + API_PREFIX, web=web)

    def clone_url(self, repo: Repo, token: str | None = None) -> str:
        """Return the repo's HTTP clone URL, with `x-access-token:<token>@` when given a token."""
        host = self.urls.web.removeprefix("http://")
        userinfo = f"{auth.GIT_USER}:{token}@" if token else ""
        return f"http://{userinfo}{host}/{repo.full_name}.git"

    def start(self) -> StandIn:
        """Start serving in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def throttle_next(self, count: int = 1, retry_after: int = 0) -> None:
        """Answer the next `count` API calls with 403 and `Retry-After` (a secondary rate limit)."""
        self._throttled, self._retry_after = count, retry_after

    def tamper_next(self, change: Tamper) -> None:
        """Pass the next API reply body through `change` before it is checked and sent."""
        self._tamper = change

    def assert_clean(self) -> None:
        """Raise AssertionError if any response broke GitHub's OpenAPI description."""
        if self.violations:
            raise AssertionError(
                "stand-in responses broke the spec:\n" + "\n".join(self.violations)
            )

    def rate_headers(self) -> dict[str, str]:
        """Return the rate-limit headers for the response being sent, counting it."""
        self._requests += 1
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - self._requests)),
            "X-RateLimit-Reset": str(int(time.time()) // 3600 * 3600 + 3600),
            "X-RateLimit-Used": str(self._requests),
            "X-RateLimit-Resource": "core",
        }

    def api(self, method: str, path: str, query: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one REST call and check the reply against the spec."""
        person = user_auth.user_token(self.state, auth.bearer(headers.get("Authorization")))
        found = find(ROUTES, method, path)
        if person is not None:  # a person's token, through the App (dashboard sign-in)
            reply = user_auth.api(self.state, self.urls, person, method, path)
            spec_path = path
        elif found is None:
            return Reply(404, users_json.error("Not Found", 404))
        else:
            route, params = found
            reply = self._tamper_reply(self._answer(route, params, query, headers, raw))
            spec_path = route.spec_path(params)
        body = _encode(reply)
        for problem in self._spec.problems(method, spec_path, reply.status, body):
            self.violations.append(f"{method} {path} -> {reply.status}: {problem}")
        return reply

    def _answer(
        self, route: Route, params: dict[str, str], query: str, headers: dict[str, str], raw: bytes
    ) -> Reply:
        """Run a route's handler; turn HttpError and throttling into error replies."""
        try:
            if self._throttled > 0:
                self._throttled -= 1
                raise _RateLimited(403, "You have exceeded a secondary rate limit.")
            app, installation, token = authenticate(self.state, route, headers.get("Authorization"))
            body = _json_body(raw)
            query_args = dict(parse_qsl(query))
            call = Call(self.state, self.urls, params, query_args, body, app, installation, token)
            return route.handler(call)
        except HttpError as error:  # a rate limit says when to retry; a refusal does not
            limited = isinstance(error, _RateLimited)
            extra = {"Retry-After": str(self._retry_after)} if limited else {}
            return Reply(error.status, users_json.error(error.message, error.status), extra)

    def _tamper_reply(self, reply: Reply) -> Reply:
        """Apply and clear a pending tamper."""
        change, self._tamper = self._tamper, None
        return reply if change is None else Reply(reply.status, change(reply.body), reply.headers)

    def git(self, method: str, url: str, headers: dict[str, str], raw: bytes) -> githttp.CgiReply:
        """Serve git's smart HTTP for a repo the basic-auth token covers (from the URL or an
        `http.extraHeader`); a push needs the token's `contents: write`."""
        parts = urlsplit(url)
        token = auth.live_token(self.state, auth.basic_password(headers.get("Authorization")))
        repo = self.state.repos.get(githttp.repo_key(parts.path))
        if token is None:
            challenge = [("WWW-Authenticate", 'Basic realm="GitHub"')]
            return githttp.CgiReply(401, challenge, b"Invalid username or token.\n")
        if repo is None or not token.covers(repo):
            return githttp.CgiReply(404, [], b"Repository not found.\n")
        if githttp.is_push(parts.path, parts.query) and not token.grants("contents", "write"):
            denied = f"Permission to {repo.full_name}.git denied to kevolve[bot].\n"
            return githttp.CgiReply(403, [], denied.encode())
        return githttp.serve(
            self.git_root, method, parts.path, parts.query, headers, raw, auth.GIT_USER
        )


class _RateLimited(HttpError):
    """A call refused by `throttle_next`: its 403 carries Retry-After."""


def _json_body(raw: bytes) -> dict[str, Any]:
    """Parse a request's JSON object body; an empty body is `{}`."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise HttpError(400, "Problems parsing JSON") from error
    if not isinstance(body, dict):
        raise HttpError(400, "Problems parsing JSON")
    return body


class _Server(ThreadingHTTPServer):
    """A threading HTTP server on a free loopback port that knows its StandIn."""

    daemon_threads = True

    def __init__(self, standin: StandIn) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.standin = standin


class _Handler(BaseHTTPRequestHandler):
    """Reads a request, hands it to the StandIn and writes its answer."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _serve(self) -> None:
        assert isinstance(self.server, _Server)
        standin = self.server.standin
        raw = self._read_body()
        headers = {name: value for name, value in self.headers.items()}
        path, _, query = self.path.partition("?")
        if githttp.is_git_path(path):
            cgi = standin.git(self.command, self.path, headers, raw)
            self._send(cgi.status, cgi.headers, cgi.body, standin.rate_headers())
            return
        if user_auth.serves(self.command, path):
            page = user_auth.answer(standin.state, self.command, path, query, raw)
            self._send(page.status, page.headers, page.body, {})
            return
        if app_pages.serves(self.command, path):
            page = app_pages.answer(standin.state, standin.urls.web, path, query, raw)
            self._send(page.status, page.headers, page.body, {})
            return
        if path.startswith(API_PREFIX + "/"):
            reply = standin.api(self.command, path.removeprefix(API_PREFIX), query, headers, raw)
        else:
            reply = Reply(404, users_json.error("Not Found", 404))
        body = _encode(reply)
        json_type = [("Content-Type", "application/json; charset=utf-8")] if body else []
        content = [*json_type, *reply.headers.items()]
        self._send(reply.status, content, body, standin.rate_headers())

    def _read_body(self) -> bytes:
        """Read the request body, by Content-Length or chunked transfer encoding."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunks()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _read_chunks(self) -> bytes:
        """Read a chunked request body."""
        chunks = []
        while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return b"".join(chunks)

    def _send(
        self, status: int, headers: list[tuple[str, str]], body: bytes, extra: dict[str, str]
    ) -> None:
        """Write a whole response with a Content-Length."""
        self.send_response(status)
        for name, value in [*headers, *extra.items()]:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _encode(reply: Reply) -> bytes:
    """A reply's body as sent: JSON, or nothing for a 204."""
    return b"" if reply.status == 204 else json.dumps(reply.body).encode()
