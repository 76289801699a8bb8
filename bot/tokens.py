"""Job tokens: what a runner presents when it posts one dispatch's result back to the bot.

A token names one job, one op and one attempt, its expiry and a random nonce, and carries an HMAC
of all of them under the bot's key, so the bot verifies it without a lookup and refuses a token of
another job, op or attempt, an expired one, a forged one and any field changed after issue. The
board (`bot.board`) keeps each nonce so a token posts once. The run's name carries a tag derived
from the same key and nonce, which only the bot can write and the board matches runs by.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

_VERSION = "kj2"
MAX_LENGTH = 400  # longer than any token the bot issues; checked before anything is parsed
_TOKEN = re.compile(
    r"kj2\.([1-9][0-9]{0,11})\.([A-Za-z0-9_-]{1,100})\.([1-9][0-9]{0,3})\.([1-9][0-9]{0,11})"
    r"\.([0-9a-f]{32})\.([0-9a-f]{64})"
)
TAG_LENGTH = 20  # hex digits of the run-name tag: 80 bits nobody without the key can guess


class TokenError(ValueError):
    """A token that does not authorize this post; says why. `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Grant:
    """What one token authorizes: posting the result of one attempt at one op of one job."""

    job_id: int
    op: str
    attempt: int
    expires: int  # Unix seconds
    nonce: str  # 32 hex digits; names the token on the board, which lets it post once


def key_for(webhook_secret: str) -> bytes:
    """The token key, derived from the app's webhook secret so there is no second secret to keep
    (rotating the webhook secret ends every outstanding token)."""
    return hmac.new(webhook_secret.encode(), b"kevolve job tokens", hashlib.sha256).digest()


def grant(job_id: int, op: str, attempt: int, expires: float) -> Grant:
    """A fresh grant (new random nonce) for one dispatch, valid until `expires` (Unix seconds)."""
    return Grant(job_id, op, attempt, int(expires), secrets.token_hex(16))


def issue(key: bytes, given: Grant) -> str:
    """The token for `given`."""
    return f"{_fields(given)}.{_mac(key, _fields(given))}"


def run_tag(key: bytes, given: Grant) -> str:
    """The tag the dispatch's run carries in its name; the bot's alone to write."""
    message = f"{_VERSION}.run-tag.{given.nonce}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:TAG_LENGTH]


def verify(key: bytes, token: str, job_id: int, now: float) -> Grant:
    """The grant `token` carries when it authorizes posting to `job_id` at `now`; TokenError
    (401 when it is not a token at all, 403 when it is not this job's valid one) otherwise."""
    if len(token) > MAX_LENGTH:
        raise TokenError(f"malformed job token: longer than {MAX_LENGTH} characters", 401)
    parsed = _TOKEN.fullmatch(token)
    if parsed is None:
        raise TokenError(
            "malformed job token: expected 'kj2.<job>.<op>.<attempt>.<expiry>.<nonce>.<mac>' "
            "in ASCII letters, digits, '_' and '-'",
            401,
        )
    given = Grant(int(parsed[1]), parsed[2], int(parsed[3]), int(parsed[4]), parsed[5])
    if not hmac.compare_digest(parsed[6], _mac(key, _fields(given))):
        raise TokenError("job token signature does not match")
    if given.job_id != job_id:
        raise TokenError(f"job token is for job {given.job_id}, not job {job_id}")
    if now > given.expires:
        raise TokenError(f"job token expired {int(now - given.expires)} s ago")
    return given


def _fields(given: Grant) -> str:
    return f"{_VERSION}.{given.job_id}.{given.op}.{given.attempt}.{given.expires}.{given.nonce}"


def _mac(key: bytes, fields: str) -> str:
    return hmac.new(key, f"token.{fields}".encode(), hashlib.sha256).hexdigest()
