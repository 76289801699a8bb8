"""Job tokens at their edges: the key's derivation, fresh grants, tokens issued in the test
itself, the exact expiry second and length cap, and the refusals' exact words."""

from __future__ import annotations

import re

import pytest
from kevolve.bot.tokens import MAX_LENGTH, Grant, TokenError, grant, issue, key_for, verify

NOW = 1_800_000_000.0
NONCE = "0123456789abcdef0123456789abcdef"


def test_the_token_key_is_derived_from_the_webhook_secret_and_stable_across_releases() -> None:
    """Not the webhook secret itself, and the same derivation in every release, so tokens
    outstanding during an upgrade stay valid and a new webhook secret ends them all."""
    key = key_for("s3cret")
    assert key.hex() == "07014e4ff231b41f0963bea099b0f5ced6ecdafe1deea4b590395320b272bbaf"
    token = issue(key, Grant(7, "softmax", 1, int(NOW) + 60, NONCE))
    assert verify(key_for("s3cret"), token, 7, NOW).job_id == 7
    with pytest.raises(TokenError, match="signature does not match"):
        verify(key_for("rotated"), token, 7, NOW)


def test_a_grant_is_for_one_dispatch_with_a_fresh_nonce() -> None:
    first, second = grant(42, "softmax", 2, NOW + 3600.9), grant(42, "softmax", 2, NOW + 3600.9)
    assert (first.job_id, first.op, first.attempt, first.expires) == (42, "softmax", 2, 1800003600)
    assert re.fullmatch(r"[0-9a-f]{32}", first.nonce) and first.nonce != second.nonce


def test_a_token_issued_now_carries_its_grant_under_the_key() -> None:
    given = Grant(42, "softmax", 2, int(NOW) + 3600, NONCE)
    token = issue(b"bot key", given)
    fields = f"kj2.42.softmax.2.1800003600.{NONCE}."
    assert token.startswith(fields) and re.fullmatch(r"[0-9a-f]{64}", token[len(fields) :])
    assert verify(b"bot key", token, 42, NOW) == given
    with pytest.raises(TokenError, match="signature does not match"):
        verify(b"other key", token, 42, NOW)


def test_a_token_is_valid_through_its_expiry_second_and_not_after() -> None:
    given = Grant(42, "softmax", 2, int(NOW), NONCE)
    token = issue(b"bot key", given)
    assert verify(b"bot key", token, 42, NOW) == given
    with pytest.raises(TokenError) as info:
        verify(b"bot key", token, 42, NOW + 1)
    assert str(info.value) == "job token expired 1 s ago"


def test_a_token_of_exactly_the_cap_is_parsed_and_refused_as_not_a_token() -> None:
    with pytest.raises(TokenError) as info:
        verify(b"bot key", "x" * MAX_LENGTH, 42, NOW)
    assert str(info.value) == (
        "malformed job token: expected 'kj2.<job>.<op>.<attempt>.<expiry>.<nonce>.<mac>' "
        "in ASCII letters, digits, '_' and '-'"
    )
    with pytest.raises(TokenError) as info:
        verify(b"bot key", "x" * (MAX_LENGTH + 1), 42, NOW)
    assert str(info.value) == f"malformed job token: longer than {MAX_LENGTH} characters"


def test_a_forged_token_is_refused_in_those_words() -> None:
    token = issue(b"forger's key", Grant(42, "softmax", 2, int(NOW) + 60, NONCE))
    with pytest.raises(TokenError) as info:
        verify(b"bot key", token, 42, NOW)
    assert (str(info.value), info.value.status) == ("job token signature does not match", 403)
