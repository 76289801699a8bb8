"""runners.fieldread: each reader at its exact limits, and the exact words of each refusal (a
runner's log shows them, so they name the field and what was wrong)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import pytest
from kevolve.runners.fieldread import (
    MAX_COUNT,
    MAX_FIGURE,
    MAX_LIST,
    MAX_SOURCE_BYTES,
    MAX_TEXT,
    IntakeError,
    kind_of,
    quoted,
    read_bool,
    read_count,
    read_dtype,
    read_error,
    read_figure,
    read_interval,
    read_list,
    read_match,
    read_object,
    read_object_list,
    read_optional,
    read_positive,
    read_shape,
    read_source,
    read_text,
    read_word,
)


def refusal(read: Callable[..., Any], value: object, *more: object) -> str:
    """The message `read(value, "f", *more)` refuses with."""
    with pytest.raises(IntakeError) as info:
        read(value, "f", *more)
    return str(info.value)


def test_objects_and_lists_say_what_they_got() -> None:
    assert read_object({"a": 1}, "f") == {"a": 1}
    assert refusal(read_object, [1]) == "f: expected an object, got list"
    assert refusal(read_object, None) == "f: expected an object, got null"
    assert refusal(read_list, "ab", read_bool) == "f: expected a list, got str"
    assert read_list([True] * MAX_LIST, "f", read_bool) == [True] * MAX_LIST
    assert refusal(read_list, [True] * (MAX_LIST + 1), read_bool) == "f: 65 items, at most 64"
    assert refusal(read_list, [True] * 3, read_bool, 2) == "f: 3 items, at most 2"
    assert refusal(read_list, [True, 1], read_bool) == "f[1]: expected true or false, got int"


def test_the_objects_of_a_list_under_a_key() -> None:
    assert read_object_list({"k": [{"a": 1}, 2, "x", {"b": 2}]}, "k") == [{"a": 1}, {"b": 2}]
    assert read_object_list({"other": [{"a": 1}]}, "k") == []
    assert read_object_list([{"a": 1}], "k") == []


def test_optional_fields_are_read_only_when_present() -> None:
    assert read_optional(None, "f", read_bool) is None
    assert read_optional(False, "f", read_bool) is False
    assert refusal(read_optional, 0, read_bool) == "f: expected true or false, got int"


def test_whole_numbers_from_zero_to_the_cap() -> None:
    assert (read_count(0, "f"), read_count(MAX_COUNT, "f"), read_count(7, "f", 7)) == (
        0,
        MAX_COUNT,
        7,
    )
    for value in (-1, MAX_COUNT + 1, True, 1.0, "1"):
        message = refusal(read_count, value)
        assert message == f"f: expected a whole number from 0 to {MAX_COUNT}, got {value!r}"
    assert refusal(read_count, 8, 7) == "f: expected a whole number from 0 to 7, got 8"


def test_figures_are_finite_from_zero_to_the_cap() -> None:
    assert read_figure(0, "f") == 0.0 and isinstance(read_figure(3, "f"), float)
    assert read_figure(MAX_FIGURE, "f") == MAX_FIGURE
    for value in (True, "1.5", None):
        assert refusal(read_figure, value) == f"f: expected a number, got {kind_of(value)}"
    for number in (-0.5, math.inf, math.nan, MAX_FIGURE * 1.000001):
        message = refusal(read_figure, number)
        assert message == f"f: expected a finite number from 0 to 1e+15, got {number}"


def test_an_error_figure_may_be_infinite_but_not_negative_or_nan() -> None:
    assert read_error(math.inf, "f") == math.inf and read_error(0.25, "f") == 0.25
    assert refusal(read_error, -math.inf).startswith("f: expected a finite number")
    assert refusal(read_error, math.nan).startswith("f: expected a finite number")


def test_positive_figures_and_intervals() -> None:
    assert read_positive(1e-9, "f") == 1e-9
    assert refusal(read_positive, 0) == "f: expected a number above 0, got 0.0"
    assert read_interval([1, 2], "f") == (1.0, 2.0) and read_interval([1.5, 1.5], "f") == (1.5, 1.5)
    for value in ([2.0, 1.0], [1.0]):
        assert refusal(read_interval, value) == "f: expected [low, high] with 0 < low <= high"
    assert refusal(read_interval, [1.0, 2.0, 3.0]) == "f: 3 items, at most 2"
    assert refusal(read_interval, [0.0, 1.0]) == "f[0]: expected a number above 0, got 0.0"


def test_shapes_have_at_most_eight_dimensions_of_at_most_2_to_the_40() -> None:
    assert read_shape([2**40] * 8, "f") == [2**40] * 8
    assert refusal(read_shape, [1] * 9) == "f: 9 items, at most 8"
    assert refusal(read_shape, [2**40 + 1]) == (
        f"f[0]: expected a whole number from 0 to {2**40}, got {2**40 + 1}"
    )


def test_dtypes_and_patterns() -> None:
    assert read_dtype("bfloat16", "f") == "bfloat16"
    assert refusal(read_dtype, "float8") == (
        "f: 'float8' is none of float16, bfloat16, float32, float64, int8, int16, int32, int64, "
        "bool"
    )
    assert read_word("h100_sxm:2-b", "f") == "h100_sxm:2-b"
    assert refusal(read_word, "H100") == "f: 'H100' does not match [a-z0-9_:-]{1,40}"
    assert refusal(read_word, "x" * 41).startswith("f: 'xxxxx")
    assert refusal(read_match, 3, re.compile("[0-9]")) == "f: 3 does not match [0-9]"


def test_text_is_capped_in_characters_and_must_be_utf8_without_nul() -> None:
    assert read_text("é" * MAX_TEXT, "f") == "é" * MAX_TEXT
    assert refusal(read_text, "x" * (MAX_TEXT + 1)) == "f: 65537 characters, at most 65536"
    assert refusal(read_text, 5) == "f: expected text, got int"
    assert refusal(read_text, "a\ud800") == "f: not UTF-8 text (a lone surrogate)"
    assert refusal(read_text, "a\0b") == "f: contains a NUL character"


def test_a_source_is_capped_in_utf8_bytes() -> None:
    fits = "é" * (MAX_SOURCE_BYTES // 2)  # two bytes each
    assert read_source(fits, "f") == fits
    assert refusal(read_source, fits + "x") == "f: 524289 bytes, at most 524288"
    assert refusal(read_source, 5) == "f: expected the module's text, got int"
    assert refusal(read_source, "\0") == "f: contains a NUL character"


def test_a_quoted_value_is_one_short_line() -> None:
    assert quoted("x" * 58) == repr("x" * 58)  # 60 characters with its quotes
    assert quoted("x" * 59) == repr("x" * 59)[:57] + "..."
    assert quoted(None) == "None" and kind_of(None) == "null" and kind_of(1.5) == "float"
