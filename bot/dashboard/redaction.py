"""Secrets kept off the pages: every piece of text the dashboard renders passes through here.

Errors, prompts, replies and reasons come from processes and services that might echo a
credential. Known secret values (the bot's own) and anything shaped like a token, a key or a
URL's password are replaced by `***` before a page shows them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
MIN_SECRET = 6  # a known secret shorter than this is not searched for (it would mask words)

_PATTERNS = (
    re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9_]{20,}|github_pat_[A-Za-z0-9_]{20,})"),
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),  # OpenAI-style API keys
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack tokens
    re.compile(r"(?i)(authorization:\s*(?:bearer|token|basic)\s+)[^\s\"']+"),
    re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{16,}"),
    re.compile(
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
    ),
    re.compile(r"(?<=://)[^/@\s:]+:[^/@\s]+(?=@)"),  # user:password@ in a URL
    re.compile(r"(?<=://)x-access-token:[^@\s]+(?=@)"),
)


class Redactor:
    """Masks known secret values and secret-shaped text."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known = sorted({k for k in known if len(k) >= MIN_SECRET}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        """`text` with every secret in it replaced by `***`."""
        for value in self._known:
            text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(_masked, text)
        return text


def _masked(found: re.Match[str]) -> str:
    """The match masked, keeping a prefix group (such as `Authorization: Bearer `) if any."""
    return (found.group(1) if found.re.groups else "") + MASK
