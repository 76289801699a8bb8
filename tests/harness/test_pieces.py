"""Tests of harness.judge.pieces: row-major pieces of bounded size, for any strides."""

from __future__ import annotations

import math

import pytest
import torch
from kevolve.harness.judge.pieces import first_true, pieces, unravel


@pytest.mark.parametrize(
    ("shape", "limit"),
    [((7, 5), 10), ((7, 5), 3), ((2, 3, 4), 5), ((2, 3, 4), 100), ((9,), 4), ((), 1), ((3, 1), 1)],
)
def test_pieces_cover_every_element_once_in_row_major_order(
    shape: tuple[int, ...], limit: int
) -> None:
    t = torch.arange(math.prod(shape)).reshape(shape)
    seen: list[int] = []
    for piece in pieces(shape, limit):
        flat = piece.flat(t)
        assert flat.numel() == piece.count <= limit
        assert flat.tolist() == list(range(piece.offset, piece.offset + piece.count))
        seen += flat.tolist()
    assert seen == list(range(math.prod(shape)))


def test_a_piece_of_a_transposed_tensor_holds_the_same_elements_as_of_a_contiguous_one() -> None:
    base = torch.arange(60.0).reshape(6, 10)
    transposed = base.t()  # (10, 6), not contiguous
    contiguous = transposed.contiguous()
    for piece in pieces(transposed.shape, 4):
        assert torch.equal(piece.flat(transposed), piece.flat(contiguous))


def test_empty_shapes_have_no_pieces_and_a_zero_limit_is_an_error() -> None:
    assert list(pieces((0, 5), 3)) == []
    assert list(pieces((4, 0), 3)) == []
    with pytest.raises(ValueError, match="at least one element"):
        list(pieces((3,), 0))


def test_unravel_and_first_true() -> None:
    assert unravel(23, (2, 3, 4)) == [1, 2, 3]
    mask = torch.tensor([False, True, False, True, True])
    assert first_true(mask, 2) == [1, 3]
    assert first_true(mask, 9) == [1, 3, 4]
    assert first_true(torch.zeros(4, dtype=torch.bool), 3) == []
