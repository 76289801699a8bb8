"""`Tally`: one output's comparison with its float64 reference, gathered a piece at a time.

The first pass over an output's pieces sums the reference's norm (which fixes the scale that
atol is relative to); the second judges each piece's elements and keeps the counts, the first
wrong positions with their values, the worst error and the norms. Only the piece at hand is ever
held in float64. `harness.judge.compare` feeds the pieces and merges the outputs' results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from kevolve.harness.judge.pieces import first_true, unravel
from kevolve.harness.spec.problem import Shape, Tolerance

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


@dataclass(frozen=True)
class OutputPiece:
    """A piece of one output: where it starts in the whole output (row-major), the reference's
    elements there, and how to take the same elements of a whole output (candidate, working)."""

    offset: int
    ref: torch.Tensor
    select: Callable[[torch.Tensor], torch.Tensor]


def _noise(working: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|float32 reference - float64 reference|, zero where either is not finite."""
    diff = (working.detach().to(exact.device, torch.float64) - exact.detach()).abs()
    return diff.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def _over(ref: torch.Tensor, dtype: torch.dtype) -> torch.Tensor | None:
    """Where the true value lies beyond the dtype's range (None: nowhere, or no such range)."""
    if not dtype.is_floating_point or dtype == torch.float64:
        return None
    over = torch.isfinite(ref) & (ref.abs() > torch.finfo(dtype).max)
    return over if bool(over.any()) else None


def _saturate(
    out: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clamp both sides to the dtype's range where the true value lies beyond it.

    A float16 result of large sums can exceed 65504 even in a perfect kernel, which then stores
    Inf or the largest finite value depending on its rounding; either is right, the sign is not.
    """
    ref = ref.detach()
    over = _over(ref, dtype)
    if over is None:
        return out, ref
    limit = torch.finfo(dtype).max
    out64 = out.to(torch.float64)
    clamped_out = torch.where(over, out64.clamp(-limit, limit), out64)
    return clamped_out.to(dtype), torch.where(over, ref.clamp(-limit, limit), ref)


@dataclass
class _Hits:
    """Elements found wrong in one way: how many, the first few (row-major positions), and the
    output's and the reference's values at the first."""

    count: int = 0
    at: list[int] = field(default_factory=list)
    got: float | int | bool = 0
    expected: float | int | bool = 0

    def add(self, mask: torch.Tensor, offset: int, out: torch.Tensor, ref: torch.Tensor) -> None:
        """Count the True elements of a piece's mask and keep the first positions."""
        found = int(mask.sum().item())
        if not found:
            return
        positions = first_true(mask, _MAX_INDICES - len(self.at))
        if not self.at:
            self.got, self.expected = out[positions[0]].item(), ref[positions[0]].item()
        self.at += [offset + p for p in positions]
        self.count += found


@dataclass
class _Worst:
    """The largest element error so far, where it is and the values there."""

    error: float = -1.0
    at: int = 0
    got: float | int | bool = 0
    expected: float | int | bool = 0

    def add(self, err: torch.Tensor, offset: int, out: torch.Tensor, ref: torch.Tensor) -> None:
        """Keep the piece's first largest error if it beats the largest so far."""
        largest = err.max().item()
        if largest > self.error:
            p = int(err.argmax().item())
            self.error, self.at = largest, offset + p
            self.got, self.expected = out[p].item(), ref[p].item()


@dataclass
class Tally:
    """One output's figures, gathered piece by piece: the reference's norm (first pass), then
    errors, counts and first indices (second pass)."""

    name: str
    out: torch.Tensor
    shape: Shape
    tol: Tolerance
    working: torch.Tensor | None
    ref_norm: float = 0.0
    finite: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    err_norm: float = 0.0
    slack_norm: float = 0.0
    mismatches: int = 0
    elements: int = 0
    nan: _Hits = field(default_factory=_Hits)
    inf: _Hits = field(default_factory=_Hits)
    bad: _Hits = field(default_factory=_Hits)
    worst: _Worst = field(default_factory=_Worst)

    @property
    def exact(self) -> bool:
        return not self.out.dtype.is_floating_point

    @property
    def scale(self) -> float:
        """The reference's rms over its finite elements (floored): the unit of atol."""
        return max(self.ref_norm / math.sqrt(max(self.finite, 1)), _TINY)

    def measure(self, part: OutputPiece) -> None:
        """First pass: the piece's share of the reference's norm and finite count."""
        ref = part.ref.detach()
        over = _over(ref, self.out.dtype)
        if over is not None:
            limit = torch.finfo(self.out.dtype).max
            ref = torch.where(over, ref.clamp(-limit, limit), ref)
        ref64 = ref.to(torch.float64)
        finite = torch.isfinite(ref64)
        ref_finite = torch.where(finite, ref64, 0.0)
        self.ref_norm = math.hypot(self.ref_norm, torch.linalg.vector_norm(ref_finite).item())
        self.finite += int(finite.sum().item())

    def judge(self, part: OutputPiece) -> None:
        """Second pass: the piece's element errors, counts and first positions."""
        out, ref = _saturate(part.select(self.out).to(part.ref.device), part.ref, self.out.dtype)
        out64, ref64 = out.to(torch.float64), ref.to(torch.float64)
        ref_finite = torch.where(torch.isfinite(ref64), ref64, 0.0)
        scale, tol = self.scale, self.tol
        err = _element_errors(out64, ref64)
        rounding = _rounding_error(ref_finite, out.dtype)
        if self.working is not None:
            rounding = rounding + _noise(part.select(self.working), part.ref)
        bound = tol.atol * scale + tol.rtol * ref_finite.abs() + rounding
        bad = out.ne(ref) if self.exact else err > bound
        self.max_abs = max(self.max_abs, err.max().item())
        self.max_rel = max(self.max_rel, (err / ref_finite.abs().clamp_min(scale)).max().item())
        self.err_norm = math.hypot(self.err_norm, torch.linalg.vector_norm(err).item())
        self.mismatches += int(bad.sum().item())
        self.elements += out.numel()
        self.bad.add(bad, part.offset, out, ref)
        if not self.exact:
            self.slack_norm = math.hypot(self.slack_norm, torch.linalg.vector_norm(rounding).item())
            self.nan.add(out.isnan() & ~ref.isnan(), part.offset, out, ref)
            # An Inf where the reference is NaN fails as an unmatched NaN would not: below.
            self.inf.add(out.isinf() & ref.isfinite(), part.offset, out, ref)
            self.worst.add(err, part.offset, out, ref)

    def result(self) -> Comparison:
        """The output's comparison, once every piece has been judged."""
        result = Comparison(
            passed=True,
            max_abs=self.max_abs,
            max_rel=self.max_rel,
            rel_norm=self.err_norm / max(self.ref_norm, _TINY),
            mismatches=self.mismatches,
            elements=self.elements,
        )
        if self.exact:
            self._judge_exact(result)
        else:
            self._judge_close(result)
        return result

    def _indices(self, positions: list[int]) -> list[list[int]]:
        return [unravel(p, self.shape) for p in positions]

    def _judge_exact(self, result: Comparison) -> None:
        """Fill in the verdict of an output that must equal its reference exactly."""
        if result.mismatches == 0:
            return
        result.passed = False
        result.first_indices = self._indices(self.bad.at)
        result.failure = (
            f"{self.name}: {result.mismatches} of {result.elements} elements differ "
            f"({_dtype_name(self.out.dtype)} compares exactly); first at "
            f"{result.first_indices[0]}: got {self.bad.got}, expected {self.bad.expected}"
        )

    def _judge_close(self, result: Comparison) -> None:
        """Fill in the verdict of a floating-point output: NaN, Inf, elements, then the norm."""
        for label, hits in (("NaN", self.nan), ("Inf", self.inf)):
            if hits.count:
                result.first_indices = self._indices(hits.at)
                result.passed = False
                result.failure = (
                    f"{self.name} holds {hits.count} {label} values "
                    f"(first at {result.first_indices[0]})"
                )
                return
        slack = self.slack_norm / max(self.ref_norm, _TINY)
        if result.mismatches:
            result.first_indices = self._indices(self.bad.at)
            result.failure = self._mismatch_text(result)
        elif result.rel_norm > self.tol.norm + slack:
            result.first_indices = self._indices([self.worst.at])
            result.failure = self._norm_text(result)
        result.passed = result.failure is None

    def _mismatch_text(self, r: Comparison) -> str:
        """Words for elements beyond tolerance: how many, the first, and the worst figures."""
        tol = self.tol
        return (
            f"{self.name}: {r.mismatches} of {r.elements} elements differ beyond tolerance "
            f"({_dtype_name(self.out.dtype)}: rtol {tol.rtol:.1e}, atol {tol.atol:.1e} x rms "
            f"{self.scale:.2e}); first at {r.first_indices[0]}: got {self.bad.got:.6g}, "
            f"expected {self.bad.expected:.6g}; max abs err {r.max_abs:.3g}, rel norm "
            f"{r.rel_norm:.2e} (limit {tol.norm:.1e})"
        )

    def _norm_text(self, r: Comparison) -> str:
        """Words for an output whose elements pass but whose error adds up to too much."""
        return (
            f"{self.name}: rel norm {r.rel_norm:.2e} exceeds the limit {self.tol.norm:.1e} "
            f"({_dtype_name(self.out.dtype)}) though every element is within tolerance; "
            f"largest error at {r.first_indices[0]}: got {self.worst.got:.6g}, "
            f"expected {self.worst.expected:.6g}; max abs err {r.max_abs:.3g}"
        )


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


def _dtype_name(dtype: torch.dtype) -> str:
    """The dtype's name without "torch.", e.g. bfloat16."""
    return str(dtype).removeprefix("torch.")
