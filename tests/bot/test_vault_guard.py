"""bot.vault at its edges: the worker's secrets in exact words, files that are not regular or not
text, which variable wins, and which secrets count as exposed in the environment."""

from __future__ import annotations

import json
import locale
from pathlib import Path

import pytest
from kevolve.bot.vault import (
    BotSecrets,
    exposed,
    exposure_warning,
    private_text,
    require_private,
    secret,
)

GARBAGE = (
    "--secrets-on-stdin: stdin does not hold the secrets `kevolve serve` writes. "
    "Fix: start the worker with `kevolve serve`, or without --secrets-on-stdin"
)


def _private(path: Path, data: bytes, mode: int = 0o600) -> Path:
    path.write_bytes(data)
    path.chmod(mode)
    return path


def test_the_secrets_go_to_the_worker_as_versioned_json() -> None:
    sent = BotSecrets("s3cret", "sqlite:///k.db", "sk-3").to_bytes()
    assert json.loads(sent) == {
        "version": 1,
        "webhook_secret": "s3cret",
        "database_url": "sqlite:///k.db",
        "llm_api_key": "sk-3",
    }


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'"text"',
        b'{"webhook_secret": "s", "database_url": "d", "llm_api_key": "k"}',
        b'{"version": 2, "webhook_secret": "s", "database_url": "d", "llm_api_key": "k"}',
        b'{"version": 1, "webhook_secret": "s", "database_url": "d"}',
        b'{"version": 1, "webhook_secret": "s", "database_url": "d", "llm_api_key": "k", "x": 1}',
    ],
)
def test_anything_but_what_serve_writes_is_refused_with_the_fix(data: bytes) -> None:
    with pytest.raises(ValueError) as info:
        BotSecrets.from_bytes(data)
    assert str(info.value) == GARBAGE


def test_a_secret_that_is_not_a_string_is_refused() -> None:
    data = b'{"version": 1, "webhook_secret": "s", "database_url": 5, "llm_api_key": "k"}'
    with pytest.raises(ValueError) as info:
        BotSecrets.from_bytes(data)
    assert str(info.value) == "--secrets-on-stdin: every secret must be a string"


def test_a_private_file_may_be_the_owners_alone_in_any_mode(tmp_path: Path) -> None:
    for mode in (0o600, 0o400, 0o700):
        require_private(_private(tmp_path / f"m{mode:o}", b"s", mode), "V")


def test_what_is_not_a_regular_file_or_cannot_be_read_is_named(tmp_path: Path) -> None:
    folder = tmp_path / "dir"
    folder.mkdir(mode=0o700)
    with pytest.raises(ValueError) as info:
        require_private(folder, "KEVOLVE_X_FILE")
    assert (
        str(info.value)
        == f"KEVOLVE_X_FILE={folder} is not a regular file. Fix: point it at the file"
    )
    with pytest.raises(ValueError) as info:
        require_private(tmp_path / "gone", "KEVOLVE_X_FILE")
    assert str(info.value) == (
        f"cannot read KEVOLVE_X_FILE={tmp_path / 'gone'}: No such file or directory. "
        "Fix: point it at the file"
    )


def test_a_private_files_text_loses_only_its_trailing_line_ends(tmp_path: Path) -> None:
    path = _private(tmp_path / "s", b"  s3cretX \r\n\n")
    assert private_text(path, "V") == "  s3cretX "
    assert private_text(_private(tmp_path / "x", b"s3cretX"), "V") == "s3cretX"


def test_a_private_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    path = _private(tmp_path / "s", "sécret\n".encode())
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # ASCII: a host whose locale is not UTF-8
    try:
        assert private_text(path, "V") == "sécret"
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    binary = _private(tmp_path / "b", b"\xff\xfe")
    with pytest.raises(ValueError) as info:
        private_text(binary, "KEVOLVE_X_FILE")
    assert str(info.value).startswith(f"cannot read KEVOLVE_X_FILE={binary}: 'utf-8' codec")
    assert str(info.value).endswith(". Fix: point it at the file")


def test_a_secrets_file_wins_over_its_value_and_an_empty_file_setting_does_not(
    tmp_path: Path,
) -> None:
    path = _private(tmp_path / "s", b"from-file\n")
    assert secret({"S_FILE": str(path), "S": "from-env"}, "S") == "from-file"
    assert secret({"S_FILE": "", "S": "from-env"}, "S") == "from-env"
    assert secret({}, "S") == ""


def test_only_secrets_given_as_values_count_as_exposed() -> None:
    env = {
        "A": "value",
        "B": "",
        "C": "value",
        "C_FILE": "/run/secrets/c",
        "KEVOLVE_DATABASE_URL": "postgresql://kevolve@db/k",
        "OTHER_DATABASE_URL": "postgresql://kevolve:pw@db/k",
    }
    names = ("A", "B", "C", "D", "KEVOLVE_DATABASE_URL", "OTHER_DATABASE_URL")
    assert exposed(env, names) == ("A", "OTHER_DATABASE_URL")


def test_the_exposure_warning_says_what_to_do() -> None:
    assert exposure_warning("KEVOLVE_WEBHOOK_SECRET") == (
        "KEVOLVE_WEBHOOK_SECRET is set in the environment: processes started beside the bot "
        "inherit it. kevolve removes it from its own environment, but put it in a file only the "
        "bot's user can read (chmod 600) and set KEVOLVE_WEBHOOK_SECRET_FILE instead"
    )
