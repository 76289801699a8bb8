"""harness.judge.compare a piece at a time: the same verdict, counts, indices and words whether
the outputs are read whole, in pieces of a few elements, or against a reference computed a few
rows at a time (`ChunkedReference`)."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from kevolve.harness.judge.chunked import ChunkedReference, plan_rows
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, Comparison, compare_outputs
from kevolve.harness.spec.problem import Tolerance

BF16 = DEFAULT_TOLERANCES["bfloat16"]
FP16 = DEFAULT_TOLERANCES["float16"]
FP32 = DEFAULT_TOLERANCES["float32"]
# Outputs, float64 references, the dtypes the outputs must have, the tolerance.
Case = tuple[list[object], list[torch.Tensor], list[torch.dtype], Tolerance]


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _rows(refs: list[torch.Tensor], step: int) -> ChunkedReference:
    """The references as a chunked one: rows computed (sliced) `step` at a time."""
    rows = refs[0].shape[0]
    spans = [(a, min(a + step, rows)) for a in range(0, rows, step)]
    return ChunkedReference(
        [tuple(r.shape) for r in refs], spans, lambda a, b: [r[a:b] for r in refs]
    )


def _case_scattered() -> Case:
    ref = _randn(37, 53, seed=7)
    out = ref.to(torch.float32)
    wrong = torch.randperm(ref.numel(), generator=torch.Generator().manual_seed(8))[:41]
    out.view(-1)[wrong] += 1.0
    return [out], [ref], [torch.float32], FP32


def _case_nan_and_inf() -> Case:
    ref = _randn(12, 9, seed=3)
    ref[5, 5] = float("nan")
    out = ref.to(torch.float16)
    out[2, 5:] = float("nan")
    out[9, :3] = float("inf")
    return [out], [ref], [torch.float16], FP16


def _case_inf_only() -> Case:
    ref = _randn(10, 7, seed=5)
    out = ref.to(torch.float16)
    out[1, 0], out[6, 3], out[9, 6] = float("inf"), float("-inf"), float("inf")
    return [out], [ref], [torch.float16], FP16


def _case_norm_only() -> Case:
    ref = _randn(128, 64, seed=9)
    return [(ref * (1 + 1.2e-2)).to(torch.bfloat16)], [ref], [torch.bfloat16], BF16


def _case_two_outputs() -> Case:
    first, second = _randn(8, 3, seed=12), _randn(8, 4, seed=13)
    a, b = first.to(torch.float32), second.to(torch.float32)
    a[5, 1] += 1.0
    b[0, 1] += 2.0
    b[7, 2] -= 2.0
    return [a, b], [first, second], [torch.float32, torch.float32], FP32


def _case_integers() -> Case:
    ref = torch.arange(60, dtype=torch.int64).reshape(12, 5)
    out = ref.clone()
    out[4, 2] += 1
    out[11, 4] -= 3
    return [out], [ref], [torch.int64], BF16


def _case_passing_saturated() -> tuple[
    list[object], list[torch.Tensor], list[torch.dtype], Tolerance
]:
    ref = _randn(9, 4, seed=14) * 1000
    ref[3, 1], ref[7, 2] = 70000.0, -80000.0
    out = ref.to(torch.float16)
    return [out], [ref], [torch.float16], FP16


CASES: dict[
    str, Callable[[], tuple[list[object], list[torch.Tensor], list[torch.dtype], Tolerance]]
] = {
    "scattered": _case_scattered,
    "nan_and_inf": _case_nan_and_inf,
    "inf_only": _case_inf_only,
    "norm_only": _case_norm_only,
    "two_outputs": _case_two_outputs,
    "integers": _case_integers,
    "passing_saturated": _case_passing_saturated,
}


def _same(a: Comparison, b: Comparison) -> None:
    """Equal in every word and count; figures equal up to the order of summing the norms (the
    reference's norm sets the scale that max_rel divides by)."""
    assert (a.passed, a.mismatches, a.elements, a.first_indices, a.failure) == (
        b.passed,
        b.mismatches,
        b.elements,
        b.first_indices,
        b.failure,
    )
    assert a.max_abs == b.max_abs
    assert a.max_rel == pytest.approx(b.max_rel, rel=1e-12)
    assert a.rel_norm == pytest.approx(b.rel_norm, rel=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("piece_elements", [1, 7, 64])
def test_pieces_of_any_size_give_the_whole_comparison(name: str, piece_elements: int) -> None:
    outputs, refs, dtypes, tol = CASES[name]()
    whole = compare_outputs(outputs, refs, dtypes, tol)
    _same(compare_outputs(outputs, refs, dtypes, tol, None, piece_elements), whole)


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("step", [1, 3, 5])
def test_a_reference_in_row_chunks_gives_the_whole_comparison(name: str, step: int) -> None:
    outputs, refs, dtypes, tol = CASES[name]()
    whole = compare_outputs(outputs, refs, dtypes, tol)
    _same(compare_outputs(outputs, _rows(refs, step), dtypes, tol, None, 4), whole)


def test_the_working_reference_allowance_holds_per_chunk() -> None:
    x = torch.linspace(-8.0, 2.0, 60, dtype=torch.float64).reshape(12, 5)
    exact = torch.nn.functional.gelu(x)
    working = torch.nn.functional.gelu(x.float())
    out = working.to(torch.bfloat16)
    tol = DEFAULT_TOLERANCES["bfloat16"]
    whole = compare_outputs([out], [exact], [torch.bfloat16], tol, [working])
    chunked = compare_outputs([out], _rows([exact], 2), [torch.bfloat16], tol, [working], 3)
    assert whole.passed
    _same(chunked, whole)


def test_shape_and_kind_failures_read_the_same_against_a_chunked_reference() -> None:
    ref = _randn(6, 4, seed=1)
    chunked = _rows([ref], 2)
    assert compare_outputs([torch.zeros(6, 3)], chunked, [torch.float32], FP32).failure == (
        "output 0 has shape (6, 3) but the reference has (6, 4)"
    )
    assert compare_outputs([3], chunked, [torch.float32], FP32).failure == (
        "output 0 is not a tensor but int"
    )
    assert compare_outputs([], chunked, [torch.float32], FP32).failure == (
        "output count 0, expected 1"
    )


def test_a_chunk_of_the_wrong_shape_is_an_error_not_a_verdict() -> None:
    ref = _randn(6, 4, seed=2)
    lying = ChunkedReference([(6, 4)], [(0, 3), (3, 6)], lambda a, b: [ref[a : b + 1]])
    with pytest.raises(RuntimeError, match=r"shapes \[\(4, 4\)\] for rows 0:3, not \[\(3, 4\)\]"):
        compare_outputs([ref.float()], lying, [torch.float32], FP32)


def test_plan_rows_cuts_inputs_that_share_the_outputs_leading_dimension() -> None:
    x, w = torch.zeros(100, 8), torch.zeros(8, 8)
    out = torch.zeros(100, 8)
    per_row = 8 * (8 + 8)  # float64 bytes of a row of x and of the output
    plan = plan_rows([x, w, 3], [out], chunk_bytes=10 * per_row)
    assert plan is not None
    assert (plan.rows, plan.step, plan.cut) == (100, 10, (0,))
    assert plan.spans[0] == (0, 10) and plan.spans[-1] == (90, 100) and len(plan.spans) == 10
    sliced = plan.slice([x, w, 3], 20, 30)
    assert sliced[0].shape == (10, 8) and sliced[1] is w and sliced[2] == 3
    assert plan_rows([x], [out], chunk_bytes=math.inf) is None  # type: ignore[arg-type]
    assert plan_rows([x], [torch.zeros(())], chunk_bytes=1) is None  # no leading dimension
    assert plan_rows([w], [out], chunk_bytes=1) is None  # no input has the outputs' rows
    assert plan_rows([x], [out, torch.zeros(7, 8)], chunk_bytes=1) is None  # outputs disagree
