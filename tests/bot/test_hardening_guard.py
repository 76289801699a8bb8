"""bot.hardening in this process: the bot's process made undumpable, its secret variables wiped
from the C environment (their bytes zeroed, other variables untouched), and `seal`'s refusal and
warnings. The probe test (test_probe.py) checks the same from outside, against a real bot."""

from __future__ import annotations

import ctypes
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kevolve.bot import hardening
from kevolve.bot.hardening import make_undumpable, seal, wipe_environment
from kevolve.bot.settings import bot_settings

LIBC = ctypes.CDLL(None, use_errno=True)
LIBC.getenv.restype = ctypes.c_void_p
PR_GET_DUMPABLE, PR_SET_DUMPABLE = 3, 4


@pytest.fixture
def dumpable() -> Iterator[None]:
    """This test process dumpable again afterwards (tests that follow read its /proc)."""
    yield
    LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)


def test_the_process_is_made_undumpable(dumpable: None) -> None:
    LIBC.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    make_undumpable()
    assert LIBC.prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0


class _RefusingLibc:
    """A C library whose prctl fails as the kernel would, with EINVAL."""

    def prctl(self, *args: int) -> int:
        ctypes.set_errno(errno.EINVAL)
        return -1


def test_a_prctl_that_fails_is_an_error_naming_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardening, "_LIBC", _RefusingLibc())
    with pytest.raises(OSError) as info:
        make_undumpable()
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "prctl(PR_SET_DUMPABLE, 0) failed: Invalid argument"


def test_wiped_variables_are_gone_and_their_bytes_zeroed_the_rest_untouched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEVOLVE_GUARD_SECRET", "hunter2-value")
    monkeypatch.setenv("KEVOLVE_GUARD_OTHER", "keep-me")
    address = LIBC.getenv(b"KEVOLVE_GUARD_SECRET")
    assert ctypes.string_at(address) == b"hunter2-value"
    wipe_environment(["KEVOLVE_GUARD_SECRET", "KEVOLVE_GUARD_ABSENT"])
    # The C string the environment pointed at (still allocated: glibc never frees them).
    assert ctypes.string_at(address, len("hunter2-value") + 1) == b"\0" * 14
    assert "KEVOLVE_GUARD_SECRET" not in os.environ and LIBC.getenv(b"KEVOLVE_GUARD_SECRET") is None
    assert os.environ["KEVOLVE_GUARD_OTHER"] == "keep-me"
    assert ctypes.string_at(LIBC.getenv(b"KEVOLVE_GUARD_OTHER")) == b"keep-me"


def test_a_value_holding_an_equals_sign_is_zeroed_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """The name ends at the first `=`: a secret such as a base64 key keeps `=` in its value."""
    monkeypatch.setenv("KEVOLVE_GUARD_SECRET", "aGk=x=y")
    address = LIBC.getenv(b"KEVOLVE_GUARD_SECRET")
    wipe_environment(["KEVOLVE_GUARD_SECRET"])
    assert ctypes.string_at(address, len("aGk=x=y") + 1) == b"\0" * 8


def test_the_first_variable_of_the_environment_block_is_wiped_too() -> None:
    """environ[0] is a variable like any other: a stand-in put there (and taken out after) is
    zeroed as the others are."""
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(LIBC, "environ")
    kept = environ[0]
    stand_in = ctypes.create_string_buffer(b"KEVOLVE_GUARD_FIRST=first-secret")
    environ[0] = ctypes.addressof(stand_in)
    try:
        wipe_environment(["KEVOLVE_GUARD_FIRST"])
        assert stand_in.raw == b"KEVOLVE_GUARD_FIRST=" + b"\0" * (len("first-secret") + 1)
    finally:
        environ[0] = kept


def test_seal_refuses_an_app_key_file_others_may_read(tmp_path: Path) -> None:
    key = tmp_path / "app.pem"
    key.write_text("-----BEGIN RSA PRIVATE KEY-----\n")
    key.chmod(0o640)
    settings = bot_settings(
        {"KEVOLVE_WEBHOOK_SECRET": "s3cret", "KEVOLVE_GITHUB_PRIVATE_KEY_PATH": str(key)}
    )
    with pytest.raises(ValueError) as info:
        seal(settings)
    assert str(info.value).startswith(f"KEVOLVE_GITHUB_PRIVATE_KEY_PATH={key} has mode 640")
    key.chmod(0o600)
    seal(settings)


def test_seal_warns_of_each_exposed_secret_then_wipes_every_secret_variable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    env = {"KEVOLVE_WEBHOOK_SECRET": "s3cret", "OPENAI_API_KEY": "sk-3"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("KEVOLVE_LLM_API_KEY_FILE", "/run/secrets/llm")  # a path, not a secret
    with caplog.at_level(logging.WARNING, logger="kevolve.bot.hardening"):
        seal(bot_settings(env))
    assert [m.split(" is set in the environment")[0] for m in caplog.messages] == [
        "KEVOLVE_WEBHOOK_SECRET",
        "OPENAI_API_KEY",
    ]
    assert not {"KEVOLVE_WEBHOOK_SECRET", "OPENAI_API_KEY"} & set(os.environ)
    assert os.environ["KEVOLVE_LLM_API_KEY_FILE"] == "/run/secrets/llm"
