"""The last step of GitHub's App manifest flow: the code GitHub hands back, exchanged for the new
App's id, private key and webhook secret (`POST /app-manifests/{code}/conversions`, no auth)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")  # GitHub's codes are hex; nothing else goes in a URL
API_VERSION = "2022-11-28"


@dataclass(frozen=True)
class NewApp:
    """The App GitHub registered, with its credentials."""

    id: int
    slug: str
    name: str
    html_url: str
    owner: str
    pem: str  # the private key, PEM
    webhook_secret: str | None  # None when GitHub made no webhook


class ConversionError(Exception):
    """The code could not be exchanged; the message says why and what to do."""


def convert(api_url: str, code: str, timeout: float = 30.0) -> NewApp:
    """The App for a manifest flow's `code`; ConversionError naming the cause and the fix."""
    if not CODE.fullmatch(code):
        raise ConversionError(f"{code[:100]!r} is not a code GitHub hands out")
    url = f"{api_url.rstrip('/')}/app-manifests/{code}/conversions"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
    try:
        answer = httpx.post(url, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise ConversionError(
            f"cannot reach GitHub's API at {api_url}: {exc}. Fix: check --api-url and the "
            "network, then run `kevolve app create` again"
        ) from None
    if answer.status_code == 404:
        raise ConversionError(
            "GitHub does not know this code: it expired (a code lasts one hour) or was used "
            "already. GitHub registered the App but kept its key. Fix: delete that App (GitHub: "
            "Settings > Developer settings > GitHub Apps) and run `kevolve app create` again"
        )
    if answer.status_code != 201:
        raise ConversionError(
            f"GitHub answered {answer.status_code} to the code's exchange: "
            f"{_message(answer)}. Fix: run `kevolve app create` again; if GitHub registered the "
            "App meanwhile, delete it first (Settings > Developer settings > GitHub Apps)"
        )
    return _new_app(answer)


def _new_app(answer: httpx.Response) -> NewApp:
    """The App of a 201 answer; ConversionError when its body is not what GitHub documents."""
    try:
        body = answer.json()
        secret = body["webhook_secret"]
        return NewApp(
            id=int(body["id"]),
            slug=_text(body["slug"]),
            name=_text(body["name"]),
            html_url=_text(body["html_url"]),
            owner=_text(body["owner"]["login"]),
            pem=_text(body["pem"]),
            webhook_secret=None if secret is None else _text(secret),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ConversionError(
            f"GitHub's answer to the code's exchange lacks {exc}: it is not an App "
            "with its key. Fix: check --api-url points at GitHub's REST API"
        ) from None


def _text(value: Any) -> str:
    """`value` when it is a non-empty string; TypeError otherwise."""
    if not isinstance(value, str) or not value:
        raise TypeError("a text field")
    return value


def _message(answer: httpx.Response) -> str:
    """GitHub's error message of an answer, capped; its status text when it has none."""
    try:
        message = answer.json().get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or answer.reason_phrase)[:300]
