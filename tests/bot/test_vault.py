"""Secrets from files only the bot's user may read, and the secrets a server hands its worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.bot.settings import bot_settings
from kevolve.bot.vault import BotSecrets


def _private(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_secrets_come_from_private_files_without_their_trailing_newline(tmp_path: Path) -> None:
    env = {
        "KEVOLVE_WEBHOOK_SECRET_FILE": str(_private(tmp_path / "hook", "s3cret\n")),
        "KEVOLVE_DATABASE_URL_FILE": str(_private(tmp_path / "db", "postgresql://u:pw@db/k\n")),
        "KEVOLVE_LLM_API_KEY_FILE": str(_private(tmp_path / "llm", "sk-1\r\n")),
        "KEVOLVE_WEBHOOK_SECRET": "ignored: the file wins",
    }
    settings = bot_settings(env)
    assert (settings.webhook_secret, settings.database_url) == ("s3cret", "postgresql://u:pw@db/k")
    assert settings.llm_api_key == "sk-1" and settings.exposed == ()


def test_secrets_given_as_values_still_work_and_are_named_as_exposed() -> None:
    env = {
        "KEVOLVE_WEBHOOK_SECRET": "s3cret",
        "KEVOLVE_DATABASE_URL": "sqlite:///kevolve.db",  # no password: nothing to hide
        "OPENAI_API_KEY": "sk-2",
    }
    settings = bot_settings(env)
    assert (settings.webhook_secret, settings.llm_api_key) == ("s3cret", "sk-2")
    assert settings.exposed == ("KEVOLVE_WEBHOOK_SECRET", "OPENAI_API_KEY")
    with_password = {**env, "KEVOLVE_DATABASE_URL": "postgresql://u:pw@db/k"}
    assert "KEVOLVE_DATABASE_URL" in bot_settings(with_password).exposed


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o660])
def test_a_secret_file_open_to_group_or_others_is_refused_with_the_fix(
    tmp_path: Path, mode: int
) -> None:
    path = _private(tmp_path / "hook", "s3cret", mode)
    with pytest.raises(ValueError) as refused:
        bot_settings({"KEVOLVE_WEBHOOK_SECRET_FILE": str(path)})
    assert str(refused.value) == (
        f"KEVOLVE_WEBHOOK_SECRET_FILE={path} has mode {mode:03o}: group or others may read or "
        f"write it. Fix: chmod 600 {path} (readable by the bot's user alone)"
    )


def test_a_missing_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read KEVOLVE_LLM_API_KEY_FILE=.*nope: No such"):
        bot_settings({"KEVOLVE_LLM_API_KEY_FILE": str(tmp_path / "nope")})


def test_the_secrets_a_server_hands_its_worker_round_trip_and_garbage_is_refused() -> None:
    secrets = BotSecrets("s3cret", "sqlite:///k.db", "sk-3")
    assert BotSecrets.from_bytes(secrets.to_bytes()) == secrets
    for garbage in (b"", b"[]", b'{"version": 2}', b'{"version": 1, "webhook_secret": 1}'):
        with pytest.raises(ValueError, match="--secrets-on-stdin"):
            BotSecrets.from_bytes(garbage)
