"""`second_opinion`: a failed comparison judged again where float32 has no right answer to give.

Some inputs make an op ill-conditioned in float32: attention over rows scaled up to 64x has
scores near 3e4, where one rounding of a score (about 0.002) moves softmax weight between keys
that nearly tie, so any two correct float32 kernels disagree there by percents. The comparison
allows each element the error PyTorch's own float32 answer makes at that element; a kernel that
sums in another order errs at other elements and fails, though it is as right as PyTorch.

So when a candidate fails, PyTorch's float32 answer is judged by the same tolerance. If it passes,
the inputs are fine and the failure stands. If it fails too, the tolerance cannot be met in
float32 on these inputs, and the candidate is held to PyTorch's standard instead: its error norm
and its largest error may be at most `FACTOR` times PyTorch's, and it must hold no NaN or Inf
the reference lacks. A shortcut still has to pass every well-conditioned trial on the strict
tolerance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from kevolve.harness.judge.chunked import ChunkedReference
from kevolve.harness.judge.compare import compare_outputs
from kevolve.harness.judge.tally import Comparison
from kevolve.harness.spec.problem import Tolerance

# Two correct float32 kernels' error norms on one ill-conditioned input differ by a small factor:
# each norm sums thousands of independent near-ties. TF32 or half-precision work errs by orders
# of magnitude more there, so it is not let through.
FACTOR = 4.0


@dataclass(frozen=True)
class SecondOpinion:
    """PyTorch's own float32 answer judged by the tolerance, and whether the candidate is within
    `FACTOR` of its error norm and its largest error."""

    pytorch: Comparison
    passed: bool

    def note(self, where: str, candidate: Comparison) -> str:
        """Words for the evaluation's notes when the second opinion let a trial pass."""
        return (
            f"{where}: PyTorch's own float32 answer misses the tolerance on these inputs (rel "
            f"norm {self.pytorch.rel_norm:.2e}, max abs err {self.pytorch.max_abs:.3g}): they make "
            f"the op ill-conditioned in float32; the candidate was held to {FACTOR:g}x PyTorch's "
            f"errors instead and is within them (rel norm {candidate.rel_norm:.2e}, max abs err "
            f"{candidate.max_abs:.3g})"
        )


def second_opinion(
    failed: Comparison,
    expected: Sequence[torch.Tensor] | ChunkedReference,
    dtypes: Sequence[torch.dtype],
    tol: Tolerance,
    working: Sequence[torch.Tensor],
) -> SecondOpinion | None:
    """The second opinion on a candidate's `failed` comparison, or None where there is none to
    give: the failure is no matter of degree (a NaN or Inf, a wrong shape or dtype, outputs left
    out) or PyTorch's own answer meets the tolerance, so the failure stands as it is."""
    if failed.passed or not working or not math.isfinite(failed.max_abs):
        return None
    if len(working) != len(dtypes):
        return None
    answer = [w.to(d) for w, d in zip(working, dtypes, strict=True)]
    pytorch = compare_outputs(answer, expected, dtypes, tol)
    if pytorch.passed or failed.elements != pytorch.elements:
        return None
    within = failed.rel_norm <= FACTOR * max(pytorch.rel_norm, tol.norm) and (
        failed.max_abs <= FACTOR * pytorch.max_abs
    )
    return SecondOpinion(pytorch=pytorch, passed=within)
