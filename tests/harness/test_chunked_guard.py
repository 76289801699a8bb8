"""harness.judge.chunked at its edges: the cases mutation testing showed no other test pinned
(two rows, vectors and scalars among the inputs, a budget met exactly, rows larger than a chunk)."""

from __future__ import annotations

import torch
from kevolve.harness.judge.chunked import plan_rows

ROW = 8 * (8 + 8)  # float64 bytes of a row of a (rows, 8) input and a (rows, 8) output


def test_two_rows_are_enough_to_cut() -> None:
    x, out = torch.zeros(2, 8), torch.zeros(2, 8)
    plan = plan_rows([x], [out], chunk_bytes=ROW)
    assert plan is not None and plan.spans == [(0, 1), (1, 2)]
    assert plan_rows([torch.zeros(1, 8)], [torch.zeros(1, 8)], chunk_bytes=1) is None  # one row


def test_a_vector_per_row_is_cut_and_a_scalar_tensor_is_not() -> None:
    """A 1-D input as long as the rows (a label per row) holds one value per row; a 0-d tensor
    has no rows and goes whole to every chunk."""
    x, labels, scale = torch.zeros(6, 8), torch.arange(6), torch.tensor(2.0)
    out = torch.zeros(6, 8)
    plan = plan_rows([x, labels, scale], [out], chunk_bytes=3 * (ROW + 8))
    assert plan is not None
    assert (plan.cut, plan.step) == ((0, 1), 3)
    sliced = plan.slice([x, labels, scale], 3, 6)
    assert isinstance(sliced[1], torch.Tensor) and sliced[1].tolist() == [3, 4, 5]
    assert sliced[2] is scale


def test_a_reference_that_fits_the_budget_exactly_is_not_cut() -> None:
    x, out = torch.zeros(10, 8), torch.zeros(10, 8)
    assert plan_rows([x], [out], chunk_bytes=10 * ROW) is None
    plan = plan_rows([x], [out], chunk_bytes=10 * ROW - 1)
    assert plan is not None and plan.step == 9


def test_rows_larger_than_a_chunk_come_one_at_a_time() -> None:
    x, out = torch.zeros(4, 8), torch.zeros(4, 8)
    plan = plan_rows([x], [out], chunk_bytes=ROW // 2)
    assert plan is not None and plan.step == 1 and len(plan.spans) == 4
