"""Per-job tokens: only the right job's unexpired, untampered token passes."""

from __future__ import annotations

import pytest

from bot.tokens import TokenError, issue, verify

SECRET = b"bot secret"
NOW = 1_800_000_000.0


def test_a_fresh_token_authorizes_its_own_job() -> None:
    verify(SECRET, issue(SECRET, 42, NOW, 3600), 42, NOW + 3599)


@pytest.mark.parametrize(
    ("token", "job", "now", "reason"),
    [
        (issue(SECRET, 42, NOW, 3600), 43, NOW, "job token is for job 42, not job 43"),
        (issue(SECRET, 42, NOW, 3600), 42, NOW + 3700, "job token expired 100 s ago"),
        (issue(b"other secret", 42, NOW, 3600), 42, NOW, "signature does not match"),
        (issue(SECRET, 42, NOW, 3600).replace(".42.", ".43."), 43, NOW, "signature"),
        ("kj1.42.notanumber.abc", 42, NOW, "malformed job token"),
        ("", 42, NOW, "malformed job token"),
    ],
)
def test_wrong_expired_forged_or_garbled_tokens_are_refused(
    token: str, job: int, now: float, reason: str
) -> None:
    with pytest.raises(TokenError, match=reason):
        verify(SECRET, token, job, now)
