"""The GitHub App manifest kevolve registers itself with: the permissions and events it needs,
each with the reason, and where GitHub takes a manifest (GitHub's App manifest flow)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

# Permission -> (level, why). Exactly what bot.github's calls and git need; nothing more.
PERMISSIONS: dict[str, tuple[str, str]] = {
    "contents": ("write", "clone a repo's code and push the branch of a proposed kernel"),
    "pull_requests": ("write", "open, update and close kevolve's own pull requests"),
    "issues": ("write", "answer /kevolve comments and react to them"),
    "checks": ("write", "show a search's progress and result as a check run on the commit"),
    "actions": ("write", "dispatch the search workflow to self-hosted GPU runners, cancel runs"),
    "metadata": ("read", "read a repo and a commenter's role on it (every App has it)"),
    "administration": ("read", "list a repo's self-hosted runners and their hardware labels"),
    "organization_self_hosted_runners": ("read", "list the runners an organization shares"),
}
# Event -> why. GitHub sends `installation` events to every App without asking.
EVENTS: dict[str, str] = {
    "push": "a change to an op's kernel, reference or config on the default branch starts jobs",
    "issue_comment": "/kevolve commands from people with write access",
    "pull_request": "a kevolve pull request merged or closed (its kernel is not proposed again)",
    "workflow_job": "a GPU runner picked up, ran or lost a search job",
    "workflow_run": "a search workflow run ended",
}
DESCRIPTION = "Keeps a repository's GPU kernels fast: evolutionary kernel search on GPU runners."
MAX_NAME = 34  # GitHub's limit on an App's name
_ORG = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})")


@dataclass(frozen=True)
class AppManifest:
    """What GitHub registers: `to_json()` is the `manifest` form field GitHub's page takes."""

    name: str
    url: str  # the App's homepage
    webhook_url: str  # where GitHub posts events: kevolve serve's /webhook
    redirect_url: str  # where GitHub sends the browser back with the code
    public: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The manifest as GitHub documents it."""
        return {
            "name": self.name,
            "url": self.url,
            "description": DESCRIPTION,
            "hook_attributes": {"url": self.webhook_url, "active": True},
            "redirect_url": self.redirect_url,
            "public": self.public,
            "default_permissions": {name: level for name, (level, _) in PERMISSIONS.items()},
            "default_events": list(EVENTS),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def creation_url(github_url: str, org: str | None, state: str) -> str:
    """GitHub's page that takes a manifest: for the signed-in person, or for organization `org`."""
    owner = f"/organizations/{quote(org, safe='')}" if org else ""
    return f"{github_url.rstrip('/')}{owner}/settings/apps/new?state={quote(state, safe='')}"


def web_url(text: str, what: str) -> str:
    """`text` when it is an absolute http(s) URL; ValueError naming `what` and the fix."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {text!r} is not an http(s) URL. Fix: give e.g. https://host/path")
    return text


def app_name(text: str) -> str:
    """`text` when GitHub would take it as an App's name; ValueError with the fix."""
    if not text.strip() or len(text) > MAX_NAME:
        raise ValueError(f"App name {text!r} must have 1 to {MAX_NAME} characters")
    return text


def org_login(text: str) -> str:
    """`text` when it can be an organization's login; ValueError with the fix."""
    if not _ORG.fullmatch(text) or text.endswith("-"):
        raise ValueError(
            f"organization {text!r} is not a GitHub login (letters, digits and inner hyphens)"
        )
    return text
