"""GitHub's webhook sender: an event for an App, signed with the App's own webhook secret and
posted to its webhook URL, as GitHub delivers them."""

from __future__ import annotations

from typing import Any

import httpx

from tests.standin import payloads
from tests.standin.state import App


def deliver(app: App, event: str, body: dict[str, Any]) -> httpx.Response:
    """Post one delivery of `event` to the App's webhook URL; the receiver's answer."""
    if app.webhook_url is None or app.webhook_secret is None:
        raise ValueError(f"the App {app.slug} has no webhook")
    raw, headers = payloads.signed(app.webhook_secret, body, event)
    headers.update(
        {
            "User-Agent": "GitHub-Hookshot/044aadd",
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
        }
    )
    return httpx.post(app.webhook_url, content=raw, headers=headers, timeout=30)
