"""harness.judge.compare at its edges: the cases mutation testing showed no other test pinned
(zero tolerances, exact boundaries, non-finite references, odd tensors, the error texts)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from kevolve.harness.judge.chunked import ChunkedReference
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, compare_outputs, tolerance_for
from kevolve.harness.judge.tally import OutputPiece, Tally
from kevolve.harness.spec.problem import Tolerance

BF16 = DEFAULT_TOLERANCES["bfloat16"]
FP32 = DEFAULT_TOLERANCES["float32"]
FP64 = DEFAULT_TOLERANCES["float64"]
ZERO = Tolerance(rtol=0.0, atol=0.0, norm=0.0)
F16_STEP = 2.0**-24  # float16's subnormal step
F16_SMALLEST_NORMAL = 2.0**-14


def _ref(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_an_unknown_dtype_error_lists_the_known_ones() -> None:
    with pytest.raises(ValueError) as info:
        tolerance_for("float8", {})
    assert str(info.value) == (
        "no tolerance for dtype 'float8'; known dtypes: float64, float32, float16, bfloat16, "
        "int8, int16, int32, int64, bool"
    )


def test_a_loose_float32_override_error_says_why_in_full() -> None:
    with pytest.raises(ValueError) as info:
        tolerance_for("float32", {"float32": Tolerance(rtol=1e-3, atol=1e-5, norm=1e-5)})
    assert str(info.value) == (
        "tolerance override for float32 (rtol 1.0e-03, norm 1.0e-05) is looser than 1e-04 in "
        "rtol or norm; float32 must not be judged that loosely, or TF32 and half-precision "
        "shortcuts would pass"
    )


def test_references_and_dtypes_of_different_counts_are_a_named_error() -> None:
    with pytest.raises(ValueError) as info:
        compare_outputs([_ref(1.0)], [_ref(1.0), _ref(2.0)], [torch.float64], FP64)
    assert str(info.value) == "2 reference outputs but 1 dtypes"


def test_a_working_reference_of_another_count_is_an_error_not_a_shorter_comparison() -> None:
    ref = _ref(1.0, 2.0)
    with pytest.raises(ValueError) as info:
        compare_outputs([ref, ref], [ref, ref], [torch.float64] * 2, FP64, [ref.float()])
    assert str(info.value) == "1 working reference outputs for 2 outputs"


def test_a_working_reference_of_another_shape_gives_no_allowance() -> None:
    """A float32 reference that does not line up with the output allows nothing: the output is
    judged against the float64 answer alone, as without one."""
    ref = _ref(1.0, -2.0, 3.0, 0.5)
    out = (ref * (1 + 1e-3)).to(torch.float32)
    far = (ref * (1 + 1e-3)).float().reshape(2, 2)  # as far off as the output, another shape
    result = compare_outputs([out], [ref], [torch.float32], FP32, [far])
    assert result.passed is False and result.mismatches == 4


def test_every_failed_verdict_is_the_boolean_false() -> None:
    """`passed` goes over the wire as JSON: a failure must be false there, never null."""
    ref = _ref(1.0, 2.0)
    failures = [
        compare_outputs([ref, ref], [ref], [torch.float64], FP64),  # output count
        compare_outputs([3], [ref], [torch.float64], FP64),  # not a tensor
        compare_outputs([ref.float()], [ref], [torch.float64], FP64),  # wrong dtype
        compare_outputs([torch.tensor([1, 3])], [torch.tensor([1, 2])], [torch.int64], ZERO),
        compare_outputs([_ref(1.0, math.nan)], [ref], [torch.float64], FP64),  # a NaN
    ]
    assert [c.passed for c in failures] == [False] * 5
    assert all(c.passed is False for c in failures)


def test_an_empty_output_matching_an_empty_reference_passes_as_true() -> None:
    empty = torch.empty(0, 3, dtype=torch.float64)
    result = compare_outputs([empty.clone()], [empty], [torch.float64], FP64)
    assert result.passed is True and result.failure is None


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "row_chunks"])
def test_no_piece_read_at_once_exceeds_piece_elements(
    chunked: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`piece_elements` bounds the reference elements held in float64 at once, in both passes,
    whether the reference comes whole or a few rows at a time; together the pieces cover it."""
    seen: list[int] = []

    def recording(method: Callable[[Tally, OutputPiece], None]) -> object:
        def record(self: Tally, part: OutputPiece) -> None:
            seen.append(part.ref.numel())
            method(self, part)

        return record

    monkeypatch.setattr(Tally, "measure", recording(Tally.measure))
    monkeypatch.setattr(Tally, "judge", recording(Tally.judge))
    ref = torch.linspace(-1.0, 1.0, 48, dtype=torch.float64).reshape(6, 8)
    rows = ChunkedReference([(6, 8)], [(0, 4), (4, 6)], lambda a, b: [ref[a:b]])
    result = compare_outputs(
        [ref.clone()], rows if chunked else [ref], [torch.float64], FP64, None, 5
    )
    assert result.passed is True and result.elements == 48
    assert max(seen) <= 5 and sum(seen) == 2 * 48


def test_a_zero_tolerance_accepts_an_identical_float_output_and_nothing_else() -> None:
    ref = _ref(0.5, -1.25, 3.0)
    assert compare_outputs([ref.clone()], [ref], [torch.float64], ZERO).passed is True
    off = ref.clone()
    off[1] = math.nextafter(-1.25, 0.0)
    assert not compare_outputs([off], [ref], [torch.float64], ZERO).passed


def test_a_single_elements_scale_is_its_own_magnitude() -> None:
    """rms of one element is |x|, so atol 1e-2 allows 0.009 off at 1.0 (with rtol and the norm
    out of the way)."""
    tol = Tolerance(rtol=0.0, atol=1e-2, norm=1.0)
    result = compare_outputs([_ref(1.009)], [_ref(1.0)], [torch.float64], tol)
    assert result.passed, result.failure


def test_integer_outputs_compare_exactly_whatever_the_tolerance_passed() -> None:
    """One tolerance covers all of a problem's outputs; an int output beside a float one still
    compares exactly, even where the float tolerance would allow 1 in 1000."""
    ref = torch.tensor([1000, 2000], dtype=torch.int64)
    out = torch.tensor([1001, 2000], dtype=torch.int64)
    result = compare_outputs([out], [ref], [torch.int64], BF16)
    assert result.passed is False and result.mismatches == 1


def test_integer_figures_are_exact_for_large_values() -> None:
    """The figures of an int64 output are computed in float64: 2**40 + 1 stays what it is."""
    big = 2**40 + 1
    ref = torch.tensor([big], dtype=torch.int64)
    result = compare_outputs([torch.tensor([0])], [ref], [torch.int64], ZERO)
    assert result.max_abs == float(big)
    assert result.max_rel == 1.0


def test_an_unmatched_inf_reports_an_infinite_error() -> None:
    out = torch.tensor([1.0, math.inf], dtype=torch.float32)
    result = compare_outputs([out], [_ref(1.0, 2.0)], [torch.float32], FP32)
    assert result.passed is False and result.max_abs == math.inf


def test_a_non_finite_reference_element_adds_nothing_to_the_scale() -> None:
    """Eight values of 1e-3 beside an Inf: atol scales with the rms of the finite ones alone, so
    a 10% error fails in bfloat16 just as it would without the Inf."""
    ref = torch.tensor([math.inf] + [1e-3] * 8, dtype=torch.float64)
    out = ref.clone()
    out[1:] *= 1.1
    result = compare_outputs([out.to(torch.bfloat16)], [ref], [torch.bfloat16], BF16)
    assert result.passed is False and result.mismatches == 8


def test_a_float16_inf_where_the_answer_is_exactly_the_largest_finite_fails() -> None:
    """Past 65504 either Inf or 65504 is right; at exactly 65504 only 65504 is."""
    ref, tol = _ref(65504.0, 1.0), tolerance_for("float16", {})
    inf = torch.tensor([math.inf, 1.0], dtype=torch.float16)
    assert compare_outputs([inf], [ref], [torch.float16], tol).passed is False
    exact = torch.tensor([65504.0, 1.0], dtype=torch.float16)
    assert compare_outputs([exact], [ref], [torch.float16], tol).passed is True


def test_a_saturated_output_is_still_judged_and_named_in_its_own_dtype() -> None:
    ref, tol = _ref(70000.0, 60000.0, 60000.0, 60000.0), tolerance_for("float16", {})
    out = torch.tensor([math.inf, 60000.0, 61024.0, 60000.0], dtype=torch.float16)
    result = compare_outputs([out], [ref], [torch.float16], tol)
    assert result.failure is not None
    assert result.failure.startswith("output 0: 1 of 4 elements differ beyond tolerance (float16:")


def test_a_subclass_output_is_named_by_its_class() -> None:
    out = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    result = compare_outputs([out], [_ref(1.0, 1.0)], [torch.float64], FP64)
    assert result.failure == "output 0 is a Parameter, not a plain torch.Tensor"


def test_a_sparse_output_is_refused_before_its_values_are_read() -> None:
    out = torch.ones(2, dtype=torch.float64).to_sparse()
    result = compare_outputs([out], [_ref(1.0, 1.0)], [torch.float64], FP64)
    assert result.failure == (
        "output 0 is not a dense tensor with data (layout torch.sparse_coo, device cpu)"
    )


def test_a_subnormal_of_exactly_one_step_may_land_one_step_away() -> None:
    tol = tolerance_for("float16", {})
    out = torch.tensor([2 * F16_STEP], dtype=torch.float16)
    result = compare_outputs([out], [_ref(F16_STEP)], [torch.float16], tol)
    assert result.passed, result.failure


def test_the_subnormal_allowance_stops_at_the_smallest_normal() -> None:
    """At 2**-14 the dtype resolves the value exactly: with no tolerance, one step off fails."""
    out = torch.tensor([F16_SMALLEST_NORMAL + F16_STEP], dtype=torch.float16)
    result = compare_outputs([out], [_ref(F16_SMALLEST_NORMAL)], [torch.float16], ZERO)
    assert result.passed is False


def test_the_float32_allowance_is_the_distance_between_the_references() -> None:
    """Where PyTorch's float32 answer equals the float64 one there is no extra slack."""
    ref = _ref(1.0, -2.0, 3.0, 0.5)
    out = (ref * (1 + 1e-3)).to(torch.float32)
    result = compare_outputs([out], [ref], [torch.float32], FP32, [ref.float()])
    assert result.passed is False


def test_references_that_are_not_finite_give_no_norm_slack() -> None:
    """NaN and -Inf in both references, one finite where the other is -Inf: no allowance comes
    of them, so an output whose every element passes but whose error adds up still fails."""
    exact = torch.tensor([math.nan, -math.inf] + [1000.0] * 98, dtype=torch.float64)
    working = torch.tensor([math.nan, 0.0] + [1000.0] * 98, dtype=torch.float32)
    out = exact.clone()
    out[2:] *= 1 + 5e-8  # 5e-5 off each: within rtol 1e-7 x 1000, beyond norm 1e-9
    result = compare_outputs([out], [exact], [torch.float64], FP64, [working])
    assert result.mismatches == 0
    assert result.passed is False and result.failure is not None
    assert "exceeds the limit" in result.failure
