"""`second_opinion`: a failed comparison judged again against what float32 can do on its inputs.

Some inputs leave float32 little precision: attention over all-positive rows scaled up to 64x has
scores near 3e4, where one rounding of a score (about 0.002) moves softmax weight between keys
that nearly tie. PyTorch's own float32 answer then errs far above its usual rounding, and a kernel
that sums in another order errs more again: a plain loop over a 1024-long dot product erred 2-22x
PyTorch's error norm (2-54x its largest error) on such inputs, and past the tolerance where
PyTorch was within it. The comparison allows each element PyTorch's own error at that element;
the loop errs at other elements and fails, though it is a correct float32 kernel.

So when a candidate fails by degree, PyTorch's float32 answer (before any cast to the output
dtype: the question is what float32 can do) is measured against the float64 answer too. Where
its error norm is at least 1/`STRAINED` of the tolerance's, float32 is strained on these inputs,
and the candidate may err up to `FACTOR` times as much as PyTorch: its largest error, and its
error norm, the latter never above the square root of PyTorch's (half the way to an answer that
is all error, on a log scale, which a lower precision reaches first). Elsewhere the failure
stands: on well-conditioned inputs a TF32 attention errs only about 100x PyTorch's norm, just
past the tolerance, and must stay caught there. No NaN, Inf, shape or dtype failure is
reconsidered, and every trial that does not strain float32 is judged by the strict tolerance.
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

FACTOR = 128.0  # 2.4x the worst ratio measured for another correct order
# PyTorch's error norm at 1/32 of the tolerance's or more: float32 is strained (for float32
# outputs 3e-7, about 5 unit roundoffs; a well-conditioned op's answer errs 1-3).
STRAINED = 32.0


@dataclass(frozen=True)
class SecondOpinion:
    """PyTorch's own float32 errors, the limits they set, and whether the candidate is within."""

    pytorch: Comparison
    norm_limit: float
    abs_limit: float
    passed: bool

    def note(self, where: str, candidate: Comparison) -> str:
        """Words for the evaluation's notes when the second opinion let a trial pass."""
        return (
            f"{where}: these inputs leave float32 little precision (PyTorch's own float32 answer: "
            f"rel norm {self.pytorch.rel_norm:.2e}, max abs err {self.pytorch.max_abs:.3g}); the "
            f"candidate was held to {FACTOR:g}x PyTorch's errors instead (rel norm at most "
            f"{self.norm_limit:.2e}, max abs err at most {self.abs_limit:.3g}) and is within them "
            f"(rel norm {candidate.rel_norm:.2e}, max abs err {candidate.max_abs:.3g})"
        )


def second_opinion(
    failed: Comparison,
    expected: Sequence[torch.Tensor] | ChunkedReference,
    dtypes: Sequence[torch.dtype],
    tol: Tolerance,
    working: Sequence[torch.Tensor],
) -> SecondOpinion | None:
    """The second opinion on a candidate's `failed` comparison, or None where there is none to
    give: it passed, or its failure is no matter of degree (a NaN or Inf, a wrong shape or dtype,
    outputs left out, an integer output), or PyTorch's working answers do not match the outputs
    or are less precise than they must be (float64 outputs), or float32 is not strained on these
    inputs (PyTorch's own error norm below 1/`STRAINED` of the tolerance's)."""
    if failed.passed or not working or not math.isfinite(failed.max_abs):
        return None
    if len(working) != len(dtypes) or not all(map(_as_precise, working, dtypes)):
        return None
    own = [w.dtype for w in working]
    pytorch = compare_outputs(working, expected, own, tol)
    if failed.elements != pytorch.elements or not math.isfinite(pytorch.max_abs):
        return None
    if pytorch.rel_norm < tol.norm / STRAINED:
        return None
    norm_limit = max(tol.norm, min(FACTOR * pytorch.rel_norm, math.sqrt(pytorch.rel_norm)))
    abs_limit = FACTOR * pytorch.max_abs
    passed = failed.rel_norm <= norm_limit and failed.max_abs <= abs_limit
    return SecondOpinion(pytorch, norm_limit, abs_limit, passed)


def _as_precise(working: torch.Tensor, dtype: torch.dtype) -> bool:
    """Whether a working answer is floating point and at least as precise as its output."""
    if not (working.is_floating_point() and dtype.is_floating_point):
        return False
    return torch.finfo(working.dtype).eps <= torch.finfo(dtype).eps
