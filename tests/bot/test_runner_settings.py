"""Where jobs run is read once from the environment; a bad choice says which variable and how."""

from __future__ import annotations

import pytest
from kevolve.bot.settings import bot_settings

BASE = {"KEVOLVE_WEBHOOK_SECRET": "s"}


def test_jobs_run_here_unless_told_to_use_self_hosted_runners() -> None:
    assert bot_settings(BASE).runner == "local"
    chosen = bot_settings(
        {
            **BASE,
            "KEVOLVE_RUNNER": "actions",
            "KEVOLVE_BOT_URL": "https://bot.example.com",
            "KEVOLVE_RUNNER_ATTEMPTS": "5",
            "KEVOLVE_RUNNER_PICKUP_S": "60",
        }
    )
    assert (chosen.runner, chosen.bot_url) == ("actions", "https://bot.example.com")
    assert (chosen.runner_attempts, chosen.runner_pickup_s, chosen.runner_grace_s) == (5, 60, 120)
    assert chosen.workflow == "kevolve-search.yml"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KEVOLVE_RUNNER": "slurm"}, "KEVOLVE_RUNNER='slurm' is unknown"),
        ({"KEVOLVE_RUNNER": "actions"}, "needs KEVOLVE_BOT_URL"),
        ({"KEVOLVE_RUNNER": "actions", "KEVOLVE_BOT_URL": "bot:8080"}, "http(s) URL"),
        ({"KEVOLVE_RUNNER_ATTEMPTS": "two"}, "KEVOLVE_RUNNER_ATTEMPTS='two'"),
    ],
)
def test_a_bad_runner_setting_names_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError) as error:
        bot_settings({**BASE, **env})
    assert message in str(error.value)
