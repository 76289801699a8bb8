"""Five-field cron expressions: parsing, refusals that name the field, and firing times."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kevolve.bot.cron import CronError, parse_cron

WEDNESDAY = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 3 * * 1", WEDNESDAY, datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
        ("0 3 * * mon", WEDNESDAY, datetime(2026, 11, 30, 3, 0, tzinfo=UTC)),
        ("*/20 * * * *", WEDNESDAY, datetime(2026, 11, 25, 12, 20, tzinfo=UTC)),
        ("30 12 * * *", WEDNESDAY, datetime(2026, 11, 25, 12, 30, tzinfo=UTC)),
        ("0 12 * * *", WEDNESDAY, datetime(2026, 11, 26, 12, 0, tzinfo=UTC)),  # strictly after
        ("0 0 1 jan,jul *", WEDNESDAY, datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("0 0 29 2 *", WEDNESDAY, datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        ("0 0 * * 7", WEDNESDAY, datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),  # 7 is Sunday too
        ("0 9 1-5/2 * *", WEDNESDAY, datetime(2026, 12, 1, 9, 0, tzinfo=UTC)),
        ("15/20 * * * *", WEDNESDAY, datetime(2026, 11, 25, 12, 15, tzinfo=UTC)),
        ("@weekly", WEDNESDAY, datetime(2026, 11, 29, 0, 0, tzinfo=UTC)),
        ("@daily", WEDNESDAY, datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
    ],
)
def test_next_firing(expression: str, after: datetime, expected: datetime) -> None:
    assert parse_cron(expression).next_after(after) == expected


def test_both_day_fields_restricted_fire_on_either() -> None:
    # The 13th of the month or any Friday (Vixie cron), not only Friday the 13th.
    cron = parse_cron("0 0 13 * fri")
    assert cron.next_after(WEDNESDAY) == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert cron.next_after(datetime(2026, 12, 12, tzinfo=UTC)) == datetime(
        2026, 12, 13, 0, 0, tzinfo=UTC
    )


def test_a_stepped_star_day_field_is_not_a_restriction() -> None:
    # "*/2" starts with "*": days and weekdays must then both match.
    cron = parse_cron("0 0 */2 * 1")
    assert cron.next_after(WEDNESDAY) == datetime(2026, 12, 7, 0, 0, tzinfo=UTC)


def test_fired_is_after_since_and_up_to_until() -> None:
    cron = parse_cron("0 3 * * 1")
    monday = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    assert cron.fired(WEDNESDAY, monday)
    assert not cron.fired(WEDNESDAY, monday.replace(minute=0, hour=2))
    assert not cron.fired(monday, monday.replace(day=6))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 3 * *", "has 4 fields, not 5 (minute hour day-of-month month day-of-week)"),
        ("61 * * * *", "minute value 61 is outside 0-59"),
        ("0 24 * * *", "hour value 24 is outside 0-23"),
        ("0 0 0 * *", "day of month value 0 is outside 1-31"),
        ("0 0 * 13 *", "month value 13 is outside 1-12"),
        ("0 0 * * 8", "day of week value 8 is outside 0-7"),
        ("0 0 * * monday", "day of week value 'monday' is not a number from 0 to 7 or a name"),
        ("*/0 * * * *", "step of minute value 0 is outside 1-60"),
        ("5-1 * * * *", "minute range '5-1' runs backwards"),
        ("0 0 30 2 *", "never fires"),
        ("@fortnightly", "unknown shorthand '@fortnightly'"),
        ("0 0 * jan-foo *", "month value 'foo' is not a number from 1 to 12"),
    ],
)
def test_bad_expressions_name_the_field(expression: str, message: str) -> None:
    with pytest.raises(CronError) as caught:
        parse_cron(expression)
    assert message in str(caught.value)
