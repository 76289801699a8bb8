"""Fields of posted JSON, each read with its limits: `read_*(value, where)` returns the value
typed, or raises `IntakeError` naming the field (`where`) and what was wrong with it."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from kevolve.harness.spec.problem import DTYPES

MAX_SOURCE_BYTES = 512 * 1024  # a kernel module; the largest real ones are a few dozen KiB
MAX_TEXT = 64 * 1024  # characters of one free-text field (a message shows far fewer)
MAX_CASES = 512  # checked or timed cases of one evaluation
MAX_HISTORY = 200_000  # points of the best-so-far history
MAX_LIST = 64  # notes, flags, parents
MAX_COUNT = 10**9  # evaluations, tokens, elements, trials
MAX_FIGURE = 1e15  # milliseconds, GB/s, dollars, errors...
WORD = re.compile(r"[a-z0-9_:-]{1,40}")  # a device, a hardware label

T = TypeVar("T")


class IntakeError(ValueError):
    """A result that does not fit: which field, and why."""


def read_object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise IntakeError(f"{where}: expected an object, got {kind_of(value)}")
    return value


def read_object_list(value: object, key: str) -> list[Mapping[str, Any]]:
    """The objects under `key` of an already checked object."""
    items = value.get(key, []) if isinstance(value, dict) else []
    return [item for item in items if isinstance(item, dict)]


def read_list(
    value: object, where: str, read: Callable[[object, str], T], cap: int = MAX_LIST
) -> list[T]:
    if not isinstance(value, list):
        raise IntakeError(f"{where}: expected a list, got {kind_of(value)}")
    if len(value) > cap:
        raise IntakeError(f"{where}: {len(value)} items, at most {cap}")
    return [read(item, f"{where}[{i}]") for i, item in enumerate(value)]


def read_optional(value: object, where: str, read: Callable[[object, str], T]) -> T | None:
    return None if value is None else read(value, where)


def read_bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise IntakeError(f"{where}: expected true or false, got {kind_of(value)}")
    return value


def read_count(value: object, where: str, high: int = MAX_COUNT) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= high:
        raise IntakeError(f"{where}: expected a whole number from 0 to {high}, got {quoted(value)}")
    return value


def read_figure(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise IntakeError(f"{where}: expected a number, got {kind_of(value)}")
    number = float(value)
    if not (math.isfinite(number) and 0.0 <= number <= MAX_FIGURE):
        raise IntakeError(
            f"{where}: expected a finite number from 0 to {MAX_FIGURE:g}, got {value}"
        )
    return number


def read_error(value: object, where: str) -> float:
    """An error figure: a failed check may report an infinite one."""
    if isinstance(value, float) and math.isinf(value) and value > 0:
        return value
    return read_figure(value, where)


def read_positive(value: object, where: str) -> float:
    number = read_figure(value, where)
    if number <= 0.0:
        raise IntakeError(f"{where}: expected a number above 0, got {number}")
    return number


def read_interval(value: object, where: str) -> tuple[float, float]:
    bounds = read_list(value, where, read_positive, 2)
    if len(bounds) != 2 or bounds[0] > bounds[1]:
        raise IntakeError(f"{where}: expected [low, high] with 0 < low <= high")
    return bounds[0], bounds[1]


def read_shape(value: object, where: str) -> list[int]:
    return read_list(value, where, lambda v, w: read_count(v, w, 2**40), 8)


def read_dtype(value: object, where: str) -> str:
    if value not in DTYPES:
        raise IntakeError(f"{where}: {quoted(value)} is none of {', '.join(DTYPES)}")
    return str(value)


def read_word(value: object, where: str) -> str:
    return read_match(value, where, WORD)


def read_match(value: object, where: str, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise IntakeError(f"{where}: {quoted(value)} does not match {pattern.pattern}")
    return value


def read_text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise IntakeError(f"{where}: expected text, got {kind_of(value)}")
    if len(value) > MAX_TEXT:
        raise IntakeError(f"{where}: {len(value)} characters, at most {MAX_TEXT}")
    utf8_bytes(value, where)
    return value


def read_source(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise IntakeError(f"{where}: expected the module's text, got {kind_of(value)}")
    size = len(utf8_bytes(value, where))
    if size > MAX_SOURCE_BYTES:
        raise IntakeError(f"{where}: {size} bytes, at most {MAX_SOURCE_BYTES}")
    return value


def utf8_bytes(value: str, where: str) -> bytes:
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise IntakeError(f"{where}: not UTF-8 text (a lone surrogate)") from None
    if "\0" in value:
        raise IntakeError(f"{where}: contains a NUL character")
    return encoded


def kind_of(value: object) -> str:
    return "null" if value is None else type(value).__name__


def quoted(value: object) -> str:
    """A value as a refusal quotes it: short, one line."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
