"""GitHub's web pages of the App manifest flow: `settings/apps/new` takes a posted manifest and
shows it with a "Create GitHub App" button; the button registers the App and sends the browser to
the manifest's `redirect_url` with a one-hour code (and the `state` it was given)."""

from __future__ import annotations

import functools
import html
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.standin import spec
from tests.standin.state import App, GitHubState, ManifestCode, User, now

SIGNED_IN = "octocat"  # the person whose browser session the pages serve
CODE_LIFETIME = timedelta(hours=1)
MAX_NAME = 34
_PAGE = re.compile(r"(?:/organizations/(?P<org>[^/]+))?/settings/apps/new(?P<create>/create)?")
_KEYS = {
    "name", "url", "hook_attributes", "redirect_url", "callback_urls", "setup_url",
    "description", "public", "default_events", "default_permissions",
    "request_oauth_on_install", "setup_on_update",
}  # fmt: skip


@dataclass(frozen=True)
class Page:
    """An HTML answer, or a redirect."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


class ManifestError(Exception):
    """What GitHub's page would say about a manifest it refuses."""


def serves(method: str, path: str) -> bool:
    """Whether a request is for these pages."""
    return method == "POST" and _PAGE.fullmatch(path) is not None


def answer(state: GitHubState, web: str, path: str, query: str, raw: bytes) -> Page:
    """The manifest's confirmation page, or (its button) the new App's redirect."""
    found = _PAGE.fullmatch(path)
    assert found is not None
    owner = _owner(state, found["org"])
    if owner is None:
        return _page(404, "Not Found", "<p>No such organization.</p>")
    form = {name: values[0] for name, values in parse_qs(raw.decode(errors="replace")).items()}
    flow_state = parse_qs(query).get("state", [""])[0]
    try:
        manifest = _manifest(form.get("manifest", ""))
        if found["create"]:
            return _create(state, web, owner, manifest, form.get("name", ""), flow_state)
    except ManifestError as error:
        return _page(422, "Invalid manifest", f"<p id='error'>{html.escape(str(error))}</p>")
    return _confirmation(path, owner, manifest, flow_state)


def _owner(state: GitHubState, org: str | None) -> User | None:
    """The account the App is for: the signed-in person, or an existing organization."""
    if org is None:
        return state.add_user(SIGNED_IN)
    account = state.users.get(org)
    return account if account is not None and account.type == "Organization" else None


def _manifest(text: str) -> dict[str, Any]:
    """The posted manifest, checked as GitHub checks it; ManifestError otherwise."""
    try:
        manifest = json.loads(text)
    except ValueError:
        raise ManifestError("The manifest is not JSON.") from None
    if not isinstance(manifest, dict):
        raise ManifestError("The manifest is not a JSON object.")
    unknown = set(manifest) - _KEYS
    if unknown:
        raise ManifestError(f"Unknown manifest keys: {', '.join(sorted(unknown))}.")
    _url(manifest.get("url"), "url")
    hook = manifest.get("hook_attributes")
    if hook is not None:
        if not isinstance(hook, dict):
            raise ManifestError("hook_attributes must be an object.")
        _url(hook.get("url"), "hook_attributes.url")
    if manifest.get("redirect_url") is not None:
        _url(manifest["redirect_url"], "redirect_url")
    _permissions(manifest.get("default_permissions", {}))
    events = manifest.get("default_events", [])
    if not isinstance(events, list) or not all(
        isinstance(e, str) and re.fullmatch(r"[a-z_]+", e) for e in events
    ):
        raise ManifestError("default_events must be a list of event names.")
    return manifest


def _url(value: Any, name: str) -> None:
    """ManifestError unless `value` is an absolute http(s) URL."""
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ManifestError(f"{name} must be a full http(s) URL.")


def _permissions(asked: Any) -> None:
    """ManifestError unless every permission is one of GitHub's, at one of its levels."""
    if not isinstance(asked, dict):
        raise ManifestError("default_permissions must be an object.")
    levels = _permission_levels()
    for name, level in asked.items():
        if name not in levels:
            raise ManifestError(f"Unknown permission {name!r}.")
        if level not in levels[name]:
            raise ManifestError(f"Permission {name!r} has no level {level!r}.")


@functools.cache
def _permission_levels() -> dict[str, list[str]]:
    """Each App permission and its levels, from GitHub's description (`app-permissions`)."""
    description = json.loads(spec.DESCRIPTION.read_text())
    properties = description["components"]["schemas"]["app-permissions"]["properties"]
    return {name: list(node["enum"]) for name, node in properties.items()}


def _confirmation(path: str, owner: User, manifest: dict[str, Any], flow_state: str) -> Page:
    """The page GitHub shows for a manifest: its settings and the "Create GitHub App" button."""
    action = f"{path}/create?{urlencode({'state': flow_state})}"
    rows = "".join(
        f"<li><code>{html.escape(name)}</code>: {html.escape(str(level))}</li>"
        for name, level in manifest.get("default_permissions", {}).items()
    )
    events = ", ".join(html.escape(event) for event in manifest.get("default_events", []))
    body = (
        f"<h1>Create GitHub App for {html.escape(owner.login)}</h1>"
        f"<form method='post' action='{html.escape(action)}'>"
        f"<label>GitHub App name <input name='name' id='name' "
        f"value='{html.escape(str(manifest.get('name', '')))}'></label>"
        f"<input type='hidden' name='manifest' value='{html.escape(json.dumps(manifest))}'>"
        f"<p>Homepage: {html.escape(manifest['url'])}</p>"
        f"<p>Permissions:</p><ul id='permissions'>{rows}</ul>"
        f"<p>Events: <span id='events'>{events}</span></p>"
        "<button type='submit' id='create'>Create GitHub App</button></form>"
    )
    return _page(200, "Create GitHub App", body)


def _create(
    state: GitHubState,
    web: str,
    owner: User,
    manifest: dict[str, Any],
    name: str,
    flow_state: str,
) -> Page:
    """Register the App; send the browser to the manifest's redirect_url with a code."""
    if not 0 < len(name.strip()) <= MAX_NAME:
        raise ManifestError(f"Name must have 1 to {MAX_NAME} characters.")
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # GitHub hands out PKCS#1 keys
        serialization.NoEncryption(),
    ).decode()
    hook = manifest.get("hook_attributes")
    with state.lock:
        if any(app.slug == slug for app in state.apps.values()):
            raise ManifestError("Name is already in use.")
        app = App(state.next_id(), slug, name, owner, public)
        app.permissions = {"metadata": "read", **manifest.get("default_permissions", {})}
        app.events = list(manifest.get("default_events", []))
        app.webhook_url = hook["url"] if hook and hook.get("active", True) else None
        app.webhook_secret = secrets.token_hex(20) if app.webhook_url else None
        state.apps[app.id] = app
        code = secrets.token_hex(20)
        client_secret = secrets.token_hex(20)
        state.manifest_codes[code] = ManifestCode(app.id, pem, client_secret, now() + CODE_LIFETIME)
    redirect = manifest.get("redirect_url")
    if redirect is None:
        return _page(201, "Created", f"<p>Created <a href='{web}/apps/{slug}'>{slug}</a>.</p>")
    args = {"code": code, **({"state": flow_state} if flow_state else {})}
    separator = "&" if urlsplit(redirect).query else "?"
    return Page(302, b"", [("Location", f"{redirect}{separator}{urlencode(args)}")])


def _page(status: int, title: str, body: str) -> Page:
    """An HTML page."""
    text = f"<!doctype html><html><head><title>{title}</title></head><body>{body}</body></html>"
    return Page(status, text.encode(), [("Content-Type", "text/html; charset=utf-8")])
