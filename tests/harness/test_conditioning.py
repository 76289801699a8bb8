"""Tests for `harness.judge.conditioning`: a failed comparison judged again against PyTorch's own
float32 error on the same inputs (real comparisons; the judge end to end on the CPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, compare_outputs
from kevolve.harness.judge.conditioning import FACTOR, second_opinion
from kevolve.harness.judge.verdict import Judge
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Tolerance

from tests.harness.cpu_judge import cpu_request

FP32 = DEFAULT_TOLERANCES["float32"]
SHAPE = (64, 512)


def _answers(noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A float64 answer and a float32 one off by `noise` relative, drawn from `seed`."""
    gen = torch.Generator().manual_seed(0)
    exact = torch.randn(SHAPE, generator=gen, dtype=torch.float64)
    wobble = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return exact, (exact * (1 + noise * wobble)).float()


def _judged(candidate: torch.Tensor, exact: torch.Tensor, working: torch.Tensor):  # type: ignore[no-untyped-def]
    failed = compare_outputs([candidate], [exact], [torch.float32], FP32, [working])
    return failed, second_opinion(failed, [exact], [torch.float32], FP32, [working])


def test_a_candidate_as_far_off_as_pytorch_where_pytorch_misses_too_passes() -> None:
    exact, pytorch = _answers(3e-4, seed=1)  # PyTorch's own float32 answer misses 1e-5 in norm
    _, candidate = _answers(3e-4, seed=2)  # another order of summation: other elements err
    failed, opinion = _judged(candidate, exact, pytorch)
    assert not failed.passed and failed.mismatches > 0  # the per-element allowance does not fit
    assert opinion is not None and opinion.passed
    assert not opinion.pytorch.passed and opinion.pytorch.rel_norm > FP32.norm
    note = opinion.note("shape as given float32, trial 3 (row_scaled inputs)", failed)
    assert note.startswith("shape as given float32, trial 3 (row_scaled inputs): these inputs")
    assert f"held to {FACTOR:g}x PyTorch's errors" in note


def test_a_candidate_ten_times_pytorchs_error_passes_where_pytorch_is_within_tolerance() -> None:
    # Attention over rows scaled up to 64x: PyTorch at 1.5e-6 in norm, within 1e-5; a plain loop
    # over each dot product 9x that, past the tolerance.
    exact, pytorch = _answers(1.5e-6, seed=1)
    _, candidate = _answers(1.5e-5, seed=2)
    failed, opinion = _judged(candidate, exact, pytorch)
    assert not failed.passed and failed.rel_norm > FP32.norm
    assert opinion is not None and opinion.pytorch.passed and opinion.passed
    assert opinion.norm_limit == pytest.approx(FACTOR * opinion.pytorch.rel_norm)


def test_a_candidate_far_worse_than_pytorch_still_fails() -> None:
    exact, pytorch = _answers(1e-6, seed=1)
    _, candidate = _answers(1e-6 * FACTOR * 3, seed=2)  # a TF32-like error on top
    failed, opinion = _judged(candidate, exact, pytorch)
    assert not failed.passed
    assert opinion is not None and not opinion.passed


def test_one_wild_element_fails_though_the_norm_is_within() -> None:
    exact, pytorch = _answers(3e-4, seed=1)
    _, candidate = _answers(3e-4, seed=2)
    candidate[5, 7] += 2.0  # far beyond any rounding: a wrong value, not a worse one
    failed, opinion = _judged(candidate, exact, pytorch)
    assert opinion is not None and failed.rel_norm <= opinion.norm_limit
    assert failed.max_abs > opinion.abs_limit and not opinion.passed


def test_where_float32_is_not_strained_the_failure_stands() -> None:
    # Attention on well-conditioned inputs: PyTorch at 1.4e-7 in norm, a TF32 kernel about 100x
    # that, 1.5x the tolerance. Held to PyTorch's error it would pass.
    exact, pytorch = _answers(1.4e-7, seed=1)
    _, candidate = _answers(1.5e-5, seed=2)
    failed, opinion = _judged(candidate, exact, pytorch)
    assert not failed.passed and opinion is None


def test_float32_is_strained_from_one_thirty_second_of_the_tolerance_norm() -> None:
    tol = Tolerance(rtol=2.0**-12, atol=0.0, norm=2.0**-12)
    exact, strained = _flat(2.0**-17)
    _, candidate = _flat(2.0**-11)
    failed = compare_outputs([candidate], [exact], [torch.float32], tol, [strained])
    opinion = second_opinion(failed, [exact], [torch.float32], tol, [strained])
    assert not failed.passed and opinion is not None and opinion.passed
    _, calm = _flat(2.0**-18)
    failed = compare_outputs([candidate], [exact], [torch.float32], tol, [calm])
    assert not failed.passed
    assert second_opinion(failed, [exact], [torch.float32], tol, [calm]) is None


@pytest.mark.parametrize("bad", ["nan", "shape", "passed"])
def test_no_second_opinion_on_what_is_no_matter_of_degree(bad: str) -> None:
    exact, pytorch = _answers(3e-4, seed=1)
    _, candidate = _answers(3e-4, seed=2)
    if bad == "nan":
        candidate[0, 0] = float("nan")
    elif bad == "shape":
        candidate = candidate[:, :-1]
    else:
        candidate = exact.float()
    _, opinion = _judged(candidate, exact, pytorch)
    assert opinion is None


def test_working_answers_that_do_not_match_the_outputs_give_no_second_opinion() -> None:
    exact, pytorch = _answers(3e-4, seed=1)
    _, candidate = _answers(3e-4, seed=2)
    failed, _ = _judged(candidate, exact, pytorch)
    assert second_opinion(failed, [exact], [torch.float32], FP32, [pytorch, pytorch]) is None


def test_no_second_opinion_for_outputs_more_precise_than_float32_or_not_floating() -> None:
    fp64 = DEFAULT_TOLERANCES["float64"]
    exact, pytorch = _answers(3e-4, seed=1)
    _, candidate = _answers(3e-4, seed=2)
    failed = compare_outputs([candidate.double()], [exact], [torch.float64], fp64, [pytorch])
    assert not failed.passed
    assert second_opinion(failed, [exact], [torch.float64], fp64, [pytorch]) is None
    counts = torch.arange(6).reshape(2, 3)
    strained = counts.float() + 0.5  # a working answer as far off as the wrong counts
    wrong = compare_outputs([counts + 1], [counts], [torch.int64], fp64, [strained])
    assert not wrong.passed
    assert second_opinion(wrong, [counts], [torch.int64], fp64, [strained]) is None


def test_a_half_precision_output_is_held_to_pytorchs_float32_error_before_the_cast() -> None:
    bf16 = DEFAULT_TOLERANCES["bfloat16"]
    exact, pytorch = _answers(3e-2, seed=1)  # beyond even bfloat16's tolerance
    _, candidate = _answers(3e-2, seed=2)
    failed = compare_outputs([candidate.bfloat16()], [exact], [torch.bfloat16], bf16, [pytorch])
    opinion = second_opinion(failed, [exact], [torch.bfloat16], bf16, [pytorch])
    assert not failed.passed and opinion is not None and opinion.passed
    # Where float32 is nearly exact, a bfloat16 output's own rounding strains nothing.
    exact, pytorch = _answers(1e-8, seed=1)
    _, candidate = _answers(2e-2, seed=2)
    failed = compare_outputs([candidate.bfloat16()], [exact], [torch.bfloat16], bf16, [pytorch])
    assert not failed.passed
    assert second_opinion(failed, [exact], [torch.bfloat16], bf16, [pytorch]) is None


def _flat(error: float, shape: tuple[int, int] = (256, 256)) -> tuple[torch.Tensor, torch.Tensor]:
    """Ones in float64, and ones + `error` in float32 (2**16 elements: every norm exact)."""
    exact = torch.ones(shape, dtype=torch.float64)
    return exact, (exact + error).float()


def test_errors_exactly_factor_times_pytorchs_pass_and_a_step_more_fails() -> None:
    exact, pytorch = _flat(2.0**-16)  # FACTOR x 2**-16 = 2**-9 < its square root, 2**-8
    _, candidate = _flat(2.0**-9)
    failed, opinion = _judged(candidate, exact, pytorch)
    assert opinion is not None and opinion.norm_limit == 2.0**-9 == opinion.abs_limit
    assert failed.rel_norm == 2.0**-9 == failed.max_abs
    assert not failed.passed and opinion.passed
    _, beyond = _flat(2.0**-9 + 2.0**-16)
    failed, opinion = _judged(beyond, exact, pytorch)
    assert opinion is not None and not opinion.passed


def test_the_norm_is_capped_at_the_square_root_of_pytorchs() -> None:
    exact, pytorch = _flat(2.0**-10)  # FACTOR x 2**-10 = 2**-3 > its square root, 2**-5
    _, candidate = _flat(2.0**-5)
    failed, opinion = _judged(candidate, exact, pytorch)
    assert opinion is not None and opinion.norm_limit == 2.0**-5 and opinion.passed
    _, beyond = _flat(2.0**-5 + 2.0**-10)  # its largest error still within 2**-3
    failed, opinion = _judged(beyond, exact, pytorch)
    assert failed.max_abs <= opinion.abs_limit  # type: ignore[union-attr]
    assert opinion is not None and not opinion.passed


def test_an_error_norm_beyond_the_limit_fails_though_the_largest_error_is_within() -> None:
    exact, pytorch = _flat(2.0**-16)
    pytorch[0, 0] += 2.0**-10  # one large error: PyTorch's largest, hardly its norm
    _, candidate = _flat(2.0**-7)  # far beyond FACTOR x PyTorch's typical error everywhere
    failed, opinion = _judged(candidate, exact, pytorch)
    assert opinion is not None and failed.max_abs <= opinion.abs_limit
    assert failed.rel_norm > opinion.norm_limit and not opinion.passed


# A sum whose terms cancel: every float32 answer is off by percents on every trial.
PROBLEM = '''"""A sum of x + 1e4 over each row, less 1e4 per term: float32 loses the small parts."""

import torch
import torch.nn as nn

batch_size = 16
dim = 4096


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sum(x + 10000.0, dim=-1) - 10000.0 * x.shape[-1]


def get_inputs() -> list[torch.Tensor]:
    return [torch.randn(batch_size, dim)]


def get_init_inputs() -> list[object]:
    return []
'''

CANDIDATE = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _cancel(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr, WIDE: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=0.0)
        term = tl.where(cols < n_cols, x + 10000.0, 0.0)
        if not WIDE:  # the shortcut: terms kept in half precision
            term = term.to(tl.float16).to(tl.float32)
        acc += term
    tl.store(y_ptr + row, tl.sum(acc, axis=0) - 10000.0 * n_cols)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.empty(x.shape[0], device=x.device, dtype=torch.float32)
        _cancel[(x.shape[0],)](x, y, x.shape[1], BLOCK=1024, WIDE=@WIDE@)
        return y
"""


def _judge(tmp_path: Path, wide: bool) -> Evaluation:
    problem_path = tmp_path / "cancel.py"
    problem_path.write_text(PROBLEM)
    [problem] = load_problems(problem_path)
    candidate = tmp_path / "candidate.py"
    candidate.write_text(CANDIDATE.replace("@WIDE@", str(wide)))
    return Judge(cpu_request(problem, candidate, 3)).run()


def test_the_judge_passes_a_correct_kernel_of_an_op_float32_cannot_get_right(
    tmp_path: Path,
) -> None:
    ev = _judge(tmp_path, wide=True)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    notes = [n for n in ev.notes if "these inputs leave float32 little precision" in n]
    assert notes, ev.notes
    assert all(c.passed and c.failure is None for c in ev.checks)


def test_the_judge_still_fails_a_half_precision_shortcut_there(tmp_path: Path) -> None:
    ev = _judge(tmp_path, wide=False)
    assert ev.verdict is Verdict.INCORRECT, ev.reason
    assert "differ beyond tolerance" in ev.reason
