"""harness.judge.pieces at its edges: the cases mutation testing showed no other test pinned (the
piece of a 0-d tensor, rows of exactly the limit)."""

from __future__ import annotations

import torch
from kevolve.harness.judge.pieces import Piece, pieces


def test_a_0d_tensor_is_one_piece_indexed_by_the_empty_tuple() -> None:
    assert list(pieces((), 1)) == [Piece((), 0, 1)]
    scalar = torch.tensor(2.5)
    assert Piece((), 0, 1).flat(scalar).tolist() == [2.5]


def test_rows_of_exactly_the_limit_come_whole() -> None:
    """A row that fits the limit, with none to spare, is a piece of its own: a slice of the
    leading dimension, not an index into it and a slice of the rest."""
    assert list(pieces((3, 4), 4)) == [
        Piece((slice(0, 1),), 0, 4),
        Piece((slice(1, 2),), 4, 4),
        Piece((slice(2, 3),), 8, 4),
    ]
    assert list(pieces((2,), 1)) == [Piece((slice(0, 1),), 0, 1), Piece((slice(1, 2),), 1, 1)]
