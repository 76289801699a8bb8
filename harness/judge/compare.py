"""Candidate outputs judged against a float64 reference, within per-dtype tolerances.

An element passes when |out - ref| <= atol * rms(ref) + rtol * |ref|, and an output passes when
every element does and ||out - ref|| / ||ref|| <= norm. Taking atol relative to the reference's
root mean square judges an output scaled by 1e4 exactly as the same output at scale 1. Where the
reference is NaN or Inf the output must match it exactly. Integer and bool outputs compare exactly.

Every figure is gathered a piece at a time (`harness.judge.pieces`), float64 only for the piece at
hand: the reference's norm in a first pass, which fixes the scale, then the elements in a second.
A reference too large to hold in float64 comes as a `ChunkedReference` that computes its rows
when asked, once per pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from kevolve.harness.judge.chunked import ChunkedReference
from kevolve.harness.judge.pieces import PIECE_ELEMENTS, Piece, pieces
from kevolve.harness.judge.tally import Comparison as Comparison
from kevolve.harness.judge.tally import OutputPiece, Tally
from kevolve.harness.spec.problem import FLOAT32_LOOSEST, Shape, Tolerance

# u below is the unit roundoff of the output dtype. rtol sits a few u above it to allow another
# summation order, fused multiply-adds and fast intrinsics; norm bounds the error summed over the
# output, which independent roundings keep well below the worst element.
_EXACT = Tolerance(rtol=0.0, atol=0.0, norm=0.0)
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    # u = 1.1e-16. Float64 kernels still differ in summation order; 1e-7 allows that, nothing less.
    "float64": Tolerance(rtol=1e-7, atol=1e-9, norm=1e-9),
    # u = 6.0e-8. rtol 1e-4 is a hard ceiling: TF32 (u = 4.9e-4) or half-precision shortcuts exceed
    # it, and norm 1e-5 catches them even where single elements happen to land close.
    "float32": Tolerance(rtol=1e-4, atol=1e-5, norm=1e-5),
    # u = 4.9e-4: about four roundings of slack per element, two in norm.
    "float16": Tolerance(rtol=2e-3, atol=1e-3, norm=1e-3),
    # u = 3.9e-3: an fp32-accumulated bf16 result is off by one rounding or two.
    "bfloat16": Tolerance(rtol=1.6e-2, atol=1e-2, norm=8e-3),
    "int8": _EXACT,
    "int16": _EXACT,
    "int32": _EXACT,
    "int64": _EXACT,
    "bool": _EXACT,
}


def tolerance_for(dtype_name: str, overrides: Mapping[str, Tolerance]) -> Tolerance:
    """The override for this dtype if there is one, else the default; raise if it is not allowed."""
    if dtype_name not in DEFAULT_TOLERANCES:
        known = ", ".join(DEFAULT_TOLERANCES)
        raise ValueError(f"no tolerance for dtype {dtype_name!r}; known dtypes: {known}")
    tol = overrides.get(dtype_name, DEFAULT_TOLERANCES[dtype_name])
    if not all(value >= 0.0 for value in (tol.rtol, tol.atol, tol.norm)):
        raise ValueError(f"tolerance for {dtype_name} must be non-negative numbers, got {tol}")
    if dtype_name == "float32" and max(tol.rtol, tol.norm) > FLOAT32_LOOSEST:
        raise ValueError(
            f"tolerance override for float32 (rtol {tol.rtol:.1e}, norm {tol.norm:.1e}) is looser "
            f"than {FLOAT32_LOOSEST:.0e} in rtol or norm; float32 must not be judged that loosely, "
            "or TF32 and half-precision shortcuts would pass"
        )
    return tol


def compare_outputs(
    outputs: Sequence[object],
    expected: Sequence[torch.Tensor] | ChunkedReference,
    expected_dtypes: Sequence[torch.dtype],
    tol: Tolerance,
    working: Sequence[torch.Tensor] | None = None,
    piece_elements: int = PIECE_ELEMENTS,
) -> Comparison:
    """Judge the candidate's outputs against float64 reference outputs and their required dtypes.

    `working` holds the reference computed in float32 (PyTorch's own working precision): where it
    strays from the float64 answer (GELU's far tail through erf, say), a candidate may stray as
    far, on top of the tolerance. `piece_elements` bounds the elements read at once.
    """
    if isinstance(expected, ChunkedReference):
        shapes = expected.shapes
    else:
        shapes = [tuple(e.shape) for e in expected]
    if len(shapes) != len(expected_dtypes):
        raise ValueError(f"{len(shapes)} reference outputs but {len(expected_dtypes)} dtypes")
    if len(outputs) != len(shapes):
        return Comparison(False, failure=f"output count {len(outputs)}, expected {len(shapes)}")
    if working and len(working) != len(shapes):
        raise ValueError(f"{len(working)} working reference outputs for {len(shapes)} outputs")
    tallies = [
        _start(i, out, shape, dtype, tol, working[i] if working else None)
        for i, (out, shape, dtype) in enumerate(zip(outputs, shapes, expected_dtypes, strict=True))
    ]
    live = {i: t for i, t in enumerate(tallies) if isinstance(t, Tally)}
    if live:
        for i, part in _parts(expected, shapes, piece_elements, live):
            live[i].measure(part)
        for i, part in _parts(expected, shapes, piece_elements, live):
            live[i].judge(part)
    return _merge([t.result() if isinstance(t, Tally) else t for t in tallies])


def _parts(
    expected: Sequence[torch.Tensor] | ChunkedReference,
    shapes: Sequence[Shape],
    piece_elements: int,
    wanted: Mapping[int, object],
) -> Iterator[tuple[int, OutputPiece]]:
    """The wanted outputs' pieces, in row-major order per output."""
    if isinstance(expected, ChunkedReference):
        for start, stop in expected.spans:
            for i, ref in enumerate(expected.rows(start, stop)):
                if i in wanted:
                    inner = math.prod(shapes[i][1:])
                    for piece in pieces(ref.shape, piece_elements):
                        select = _rows_then(piece, start, stop)
                        yield i, OutputPiece(start * inner + piece.offset, piece.flat(ref), select)
        return
    for i, ref in enumerate(expected):
        if i in wanted:
            for piece in pieces(ref.shape, piece_elements):
                yield i, OutputPiece(piece.offset, piece.flat(ref), piece.flat)


def _rows_then(piece: Piece, start: int, stop: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """Takes rows [start, stop) of a whole output, then the piece of those rows."""
    return lambda t: piece.flat(t[start:stop])


def _start(
    i: int,
    out: object,
    shape: Shape,
    dtype: torch.dtype,
    tol: Tolerance,
    working: torch.Tensor | None,
) -> Tally | Comparison:
    """The tally of output i, or its comparison where its kind, shape or dtype already fails."""
    if not isinstance(out, torch.Tensor):
        return Comparison(False, failure=f"output {i} is not a tensor but {type(out).__name__}")
    problem = _tensor_problem(out, shape, dtype)
    if problem is not None:
        return Comparison(False, failure=f"output {i} {problem}")
    if out.numel() == 0:
        return Comparison(True)
    if working is not None and tuple(working.shape) != shape:
        working = None
    return Tally(f"output {i}", out.detach(), shape, tol, working)


def _tensor_problem(out: torch.Tensor, shape: Shape, dtype: torch.dtype) -> str | None:
    """What makes `out` unfit for a value comparison (after "output i"), or None."""
    if type(out) is not torch.Tensor:
        return f"is a {type(out).__name__}, not a plain torch.Tensor"
    if out.layout != torch.strided or out.is_meta:
        return f"is not a dense tensor with data (layout {out.layout}, device {out.device})"
    if tuple(out.shape) != shape:
        return f"has shape {tuple(out.shape)} but the reference has {shape}"
    if out.dtype != dtype:
        return f"has dtype {out.dtype} but must be {dtype}"
    return None


def _merge(parts: list[Comparison]) -> Comparison:
    """One comparison for all outputs: worst figures, summed counts, the first failure."""
    failed = [part for part in parts if not part.passed]
    first = failed[0] if failed else Comparison(True)
    return Comparison(
        passed=not failed,
        max_abs=max((part.max_abs for part in parts), default=0.0),
        max_rel=max((part.max_rel for part in parts), default=0.0),
        rel_norm=max((part.rel_norm for part in parts), default=0.0),
        mismatches=sum(part.mismatches for part in parts),
        elements=sum(part.elements for part in parts),
        first_indices=first.first_indices,
        failure=first.failure,
    )
