"""Every environment variable `kevolve serve` reads is in its --help, with a default and a
meaning: found by recording what `bot_settings` actually looks up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from kevolve.bot.settings import bot_settings
from kevolve.bot.variables import GROUPS

ROOT = Path(__file__).resolve().parents[2]


class Recording(dict[str, str]):
    """An environment that notes every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


@pytest.fixture(scope="module")
def help_text() -> str:
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "serve", "--help"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "runner",
    [{}, {"KEVOLVE_RUNNER": "actions", "KEVOLVE_BOT_URL": "https://bot.example"}],
)
def test_every_variable_the_service_reads_is_explained(
    runner: dict[str, str], help_text: str
) -> None:
    env = Recording({"KEVOLVE_WEBHOOK_SECRET": "s", **runner})
    bot_settings(env)
    read = {n for n in env.asked if n.startswith("KEVOLVE_")}
    documented = {v.name for _, group in GROUPS for v in group}
    # A secret is documented by its _FILE form, which also names the plain one.
    missing = {n for n in read if n not in documented and f"{n}_FILE" not in documented}
    assert not missing, f"read by bot_settings but not in bot/variables.py: {sorted(missing)}"
    for name in read:
        assert name in help_text, name


def test_each_variable_in_the_help_has_a_default_and_a_meaning(help_text: str) -> None:
    for _, group in GROUPS:
        for v in group:
            assert v.default and v.meaning
            assert f"{v.name} [{v.default}]:" in " ".join(help_text.split())
