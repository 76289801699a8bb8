"""`Piece`: a row-major slice of a tensor's elements, so large tensors are read a bounded part at
a time.

A piece is an index that selects the same elements of any tensor of one shape, whatever its
strides: whole rows of the leading dimension where they fit the limit, else one index of it and
pieces of the rest. Flattening a piece copies at most `limit` elements.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

# Elements per piece by default: 2**24 elements make float64 temporaries of 128 MiB each.
PIECE_ELEMENTS = 1 << 24


@dataclass(frozen=True)
class Piece:
    """An index into a tensor, the row-major position of its first element, its element count."""

    index: tuple[int | slice, ...]
    offset: int
    count: int

    def flat(self, t: torch.Tensor) -> torch.Tensor:
        """The piece's elements of `t` (of the shape the piece was cut from) as one row."""
        return t[self.index].reshape(-1)


def pieces(shape: Sequence[int], limit: int = PIECE_ELEMENTS) -> Iterator[Piece]:
    """Pieces of at most `limit` elements covering a tensor of `shape` in row-major order."""
    if limit < 1:
        raise ValueError(f"a piece holds at least one element, not {limit}")
    yield from _cut(tuple(shape), max(1, limit), 0)


def _cut(shape: tuple[int, ...], limit: int, offset: int) -> Iterator[Piece]:
    """Pieces of a tensor of `shape` whose first element sits at row-major `offset`."""
    if not shape:
        yield Piece((), offset, 1)
        return
    inner = math.prod(shape[1:])
    if inner == 0 or shape[0] == 0:
        return
    if inner <= limit:
        step = limit // inner
        for start in range(0, shape[0], step):
            stop = min(start + step, shape[0])
            yield Piece((slice(start, stop),), offset + start * inner, (stop - start) * inner)
        return
    for row in range(shape[0]):
        for part in _cut(shape[1:], limit, offset + row * inner):
            yield Piece((row, *part.index), part.offset, part.count)


def unravel(position: int, shape: Sequence[int]) -> list[int]:
    """The multi-dimensional index of a row-major flat position."""
    index: list[int] = []
    for size in reversed(shape):
        position, rest = divmod(position, size)
        index.append(rest)
    return index[::-1]


def first_true(flat: torch.Tensor, limit: int) -> list[int]:
    """Positions of the first `limit` True values of a 1-D bool tensor, by repeated argmax."""
    bits = flat.view(torch.uint8)
    found: list[int] = []
    start = 0
    while len(found) < limit and start < bits.numel():
        position = start + int(bits[start:].argmax().item())
        if not bits[position].item():
            break
        found.append(position)
        start = position + 1
    return found
