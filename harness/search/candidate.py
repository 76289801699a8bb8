"""`Candidate`: one proposed kernel module, named by the hash of its normalized source."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass, field

from kevolve.harness.evaluation import Evaluation


def normalize(source: str) -> str:
    """The source without comments, docstring-free formatting differences or blank lines.

    Two candidates that differ only in comments or layout are the same candidate: judging both
    would waste an evaluation.
    """
    try:
        return ast.unparse(ast.parse(source))
    except (SyntaxError, ValueError):
        return "\n".join(line.rstrip() for line in source.strip().splitlines() if line.strip())


def candidate_id(source: str) -> str:
    """The content hash (16 hex digits) of the normalized source."""
    return hashlib.sha256(normalize(source).encode("utf-8", "surrogatepass")).hexdigest()[:16]


@dataclass(frozen=True)
class Candidate:
    """Source of a whole kernel module plus where it came from."""

    source: str
    parents: tuple[str, ...] = ()
    proposer: str = "seed"  # "seed", "tuner", "llm:<model>"
    island: int = 0
    generation: int = 0
    id: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(self, "id", candidate_id(self.source))


@dataclass(frozen=True)
class Elite:
    """A correct candidate, its score (higher is better) and the evaluation behind it."""

    candidate: Candidate
    score: float  # speedup over the baseline on a GPU; 1.0 for a correct CPU-only check
    evaluation: Evaluation
