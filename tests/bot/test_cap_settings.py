"""The caps' settings: defaults, overrides, and a clear error naming the variable and the fix."""

from __future__ import annotations

import pytest
from kevolve.bot.quotas import QuotaLimits
from kevolve.bot.service.assembly import limits
from kevolve.bot.settings import bot_settings


def test_the_caps_default_to_the_documented_values() -> None:
    settings = bot_settings({})
    assert limits(settings) == QuotaLimits(5, 20, 10, 1000, 3600.0)
    assert settings.delivery_retry_s == (30.0, 120.0, 600.0)
    assert settings.webhook_max_bytes == 25 * 1024 * 1024


def test_each_cap_is_read_from_its_variable() -> None:
    settings = bot_settings(
        {
            "KEVOLVE_COMMANDS_PER_COMMENT": "2",
            "KEVOLVE_QUEUED_PER_REPO": "7",
            "KEVOLVE_QUEUED_PER_USER": "3",
            "KEVOLVE_MAX_BUDGET": "50",
            "KEVOLVE_REFUSAL_EVERY_S": "60",
            "KEVOLVE_DELIVERY_RETRY_S": "1, 2.5",
            "KEVOLVE_WEBHOOK_MAX_BYTES": "1000",
        }
    )
    assert limits(settings) == QuotaLimits(2, 7, 3, 50, 60.0)
    assert settings.delivery_retry_s == (1.0, 2.5)
    assert settings.webhook_max_bytes == 1000
    assert bot_settings({"KEVOLVE_DELIVERY_RETRY_S": ""}).delivery_retry_s == ()


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "KEVOLVE_DELIVERY_RETRY_S",
            "30,soon",
            "is not a list of seconds. Fix: set it to e.g. 30,120,600",
        ),
        ("KEVOLVE_DELIVERY_RETRY_S", "-1", "is not a list of seconds"),
        ("KEVOLVE_QUEUED_PER_REPO", "2.5", "is not a whole number. Fix: set it to e.g. 3"),
        ("KEVOLVE_MAX_BUDGET", "0", "is not a positive number"),
    ],
)
def test_a_bad_cap_is_a_clear_error_naming_the_variable(
    name: str, value: str, message: str
) -> None:
    with pytest.raises(ValueError, match=f"^{name}=") as caught:
        bot_settings({name: value})
    assert message in str(caught.value)
