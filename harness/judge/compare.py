"""Candidate outputs judged against a float64 reference, within per-dtype tolerances.

An element passes when |out - ref| <= atol * rms(ref) + rtol * |ref|, and an output passes when
every element does and ||out - ref|| / ||ref|| <= norm. Taking atol relative to the reference's
root mean square judges an output scaled by 1e4 exactly as the same output at scale 1. Where the
reference is NaN or Inf the output must match it exactly. Integer and bool outputs compare exactly.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from kevolve.harness.spec.problem import Tolerance

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
FLOAT32_LOOSEST = 1e-4  # no override may let float32 rtol or norm exceed this

# Floor for rms and norms (the smallest normal float32): an all-zero reference demands zeros.
_TINY = torch.finfo(torch.float32).tiny
_MAX_INDICES = 5


@dataclass
class Comparison:
    """Outcome of comparing all outputs; figures are the worst (or summed) over the outputs.

    max_rel is the largest err / max(|ref|, rms(ref)): the true relative error wherever |ref| is at
    least the output's rms, and error relative to the rms for elements near zero, so that values
    that happen to be tiny do not dominate it. first_indices belong to the first failing output.
    """

    passed: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    rel_norm: float = 0.0
    mismatches: int = 0
    elements: int = 0
    first_indices: list[list[int]] = field(default_factory=list)
    failure: str | None = None


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
    expected: Sequence[torch.Tensor],
    expected_dtypes: Sequence[torch.dtype],
    tol: Tolerance,
    working: Sequence[torch.Tensor] | None = None,
) -> Comparison:
    """Judge the candidate's outputs against float64 reference outputs and their required dtypes.

    `working` holds the reference computed in float32 (PyTorch's own working precision): where it
    strays from the float64 answer (GELU's far tail through erf, say), a candidate may stray as
    far, on top of the tolerance.
    """
    if len(expected) != len(expected_dtypes):
        raise ValueError(f"{len(expected)} reference outputs but {len(expected_dtypes)} dtypes")
    if len(outputs) != len(expected):
        return Comparison(False, failure=f"output count {len(outputs)}, expected {len(expected)}")
    noise = [_noise(w, e) for w, e in zip(working, expected, strict=True)] if working else None
    cases = zip(outputs, expected, expected_dtypes, strict=True)
    return _merge(
        [_compare_one(i, *case, tol, noise[i] if noise else None) for i, case in enumerate(cases)]
    )


def _noise(working: torch.Tensor, exact: torch.Tensor) -> torch.Tensor | None:
    """|float32 reference - float64 reference|, zero where either is not finite."""
    if working.shape != exact.shape:
        return None
    diff = (working.detach().to(exact.device, torch.float64) - exact.detach()).abs()
    return diff.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def _compare_one(
    i: int,
    out: object,
    ref: torch.Tensor,
    dtype: torch.dtype,
    tol: Tolerance,
    noise: torch.Tensor | None = None,
) -> Comparison:
    """The comparison of output i: its kind, shape and dtype first, then its values."""
    if not isinstance(out, torch.Tensor):
        return Comparison(False, failure=f"output {i} is not a tensor but {type(out).__name__}")
    problem = _tensor_problem(out, ref, dtype)
    if problem is not None:
        return Comparison(False, failure=f"output {i} {problem}")
    out, ref = _saturate(out.detach().to(ref.device), ref, dtype)
    return _compare_values(f"output {i}", out, ref, tol, noise)


def _saturate(
    out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp both sides to the dtype's range where the true value lies beyond it.

    A float16 result of large sums can exceed 65504 even in a perfect kernel, which then stores
    Inf or the largest finite value depending on its rounding; either is right, the sign is not.
    """
    ref = ref.detach()
    if not dtype.is_floating_point or dtype == torch.float64:
        return out, ref
    limit = torch.finfo(dtype).max
    over = torch.isfinite(ref) & (ref.abs() > limit)
    if not bool(over.any()):
        return out, ref
    out64 = out.to(torch.float64)
    clamped_out = torch.where(over, out64.clamp(-limit, limit), out64)
    return clamped_out.to(dtype), torch.where(over, ref.clamp(-limit, limit), ref)


def _tensor_problem(out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype) -> str | None:
    """What makes `out` unfit for a value comparison (after "output i"), or None."""
    if type(out) is not torch.Tensor:
        return f"is a {type(out).__name__}, not a plain torch.Tensor"
    if out.layout != torch.strided or out.is_meta:
        return f"is not a dense tensor with data (layout {out.layout}, device {out.device})"
    if out.shape != ref.shape:
        return f"has shape {tuple(out.shape)} but the reference has {tuple(ref.shape)}"
    if out.dtype != dtype:
        return f"has dtype {out.dtype} but must be {dtype}"
    return None


def _compare_values(
    name: str, out: torch.Tensor, ref: torch.Tensor, tol: Tolerance, noise: torch.Tensor | None
) -> Comparison:
    """Element and norm checks of one output against its reference (same shape, on one device)."""
    if out.numel() == 0:
        return Comparison(True)
    exact = not out.dtype.is_floating_point
    out64, ref64 = out.to(torch.float64), ref.to(torch.float64)
    finite = torch.isfinite(ref64)
    ref_finite = torch.where(finite, ref64, 0.0)
    ref_norm = torch.linalg.vector_norm(ref_finite).item()
    scale = max(ref_norm / math.sqrt(max(int(finite.sum().item()), 1)), _TINY)
    err = _element_errors(out64, ref64)
    rounding = _rounding_error(ref_finite, out.dtype)
    if noise is not None:
        rounding = rounding + noise
    bad = out.ne(ref) if exact else err > tol.atol * scale + tol.rtol * ref_finite.abs() + rounding
    result = Comparison(
        passed=True,
        max_abs=err.max().item(),
        max_rel=(err / ref_finite.abs().clamp_min(scale)).max().item(),
        rel_norm=torch.linalg.vector_norm(err).item() / max(ref_norm, _TINY),
        mismatches=int(bad.sum().item()),
        elements=out.numel(),
    )
    if exact:
        _judge_exact(name, out, ref, bad, result)
    else:
        slack = torch.linalg.vector_norm(rounding).item() / max(ref_norm, _TINY)
        _judge_close(name, out, ref, bad, err, result, tol, scale, slack)
    return result


def _rounding_error(ref: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """|ref - ref rounded to dtype|: what even a correctly rounded kernel must be allowed.

    Without it, a value below the dtype's smallest subnormal (GELU of a very negative input in
    float16) fails every candidate, since -0 is the best the dtype can store.
    """
    if not dtype.is_floating_point or dtype == torch.float64:
        return torch.zeros_like(ref)
    error = (ref - ref.to(dtype).to(torch.float64)).abs().nan_to_num(posinf=0.0, neginf=0.0)
    # Among the subnormals one step is a large share of the value (half of it at two steps): a
    # kernel that works in float32, as it must, may land one step from the rounded answer.
    # Beneath one step only zero is right.
    info = torch.finfo(dtype)
    step = info.smallest_normal * info.eps
    subnormal = (ref.abs() >= step) & (ref.abs() < info.smallest_normal)
    return torch.where(subnormal, error + step, error)


def _element_errors(out64: torch.Tensor, ref64: torch.Tensor) -> torch.Tensor:
    """|out - ref| per element: 0 where equal or both NaN, Inf where a NaN is unmatched."""
    same = out64.eq(ref64) | (out64.isnan() & ref64.isnan())
    err = torch.where(same, 0.0, (out64 - ref64).abs())
    return err.nan_to_num(nan=math.inf, posinf=math.inf)


def _judge_exact(
    name: str, out: torch.Tensor, ref: torch.Tensor, bad: torch.Tensor, result: Comparison
) -> None:
    """Fill in the verdict of an output that must equal its reference exactly."""
    if result.mismatches == 0:
        return
    result.passed = False
    result.first_indices = first_indices(bad)
    at = result.first_indices[0]
    result.failure = (
        f"{name}: {result.mismatches} of {result.elements} elements differ "
        f"({_dtype_name(out.dtype)} compares exactly); first at {at}: "
        f"got {element(out, at)}, expected {element(ref, at)}"
    )


def _judge_close(
    name: str,
    out: torch.Tensor,
    ref: torch.Tensor,
    bad: torch.Tensor,
    err: torch.Tensor,
    result: Comparison,
    tol: Tolerance,
    scale: float,
    norm_slack: float,
) -> None:
    """Fill in the verdict of a floating-point output: NaN, Inf, elements, then the norm."""
    unmatched_nan = out.isnan() & ~ref.isnan()
    unmatched_inf = out.isinf() & ref.isfinite()  # an Inf where the reference is NaN fails below
    for label, wrong in (("NaN", unmatched_nan), ("Inf", unmatched_inf)):
        count = int(wrong.sum().item())
        if count:
            result.first_indices = first_indices(wrong)
            at = result.first_indices[0]
            result.passed = False
            result.failure = f"{name} holds {count} {label} values (first at {at})"
            return
    if result.mismatches:
        result.first_indices = first_indices(bad)
        result.failure = _mismatch_text(name, out, ref, result, tol, scale)
    elif result.rel_norm > tol.norm + norm_slack:
        result.first_indices = [_unravel(int(err.argmax().item()), err.shape)]
        result.failure = _norm_text(name, out, ref, result, tol)
    result.passed = result.failure is None


def _mismatch_text(
    name: str, out: torch.Tensor, ref: torch.Tensor, r: Comparison, tol: Tolerance, scale: float
) -> str:
    """Words for elements beyond tolerance: how many, the first, and the worst figures."""
    at = r.first_indices[0]
    return (
        f"{name}: {r.mismatches} of {r.elements} elements differ beyond tolerance "
        f"({_dtype_name(out.dtype)}: rtol {tol.rtol:.1e}, atol {tol.atol:.1e} x rms {scale:.2e}); "
        f"first at {at}: got {element(out, at):.6g}, expected {element(ref, at):.6g}; "
        f"max abs err {r.max_abs:.3g}, rel norm {r.rel_norm:.2e} (limit {tol.norm:.1e})"
    )


def _norm_text(
    name: str, out: torch.Tensor, ref: torch.Tensor, r: Comparison, tol: Tolerance
) -> str:
    """Words for an output whose elements pass but whose error adds up to too much."""
    at = r.first_indices[0]
    return (
        f"{name}: rel norm {r.rel_norm:.2e} exceeds the limit {tol.norm:.1e} "
        f"({_dtype_name(out.dtype)}) though every element is within tolerance; "
        f"largest error at {at}: got {element(out, at):.6g}, expected {element(ref, at):.6g}; "
        f"max abs err {r.max_abs:.3g}"
    )


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


def first_indices(mask: torch.Tensor, limit: int = _MAX_INDICES) -> list[list[int]]:
    """The first `limit` True positions of `mask` in row-major order, by repeated argmax."""
    flat = mask.reshape(-1).view(torch.uint8)
    found: list[int] = []
    start = 0
    while len(found) < limit and start < flat.numel():
        position = start + int(flat[start:].argmax().item())
        if not flat[position].item():
            break
        found.append(position)
        start = position + 1
    return [_unravel(position, mask.shape) for position in found]


def _unravel(position: int, shape: Sequence[int]) -> list[int]:
    """The multi-dimensional index of a row-major flat position."""
    index: list[int] = []
    for size in reversed(shape):
        position, rest = divmod(position, size)
        index.append(rest)
    return index[::-1]


def element(t: torch.Tensor, at: list[int]) -> float | int | bool:
    """The element of `t` at a multi-dimensional index, as a Python number."""
    value: float | int | bool = t[tuple(at)].item()
    return value


def _dtype_name(dtype: torch.dtype) -> str:
    """The dtype's name without "torch.", e.g. bfloat16."""
    return str(dtype).removeprefix("torch.")
