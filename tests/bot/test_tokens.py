"""Job tokens: only the right job's unexpired, untampered token passes; each field is under the
MAC; anything that is not a token is refused as malformed, never with an exception of another kind.
"""

from __future__ import annotations

import pytest
from kevolve.bot.tokens import MAX_LENGTH, TAG_LENGTH, Grant, TokenError, issue, run_tag, verify

KEY = b"bot key"
NOW = 1_800_000_000.0
GRANT = Grant(42, "softmax", 2, int(NOW) + 3600, "0123456789abcdef0123456789abcdef")
TOKEN = issue(KEY, GRANT)


def test_a_fresh_token_authorizes_its_own_job_and_says_which_op_and_attempt() -> None:
    assert verify(KEY, TOKEN, 42, NOW + 3599) == GRANT
    assert TOKEN.startswith("kj2.42.softmax.2.")


@pytest.mark.parametrize(
    ("token", "job", "now", "reason"),
    [
        (TOKEN, 43, NOW, "job token is for job 42, not job 43"),
        (TOKEN, 42, NOW + 3700, "job token expired 100 s ago"),
        (issue(b"other key", GRANT), 42, NOW, "signature does not match"),
    ],
)
def test_wrong_expired_or_forged_tokens_are_refused(
    token: str, job: int, now: float, reason: str
) -> None:
    with pytest.raises(TokenError, match=reason) as error:
        verify(KEY, token, job, now)
    assert error.value.status == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (1, "43"),  # another job
        (2, "rmsnorm"),  # another op
        (3, "3"),  # another attempt
        (4, str(int(NOW) + 10 * 3600)),  # a later expiry: a runner extending its own token
        (5, "f" * 32),  # another nonce: a fresh post from a spent token
    ],
)
def test_changing_any_field_breaks_the_signature(field: int, value: str) -> None:
    parts = TOKEN.split(".")
    parts[field] = value
    job = int(parts[1])
    with pytest.raises(TokenError, match="signature does not match"):
        verify(KEY, ".".join(parts), job, NOW)


def test_a_changed_mac_is_refused() -> None:
    parts = TOKEN.split(".")
    parts[6] = ("0" if parts[6][0] != "0" else "1") + parts[6][1:]
    with pytest.raises(TokenError, match="signature does not match"):
        verify(KEY, ".".join(parts), 42, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "kj1.42.1800003600.abc",  # the old format
        TOKEN.replace("kj2.42.", "kj2.٤٢."),  # Arabic-Indic digits pass str.isdigit
        TOKEN.replace("kj2.42.", "kj2.４２."),  # fullwidth digits
        TOKEN.replace(".2.", "." + "9" * 10_000 + "."),  # 10,000 digits: over int()'s limit
        TOKEN.replace(".", ":"),  # another separator
        TOKEN.replace(".softmax.", ".soft.max."),  # an extra field
        TOKEN + ".",
        " " + TOKEN,
        TOKEN.replace("kj2.42.", "kj2.042."),  # a leading zero: two spellings of one job
        TOKEN.replace("softmax", "softmäx"),  # a non-ASCII letter
        TOKEN.replace("softmax", "soft\x00max"),
        TOKEN[:-1] + "é",  # a non-ASCII MAC digit (hmac.compare_digest refuses non-ASCII str)
        TOKEN.upper(),
        "x" * (MAX_LENGTH + 1),
    ],
)
def test_anything_that_is_not_a_token_is_malformed(token: str) -> None:
    with pytest.raises(TokenError, match="malformed job token") as error:
        verify(KEY, token, 42, NOW)
    assert error.value.status == 401


def test_the_run_tag_is_the_keys_and_differs_per_dispatch() -> None:
    tag = run_tag(KEY, GRANT)
    assert len(tag) == TAG_LENGTH and int(tag, 16) >= 0
    assert run_tag(b"other key", GRANT) != tag
    assert run_tag(KEY, Grant(42, "softmax", 2, GRANT.expires, "1" * 32)) != tag
    assert tag not in TOKEN  # the run's name, which anyone may read, gives the token nothing
