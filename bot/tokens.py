"""Per-job tokens: what a runner presents when it posts a job's result back to the bot.

A token names its job and its expiry and carries an HMAC of both under the bot's secret, so the
bot verifies it without storing it, and a token of one job, an expired one or a forged one is
refused. Runners see only their own job's token, and only until it expires.
"""

from __future__ import annotations

import hashlib
import hmac

_VERSION = "kj1"


class TokenError(ValueError):
    """A token that does not authorize posting this job's result; says why."""


def key_for(webhook_secret: str) -> bytes:
    """The token key, derived from the app's webhook secret so there is no second secret to keep
    (rotating the webhook secret ends every outstanding token)."""
    return hmac.new(webhook_secret.encode(), b"kevolve job tokens", hashlib.sha256).digest()


def issue(secret: bytes, job_id: int, now: float, ttl_s: float) -> str:
    """A token for `job_id` valid until `now + ttl_s` (Unix seconds)."""
    expires = int(now + ttl_s)
    return f"{_VERSION}.{job_id}.{expires}.{_mac(secret, job_id, expires)}"


def verify(secret: bytes, token: str, job_id: int, now: float) -> None:
    """Return when `token` authorizes posting `job_id`'s result at `now`; TokenError otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit() or not parts[2].isdigit():
        raise TokenError("malformed job token")
    token_job, expires, mac = int(parts[1]), int(parts[2]), parts[3]
    if not hmac.compare_digest(mac, _mac(secret, token_job, expires)):
        raise TokenError("job token signature does not match")
    if token_job != job_id:
        raise TokenError(f"job token is for job {token_job}, not job {job_id}")
    if now > expires:
        raise TokenError(f"job token expired {int(now - expires)} s ago")


def _mac(secret: bytes, job_id: int, expires: int) -> str:
    message = f"{_VERSION}.{job_id}.{expires}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()
