"""GitHub's OAuth web flow for an App's users, and the API calls their tokens make.

`/login/oauth/authorize` shows a sign-in form (the stand-in's browser has no session: the person
types who they are) and sends the browser back to the App's redirect with a one-use code;
`/login/oauth/access_token` trades the code, with the App's client id and secret, for a user
token (`ghu_...`). With that token `GET /user` says who it is, and `GET /repos/{owner}/{repo}`
answers only for a repo the App is installed on that the person can read (public, or a role).
"""

from __future__ import annotations

import html
import json
import re
import secrets
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.standin import repos_json
from tests.standin.app_pages import Page
from tests.standin.routing import Reply
from tests.standin.state import App, GitHubState, OAuthCode, Repo, User, UserToken, now
from tests.standin.users_json import Urls, error, stamp, user

AUTHORIZE = "/login/oauth/authorize"
ACCESS_TOKEN = "/login/oauth/access_token"
CODE_LIFETIME = timedelta(minutes=10)
TOKEN_LIFETIME = timedelta(hours=8)
_REPO = re.compile(r"/repos/([^/]+)/([^/]+)")


def client_id(app: App) -> str:
    """The App's OAuth client id, as its JSON shows it."""
    return f"Iv1.{app.id:016x}"


def serves(method: str, path: str) -> bool:
    """Whether a request is for the OAuth web endpoints."""
    return (path == AUTHORIZE and method in ("GET", "POST")) or (
        path == ACCESS_TOKEN and method == "POST"
    )


def answer(state: GitHubState, method: str, path: str, query: str, raw: bytes) -> Page:
    """The sign-in form, its redirect with a code, or a token for a code."""
    form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
    asked = {k: v[0] for k, v in parse_qs(query).items()}
    if path == ACCESS_TOKEN:
        return _token(state, form or _json(raw))
    app = _app(state, asked.get("client_id", ""))
    if app is None:
        return _page(404, "<p id='error'>No such application.</p>")
    if method == "GET":
        return _form(app, query)
    login = form.get("login", "").strip()
    if login not in state.users:
        return _page(401, "<p id='error'>Incorrect username.</p>")
    return _redirect(state, app, login, asked)


def user_token(state: GitHubState, value: str | None) -> UserToken | None:
    """A live user token by its value, or None."""
    token = state.user_tokens.get(value or "")
    return token if token is not None and token.expires_at > now() else None


def api(state: GitHubState, urls: Urls, token: UserToken, method: str, path: str) -> Reply:
    """The REST calls a user token may make here: who it is, and a repo it can read."""
    account = state.users[token.login]
    if method == "GET" and path == "/user":
        return Reply(200, _public_user(urls, account, token))
    found = _REPO.fullmatch(path)
    repo = state.repos.get(f"{found[1]}/{found[2]}") if found and method == "GET" else None
    if repo is None or not readable(state, account.login, repo, token.app_id):
        return Reply(404, error("Not Found", 404))
    return Reply(200, repos_json.repository(urls, repo))


def readable(state: GitHubState, login: str, repo: Repo, app_id: int) -> bool:
    """Whether a user token of `app_id` reads `repo`: the App is installed on it, and the
    person can read it (public, owner or a role)."""
    installation = state.installations.get(repo.installation_id)
    if installation is None or installation.app_id != app_id:
        return False
    return not repo.private or login in repo.roles or repo.owner.login == login


def _form(app: App, query: str) -> Page:
    """GitHub's sign-in page for the App."""
    body = (
        f"<h1>Sign in to GitHub to continue to {html.escape(app.name)}</h1>"
        f"<form method='post' action='{AUTHORIZE}?{html.escape(query)}'>"
        "<label>Username <input name='login' id='login'></label>"
        "<button type='submit' id='authorize'>Sign in</button></form>"
    )
    return _page(200, body)


def _redirect(state: GitHubState, app: App, login: str, asked: dict[str, str]) -> Page:
    """Send the browser back to the App's redirect with a fresh code and the state it gave."""
    redirect = asked.get("redirect_uri", "")
    if urlsplit(redirect).scheme not in ("http", "https"):
        return _page(422, "<p id='error'>The redirect_uri is not an http(s) URL.</p>")
    code = secrets.token_hex(10)
    with state.lock:
        state.oauth_codes[code] = OAuthCode(app.id, login, redirect, now() + CODE_LIFETIME)
    args = {"code": code, **({"state": asked["state"]} if asked.get("state") else {})}
    separator = "&" if urlsplit(redirect).query else "?"
    return Page(302, b"", [("Location", f"{redirect}{separator}{urlencode(args)}")])


def _token(state: GitHubState, form: dict[str, str]) -> Page:
    """Trade a code for a user token, as GitHub does (errors are 200s with an `error`)."""
    app = _app(state, form.get("client_id", ""))
    if app is None or not app.client_secret or form.get("client_secret") != app.client_secret:
        return _json_page({"error": "incorrect_client_credentials"})
    with state.lock:
        code = state.oauth_codes.pop(form.get("code", ""), None)
    if code is None or code.app_id != app.id or code.expires_at <= now():
        return _json_page({"error": "bad_verification_code"})
    if form.get("redirect_uri") and form["redirect_uri"] != code.redirect_uri:
        return _json_page({"error": "redirect_uri_mismatch"})
    value = "ghu_" + secrets.token_urlsafe(27)
    with state.lock:
        state.user_tokens[value] = UserToken(value, code.login, app.id, now() + TOKEN_LIFETIME)
    return _json_page({"access_token": value, "token_type": "bearer", "scope": ""})


def _public_user(urls: Urls, account: User, token: UserToken) -> dict[str, object]:
    """A `public-user` for the token's account."""
    return {
        **user(urls, account),
        "user_view_type": "public",
        **dict.fromkeys(("name", "company", "blog", "location", "email", "hireable", "bio")),
        "public_repos": 0,
        "public_gists": 0,
        "followers": 0,
        "following": 0,
        "created_at": stamp(token.expires_at - TOKEN_LIFETIME),
        "updated_at": stamp(token.expires_at - TOKEN_LIFETIME),
    }


def _app(state: GitHubState, wanted: str) -> App | None:
    """The App whose client id this is."""
    return next((a for a in state.apps.values() if client_id(a) == wanted), None)


def _json(raw: bytes) -> dict[str, str]:
    """A JSON object body's string fields."""
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return {k: str(v) for k, v in body.items()} if isinstance(body, dict) else {}


def _json_page(body: dict[str, str]) -> Page:
    """A JSON answer of the web endpoints."""
    return Page(200, json.dumps(body).encode(), [("Content-Type", "application/json")])


def _page(status: int, body: str) -> Page:
    """An HTML page."""
    text = f"<!doctype html><html><head><title>GitHub</title></head><body>{body}</body></html>"
    return Page(status, text.encode(), [("Content-Type", "text/html; charset=utf-8")])
