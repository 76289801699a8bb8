"""Five-field cron expressions (as GitHub Actions' `schedule` reads them), in UTC.

`minute hour day-of-month month day-of-week`; each field a list of `*`, `n`, `a-b`, with an
optional `/step`; months and weekdays also by three-letter name; 0 and 7 are Sunday. As in
Vixie cron, when both day fields are restricted a day matching either one fires. The `@hourly`,
`@daily`, `@weekly`, `@monthly` and `@yearly` shorthands are accepted too. Each error names the
field and the value at fault, as a repo's config author reads it in a check run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["Cron", "CronError", "parse_cron"]

_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_HORIZON = timedelta(days=366 * 8)  # Feb 29 on a given weekday recurs within 28 years; 8 covers
# the plain Feb 29 case, and an expression with no firing in 8 years is refused as never firing


class CronError(ValueError):
    """A cron expression that cannot be used; the message names the field and the problem."""


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the allowed values of each field."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    days_restricted: bool
    weekdays_restricted: bool

    def next_after(self, moment: datetime) -> datetime | None:
        """The first firing strictly after `moment` (UTC), or None within the horizon."""
        t = moment.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
        end = t + _HORIZON
        while t < end:
            if t.month not in self.months:
                t = _month_start(t)
            elif not self._day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None

    def fired(self, since: datetime, until: datetime) -> bool:
        """Whether the expression fired after `since` and at or before `until`."""
        first = self.next_after(since)
        return first is not None and first <= until

    def _day_matches(self, t: datetime) -> bool:
        """Day-of-month and day-of-week, ORed when both are restricted (Vixie cron)."""
        day = t.day in self.days
        weekday = (t.weekday() + 1) % 7 in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day or weekday
        return day and weekday


def parse_cron(text: str) -> Cron:
    """The parsed expression; a CronError naming the field that is wrong."""
    expanded = _MACROS.get(text.strip().lower(), text)
    if expanded.strip().startswith("@"):
        raise CronError(f"unknown shorthand {text.strip()!r} (known: {', '.join(_MACROS)})")
    parts = expanded.split()
    if len(parts) != 5:
        raise CronError(
            f"has {len(parts)} field{'' if len(parts) == 1 else 's'}, not 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, weekday = parts
    cron = Cron(
        text.strip(),
        minutes=_field(minute, "minute", 0, 59),
        hours=_field(hour, "hour", 0, 23),
        days=_field(day, "day of month", 1, 31),
        months=_field(month, "month", 1, 12, _MONTHS),
        weekdays=frozenset(d % 7 for d in _field(weekday, "day of week", 0, 7, _DAYS, 0)),
        days_restricted=not day.startswith("*"),
        weekdays_restricted=not weekday.startswith("*"),
    )
    if cron.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
        raise CronError("never fires (no such date, e.g. February 30)")
    return cron


def _field(
    text: str, name: str, low: int, high: int, names: list[str] | None = None, name_base: int = 1
) -> frozenset[int]:
    """The values one field allows."""
    values: set[int] = set()
    for item in text.split(","):
        values.update(_item(item, name, low, high, names, name_base))
    return frozenset(values)


def _item(
    item: str, name: str, low: int, high: int, names: list[str] | None, name_base: int
) -> range:
    """The values of one list item: `*`, `n`, `a-b`, each with an optional `/step`."""
    span, slash, step_text = item.partition("/")
    step = _number(step_text, f"step of {name}", 1, high - low + 1, None, 0) if slash else 1
    if span == "*":
        return range(low, high + 1, step)
    first_text, dash, last_text = span.partition("-")
    first = _number(first_text, name, low, high, names, name_base)
    last = _number(last_text, name, low, high, names, name_base) if dash else first
    if slash and not dash:
        last = high  # "5/15" means 5, 20, 35, 50
    if last < first:
        raise CronError(f"{name} range '{span}' runs backwards; write the smaller value first")
    return range(first, last + 1, step)


def _number(
    text: str, name: str, low: int, high: int, names: list[str] | None, name_base: int
) -> int:
    """One value, as digits or (for months and weekdays) a three-letter name, within range."""
    if names is not None and text.lower() in names:
        return names.index(text.lower()) + name_base
    if not text.isdigit():
        named = f" or a name ({', '.join(names)})" if names else ""
        raise CronError(f"{name} value {text!r} is not a number from {low} to {high}{named}")
    value = int(text)
    if not low <= value <= high:
        raise CronError(f"{name} value {value} is outside {low}-{high}")
    return value


def _month_start(t: datetime) -> datetime:
    """Midnight on the first day of the month after `t`'s."""
    year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
    return t.replace(year=year, month=month, day=1, hour=0, minute=0)
