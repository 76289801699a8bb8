"""harness.judge.tally at its edges: the cases mutation testing showed no other test pinned
(saturated references, ties for the largest error, norms summed over pieces, bool outputs, the
verdict of one output's tally)."""

from __future__ import annotations

import math

import pytest
import torch
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, compare_outputs
from kevolve.harness.judge.tally import Comparison, OutputPiece, Tally
from kevolve.harness.spec.problem import Tolerance

FP16 = DEFAULT_TOLERANCES["float16"]
FP64 = DEFAULT_TOLERANCES["float64"]
ZERO = Tolerance(rtol=0.0, atol=0.0, norm=0.0)
F16_MAX = 65504.0


def _ref(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def _tally(out: torch.Tensor, ref: torch.Tensor, tol: Tolerance) -> Comparison:
    """One output's tally fed its reference as a single piece, both passes."""
    tally = Tally("output 0", out, tuple(out.shape), tol, None)
    part = OutputPiece(0, ref.reshape(-1), lambda t: t.reshape(-1))
    tally.measure(part)
    tally.judge(part)
    return tally.result()


def test_a_failed_tally_is_the_boolean_false_and_a_passed_one_true() -> None:
    """An output's verdict is a bool of its own, before any merging of outputs."""
    ints = torch.tensor([1, 2, 3])
    assert _tally(ints.clone(), ints, ZERO).passed is True
    assert _tally(torch.tensor([1, 2, 4]), ints, ZERO).passed is False
    assert _tally(_ref(1.0, math.nan), _ref(1.0, 2.0), FP64).passed is False  # a NaN
    assert _tally(_ref(1.0, math.inf), _ref(1.0, 2.0), FP64).passed is False  # an Inf
    assert _tally(_ref(1.0, 2.5), _ref(1.0, 2.0), FP64).passed is False  # an element


def test_a_bool_output_compares_exactly_and_reports_its_figures() -> None:
    ref = torch.tensor([True, True, False, True])
    out = torch.tensor([True, False, False, True])
    result = compare_outputs([out], [ref], [torch.bool], FP16)
    assert (result.passed, result.mismatches, result.elements) == (False, 1, 4)
    assert (result.max_abs, result.first_indices) == (1.0, [[1]])
    assert result.failure == (
        "output 0: 1 of 4 elements differ (bool compares exactly); first at [1]: got False, "
        "expected True"
    )


def test_the_norm_and_scale_of_a_saturated_reference_are_taken_within_the_dtypes_range() -> None:
    """Past 65504 a float16 answer counts as 65504 (of its sign) in the reference's norm too, so
    one error of 1 weighs against the norm of (65504, 65504, 1000)."""
    ref = _ref(70000.0, -80000.0, 1000.0)
    out = torch.tensor([math.inf, -math.inf, 1001.0], dtype=torch.float16)
    result = compare_outputs([out], [ref], [torch.float16], FP16)
    norm = math.hypot(F16_MAX, F16_MAX, 1000.0)
    assert result.passed is True
    assert result.rel_norm == pytest.approx(1.0 / norm, rel=1e-12)
    assert result.max_rel == pytest.approx(math.sqrt(3) / norm, rel=1e-12)


def test_where_an_output_saturates_its_other_elements_keep_their_rounding_allowance() -> None:
    """A float16 output that is Inf where the answer passes 65504 is still judged as float16
    elsewhere: with no tolerance at all, 1/3 correctly rounded passes."""
    ref = _ref(70000.0, 1.0 / 3.0)
    out = torch.tensor([math.inf, 1.0 / 3.0], dtype=torch.float16)
    result = compare_outputs([out], [ref], [torch.float16], ZERO)
    assert result.passed is True, result.failure


def test_a_correctly_rounded_output_passes_a_zero_tolerance_read_in_any_pieces() -> None:
    """The norm's allowance for rounding is summed over every piece, as its error is."""
    ref = 1.0 + torch.rand(24, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    out = ref.to(torch.float16)
    for piece_elements in (1, 4, 24):
        result = compare_outputs([out], [ref], [torch.float16], ZERO, None, piece_elements)
        assert result.passed is True, (piece_elements, result.failure)
        assert result.rel_norm > 0.0


def test_of_equal_largest_errors_in_different_pieces_the_first_is_named() -> None:
    """Every element is off by the same amount: within rtol, beyond the norm. The failure points
    at the first element however the output is cut."""
    ref = torch.full((20,), 1000.0, dtype=torch.float64)
    out = ref * (1 + 5e-8)
    for piece_elements in (3, 20):
        result = compare_outputs([out], [ref], [torch.float64], FP64, None, piece_elements)
        assert result.mismatches == 0 and result.first_indices == [[0]]
        assert result.failure is not None and "largest error at [0]" in result.failure
