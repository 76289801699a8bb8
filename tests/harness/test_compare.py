"""Tests of harness.judge.compare: tolerances, output comparison, bitwise input and rerun checks."""

from __future__ import annotations

import pytest
import torch
from kevolve.harness.judge.bitwise import identical, inputs_unchanged
from kevolve.harness.judge.compare import (
    DEFAULT_TOLERANCES,
    Comparison,
    compare_outputs,
    tolerance_for,
)
from kevolve.harness.spec.problem import Tolerance

BF16 = DEFAULT_TOLERANCES["bfloat16"]
FP16 = DEFAULT_TOLERANCES["float16"]
FP32 = DEFAULT_TOLERANCES["float32"]


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    """A float64 reference drawn from a seeded generator."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _check(out: object, ref: torch.Tensor, dtype: torch.dtype, tol: Tolerance) -> Comparison:
    """compare_outputs for a single output."""
    return compare_outputs([out], [ref], [dtype], tol)


def test_exact_match_passes() -> None:
    ref = _randn(33, 17)
    result = _check(ref.to(torch.float32), ref, torch.float32, FP32)
    assert result.passed
    assert result.failure is None
    assert result.mismatches == 0
    assert result.elements == 33 * 17
    assert result.first_indices == []


@pytest.mark.parametrize(
    ("dtype", "tol"),
    [(torch.bfloat16, BF16), (torch.float16, FP16), (torch.float32, FP32)],
)
def test_rounding_the_reference_to_the_output_dtype_passes(
    dtype: torch.dtype, tol: Tolerance
) -> None:
    ref = _randn(257, 131, seed=1)
    result = _check(ref.to(dtype), ref, dtype, tol)
    assert result.passed, result.failure
    assert result.max_abs > 0.0


def test_relative_error_of_1e_3_fails_float32() -> None:
    ref = _randn(64, 64, seed=2)
    result = _check((ref * (1 + 1e-3)).to(torch.float32), ref, torch.float32, FP32)
    assert not result.passed
    assert result.failure is not None
    assert "differ beyond tolerance (float32: rtol 1.0e-04, atol 1.0e-05" in result.failure
    assert result.max_rel == pytest.approx(1e-3, rel=1e-3)


def test_relative_error_of_1e_3_passes_bfloat16() -> None:
    ref = _randn(64, 64, seed=2)
    result = _check((ref * (1 + 1e-3)).to(torch.bfloat16), ref, torch.bfloat16, BF16)
    assert result.passed, result.failure


def test_wrong_output_count_fails() -> None:
    ref = _randn(4)
    result = compare_outputs([ref, ref], [ref], [torch.float64], FP32)
    assert not result.passed
    assert result.failure == "output count 2, expected 1"


def test_non_tensor_output_fails() -> None:
    result = _check(3, _randn(4), torch.float32, FP32)
    assert result.failure == "output 0 is not a tensor but int"


def test_wrong_shape_fails() -> None:
    ref = _randn(3, 17)
    result = _check(torch.zeros(3, 16), ref, torch.float32, FP32)
    assert result.failure == "output 0 has shape (3, 16) but the reference has (3, 17)"


def test_wrong_dtype_fails() -> None:
    ref = _randn(3, 17)
    result = _check(ref.to(torch.float32), ref, torch.bfloat16, BF16)
    assert result.failure == "output 0 has dtype torch.float32 but must be torch.bfloat16"


def test_nan_values_fail_with_count_and_first_index() -> None:
    ref = _randn(6, 9, seed=3)
    out = ref.to(torch.float32)
    out[2, 5:] = float("nan")
    out[4, :8] = float("nan")
    result = _check(out, ref, torch.float32, FP32)
    assert result.failure == "output 0 holds 12 NaN values (first at [2, 5])"
    assert result.first_indices == [[2, 5], [2, 6], [2, 7], [2, 8], [4, 0]]
    assert result.mismatches == 12


def test_nan_where_the_reference_is_nan_is_accepted() -> None:
    ref = _randn(5, 7, seed=4)
    ref[1, 2] = float("nan")
    result = _check(ref.to(torch.float32), ref, torch.float32, FP32)
    assert result.passed, result.failure
    assert result.max_abs < 1e-6


def test_inf_values_fail() -> None:
    ref = _randn(5, 7, seed=5)
    out = ref.to(torch.float16)
    out[1, 0] = float("inf")
    out[3, 3] = float("-inf")
    out[4, 6] = float("inf")
    result = _check(out, ref, torch.float16, FP16)
    assert result.failure == "output 0 holds 3 Inf values (first at [1, 0])"
    assert result.first_indices == [[1, 0], [3, 3], [4, 6]]


def test_inf_matching_the_reference_is_accepted_and_of_wrong_sign_is_not() -> None:
    ref = _randn(5, 7, seed=6)
    ref[0, 0] = float("inf")
    assert _check(ref.to(torch.float32), ref, torch.float32, FP32).passed
    out = ref.to(torch.float32)
    out[0, 0] = float("-inf")
    result = _check(out, ref, torch.float32, FP32)
    assert not result.passed
    assert result.first_indices == [[0, 0]]


def test_value_mismatch_message_is_pinned() -> None:
    ref = torch.full((4, 5), 0.25, dtype=torch.float64)
    out = ref.to(torch.bfloat16)
    out[3, 1] = 0.5
    out[3, 4] = 0.5
    result = _check(out, ref, torch.bfloat16, BF16)
    assert result.failure == (
        "output 0: 2 of 20 elements differ beyond tolerance "
        "(bfloat16: rtol 1.6e-02, atol 1.0e-02 x rms 2.50e-01); "
        "first at [3, 1]: got 0.5, expected 0.25; max abs err 0.25, rel norm 3.16e-01 "
        "(limit 8.0e-03)"
    )
    assert result.first_indices == [[3, 1], [3, 4]]
    assert (result.mismatches, result.elements) == (2, 20)
    assert result.max_abs == 0.25
    assert result.max_rel == 1.0


def test_value_mismatch_reports_count_and_first_indices_in_order() -> None:
    ref = _randn(37, 53, seed=7)
    generator = torch.Generator().manual_seed(8)
    wrong = torch.randperm(ref.numel(), generator=generator)[:41]
    out = ref.to(torch.float32)
    out.view(-1)[wrong] += 1.0
    result = _check(out, ref, torch.float32, FP32)
    expected = [[int(i) // 53, int(i) % 53] for i in wrong.sort().values[:5]]
    assert result.mismatches == 41
    assert result.first_indices == expected
    assert result.failure is not None
    assert result.failure.startswith(f"output 0: 41 of {37 * 53} elements differ beyond tolerance")


def test_error_in_the_norm_alone_fails() -> None:
    ref = _randn(128, 64, seed=9)
    out = ref * (1 + 1.2e-2)  # every element within rtol 1.6e-2, the norm 1.2e-2 above 8e-3
    result = _check(out.to(torch.bfloat16), ref, torch.bfloat16, BF16)
    assert result.mismatches == 0
    assert result.failure is not None
    assert result.failure.startswith("output 0: rel norm 1.2")
    assert "exceeds the limit 8.0e-03 (bfloat16) though every element is within tolerance" in (
        result.failure
    )
    assert len(result.first_indices) == 1


def test_second_output_failure_is_named_and_figures_cover_both() -> None:
    first, second = _randn(8, seed=10), _randn(3, 4, seed=11)
    out = second.to(torch.float32)
    out[2, 3] += 1.0
    result = compare_outputs(
        [first.to(torch.float32), out], [first, second], [torch.float32, torch.float32], FP32
    )
    assert result.failure is not None
    assert result.failure.startswith("output 1: 1 of 12 elements differ")
    assert result.first_indices == [[2, 3]]
    assert result.elements == 20


def test_integer_outputs_compare_exactly() -> None:
    ref = torch.arange(12, dtype=torch.int64).reshape(3, 4)
    assert _check(ref.clone(), ref, torch.int64, BF16).passed
    out = ref.clone()
    out[1, 2] += 1
    result = _check(out, ref, torch.int64, BF16)
    assert result.failure == (
        "output 0: 1 of 12 elements differ (int64 compares exactly); first at [1, 2]: got 7, "
        "expected 6"
    )


@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
def test_scaled_outputs_are_judged_alike(scale: float) -> None:
    # Offsets in units of the output's rms: a fixed atol of 1e-2 would fail every element of the
    # good output at 1e4 and pass every element of the bad one at 1e-4.
    ref = _randn(96, 80, seed=12) * scale
    good = _check((ref + 5e-3 * scale).to(torch.bfloat16), ref, torch.bfloat16, BF16)
    bad = _check((ref + 5e-2 * scale).to(torch.bfloat16), ref, torch.bfloat16, BF16)
    assert good.passed, good.failure
    assert not bad.passed
    assert bad.mismatches > 0.9 * bad.elements
    assert bad.rel_norm == pytest.approx(5e-2, rel=0.1)


def test_all_zero_reference_demands_zeros() -> None:
    ref = torch.zeros(4, 4, dtype=torch.float64)
    assert _check(torch.zeros(4, 4), ref, torch.float32, FP32).passed
    assert not _check(torch.full((4, 4), 1e-20), ref, torch.float32, FP32).passed


def test_default_tolerances_are_returned_without_overrides() -> None:
    assert tolerance_for("float32", {}) == Tolerance(rtol=1e-4, atol=1e-5, norm=1e-5)
    assert tolerance_for("bfloat16", {}) == Tolerance(rtol=1.6e-2, atol=1e-2, norm=8e-3)
    assert tolerance_for("int32", {}) == Tolerance(rtol=0.0, atol=0.0, norm=0.0)


def test_override_applies() -> None:
    looser = Tolerance(rtol=3e-2, atol=2e-2, norm=1e-2)
    assert tolerance_for("bfloat16", {"bfloat16": looser}) == looser
    tighter = Tolerance(rtol=1e-5, atol=1e-6, norm=1e-6)
    assert tolerance_for("float32", {"float32": tighter, "bfloat16": looser}) == tighter


@pytest.mark.parametrize(
    "override",
    [Tolerance(rtol=1e-3, atol=1e-5, norm=1e-5), Tolerance(rtol=1e-4, atol=1e-5, norm=2e-4)],
)
def test_override_loosening_float32_raises(override: Tolerance) -> None:
    with pytest.raises(ValueError, match=r"float32 .* is looser than 1e-04 in rtol or norm"):
        tolerance_for("float32", {"float32": override})


def test_unknown_dtype_and_negative_override_raise() -> None:
    with pytest.raises(ValueError, match="no tolerance for dtype 'float8'"):
        tolerance_for("float8", {})
    with pytest.raises(ValueError, match="must be non-negative"):
        tolerance_for("float16", {"float16": Tolerance(rtol=-1.0, atol=0.0, norm=0.0)})


def test_inputs_unchanged_accepts_untouched_inputs() -> None:
    inputs: list[object] = [_randn(3, 4), 7, [_randn(2, seed=1)]]
    before = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
    before[2] = [_randn(2, seed=1)]
    assert inputs_unchanged(before, inputs) is None


def test_inputs_unchanged_names_the_input_written_in_place() -> None:
    first, second = _randn(3, 4, seed=13), _randn(5, 6, seed=14).to(torch.float32)
    before = [first.clone(), 7, second.clone()]
    second[1, 2] = 0.0
    second[4, 5] = 0.0
    message = inputs_unchanged(before, [first, 7, second])
    assert message is not None
    assert message.startswith(
        "input 2 was modified in place: 2 of 30 elements differ bitwise (first at [1, 2]: "
    )


def test_inputs_unchanged_sees_a_sign_flip_of_zero_and_a_nested_change() -> None:
    zero = torch.zeros(4)
    flipped = zero.clone()
    flipped[3] = -0.0
    assert inputs_unchanged([zero], [flipped]) == (
        "input 0 was modified in place: 1 of 4 elements differ bitwise "
        "(first at [3]: 0.0 then -0.0)"
    )
    nested = inputs_unchanged([(zero, zero)], [(zero, flipped)])
    assert nested is not None
    assert nested.startswith("input 0[1] was modified in place: 1 of 4 elements")


def test_identical_detects_a_one_ulp_difference() -> None:
    out = _randn(16, 16, seed=15).to(torch.float32)
    rerun = out.clone()
    rerun[7, 9] = torch.nextafter(rerun[7, 9], torch.tensor(float("inf")))
    message = identical([out], [rerun])
    assert message is not None
    assert message.startswith(
        "output 0 differs between runs: 1 of 256 elements differ bitwise (first at [7, 9]: "
    )


def test_identical_accepts_bitwise_equal_outputs_with_nans() -> None:
    out = _randn(16, 16, seed=16).to(torch.bfloat16)
    out[3, 4] = float("nan")
    assert identical([out, 5], [out.clone(), 5]) is None
    assert identical([out], [out, out]) == "output count differs between runs: 1 then 2"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_large_cuda_outputs_are_compared_on_the_gpu() -> None:
    generator = torch.Generator(device="cuda").manual_seed(17)
    ref = torch.randn(8192, 8192, generator=generator, device="cuda", dtype=torch.float64)
    out = ref.to(torch.bfloat16)
    assert _check(out, ref, torch.bfloat16, BF16).passed
    out[8000, 123] = 100.0
    out[8100, 7] = -100.0
    result = _check(out, ref, torch.bfloat16, BF16)
    assert result.mismatches == 2
    assert result.first_indices == [[8000, 123], [8100, 7]]
    assert identical([out], [out.clone()]) is None


def test_values_beyond_the_dtype_range_may_be_inf() -> None:
    ref = torch.tensor([70000.0, -70000.0, 65530.0, 1.0], dtype=torch.float64)
    out = torch.tensor([float("inf"), float("-inf"), 65504.0, 1.0], dtype=torch.float16)
    assert compare_outputs([out], [ref], [torch.float16], tolerance_for("float16", {})).passed
    wrong_sign = torch.tensor([float("-inf"), float("-inf"), 65504.0, 1.0], dtype=torch.float16)
    assert not compare_outputs(
        [wrong_sign], [ref], [torch.float16], tolerance_for("float16", {})
    ).passed


def test_values_below_the_dtype_resolution_may_round_to_zero() -> None:
    # GELU of a very negative input: the true value is beneath float16's smallest subnormal.
    ref = torch.tensor([[-4.59e-16]], dtype=torch.float64)
    out = torch.tensor([[-0.0]], dtype=torch.float16)
    assert compare_outputs([out], [ref], [torch.float16], tolerance_for("float16", {})).passed
    wrong = torch.tensor([[-6e-8]], dtype=torch.float16)  # one subnormal step too far
    assert not compare_outputs([wrong], [ref], [torch.float16], tolerance_for("float16", {})).passed


def test_a_subnormal_answer_may_land_one_step_from_the_rounded_reference() -> None:
    # bias+GELU in float16 on inputs far in the negative tail (a secret trial drew them): the
    # float64 answer is 2.07 subnormal steps; a kernel working in float32 stored 3.
    step = 2.0**-24  # float16's subnormal step
    ref = torch.tensor([[-1.23269e-07, -2.5e-07]], dtype=torch.float64)
    tol = tolerance_for("float16", {})
    one_off = torch.tensor([[-3 * step, -5 * step]], dtype=torch.float16)
    assert compare_outputs([one_off], [ref], [torch.float16], tol).passed
    two_off = torch.tensor([[-4 * step, -4 * step]], dtype=torch.float16)
    assert not compare_outputs([two_off], [ref], [torch.float16], tol).passed


def test_a_candidate_may_stray_as_far_as_pytorchs_own_float32_reference() -> None:
    # GELU far in the negative tail: through erf, float32 gives -0 where float64 gives -5.9e-9.
    x = torch.tensor([[-6.0]], dtype=torch.float64)
    exact = torch.nn.functional.gelu(x)
    working = torch.nn.functional.gelu(x.float())
    out = torch.zeros(1, 1, dtype=torch.bfloat16)
    tol = tolerance_for("bfloat16", {})
    assert not compare_outputs([out], [exact], [torch.bfloat16], tol).passed
    assert compare_outputs([out], [exact], [torch.bfloat16], tol, [working]).passed
    # The allowance is the float32 error, not a blank cheque: a far-off value still fails.
    far = torch.full((1, 1), -1e-3, dtype=torch.bfloat16)
    assert not compare_outputs([far], [exact], [torch.bfloat16], tol, [working]).passed


def test_several_outputs_give_the_worst_figures_summed_counts_and_the_first_failure() -> None:
    first, second = _randn(8, seed=12), _randn(3, 4, seed=13)
    a, b = first.to(torch.float32), second.to(torch.float32)
    a[5] += 1.0
    b[0, 1] += 2.0
    b[1, 2] -= 2.0
    one, two = _check(a, first, torch.float32, FP32), _check(b, second, torch.float32, FP32)
    merged = compare_outputs([a, b], [first, second], [torch.float32, torch.float32], FP32)
    assert not merged.passed
    assert (merged.max_abs, merged.max_rel, merged.rel_norm) == (
        max(one.max_abs, two.max_abs),
        max(one.max_rel, two.max_rel),
        max(one.rel_norm, two.rel_norm),
    )
    assert one.max_abs != two.max_abs and one.rel_norm != two.rel_norm
    assert (merged.mismatches, merged.elements) == (3, 20)
    assert merged.first_indices == [[5]]
    assert merged.failure is not None and merged.failure.startswith("output 0: 1 of 8 elements")


def test_no_outputs_expected_and_none_given_passes_with_zero_figures() -> None:
    assert compare_outputs([], [], [], FP32) == Comparison(True)
