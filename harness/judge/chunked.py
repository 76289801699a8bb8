"""`ChunkedReference`: a float64 reference computed a slice of rows at a time, never whole.

A 6 GiB float32 output is 12 GiB in float64, and so is its input; holding both (and the
comparison's temporaries) fails correct kernels for the harness's own memory. Where a reference
treats the rows of its leading dimension independently (a softmax over rows, a norm per sample,
attention per batch), its float64 answer is computed for a few rows at a time: `RowPlan` says
which inputs are cut and where, and the judge first checks on the first and the last chunk that
cutting changes nothing (`Session.references`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from kevolve.harness.spec.problem import Shape

# Float64 bytes of a chunk's inputs and outputs: below this the reference is computed whole.
CHUNK_BYTES = 2 * 2**30


@dataclass(frozen=True)
class RowPlan:
    """How to cut a case's inputs along their shared leading dimension of `rows` rows."""

    rows: int
    step: int  # rows per chunk
    cut: tuple[int, ...]  # positions of the inputs whose leading dimension is the rows

    @property
    def spans(self) -> list[tuple[int, int]]:
        """The [start, stop) rows of each chunk, in order."""
        return [(a, min(a + self.step, self.rows)) for a in range(0, self.rows, self.step)]

    def slice(self, inputs: Sequence[object], start: int, stop: int) -> list[object]:
        """The inputs with the cut ones narrowed to rows [start, stop) (views, not copies)."""
        out = list(inputs)
        for i in self.cut:
            t = out[i]
            assert isinstance(t, torch.Tensor)
            out[i] = t[start:stop]
        return out


@dataclass(frozen=True)
class ChunkedReference:
    """The float64 reference outputs of one set of inputs, handed out rows [start, stop) at a
    time by `compute`; `shapes` are the whole outputs' shapes."""

    shapes: list[Shape]
    spans: list[tuple[int, int]]
    compute: Callable[[int, int], list[torch.Tensor]]

    def rows(self, start: int, stop: int) -> list[torch.Tensor]:
        """The outputs' rows [start, stop); raise if the reference gave another shape."""
        chunk = self.compute(start, stop)
        want = [(stop - start, *shape[1:]) for shape in self.shapes]
        got = [tuple(t.shape) for t in chunk]
        if got != want:
            raise RuntimeError(
                f"the reference gave shapes {got} for rows {start}:{stop}, not {want}"
            )
        return chunk


def plan_rows(
    inputs: Sequence[object], outputs: Sequence[torch.Tensor], chunk_bytes: int = CHUNK_BYTES
) -> RowPlan | None:
    """A plan to cut the inputs in chunks of rows, or None where the whole fits `chunk_bytes` in
    float64 or there is no leading dimension that every output and some input share."""
    if not outputs or any(t.dim() == 0 for t in outputs):
        return None
    rows = outputs[0].shape[0]
    if rows < 2 or any(t.shape[0] != rows for t in outputs):
        return None
    cut = [
        (i, v)
        for i, v in enumerate(inputs)
        if isinstance(v, torch.Tensor) and v.dim() > 0 and v.shape[0] == rows
    ]
    if not cut:
        return None
    tensors = [t for _, t in cut] + list(outputs)
    per_row = 8 * sum(math.prod(t.shape[1:]) for t in tensors)
    if per_row * rows <= chunk_bytes:
        return None
    step = max(1, chunk_bytes // max(per_row, 1))
    return RowPlan(rows=rows, step=step, cut=tuple(i for i, _ in cut))
