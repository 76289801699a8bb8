"""The `Proposer` interface: anything that turns what the search knows into new candidates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.candidate import Elite
from kevolve.harness.spec.problem import Problem


@dataclass(frozen=True)
class Attempt:
    """A recent candidate that failed, with the evaluation that says why (for the next prompt)."""

    source: str
    evaluation: Evaluation


@dataclass(frozen=True)
class ProposalContext:
    """Everything a proposer may use for one proposal."""

    problem: Problem
    baseline_source: str  # the repo's current kernel (or the KernelBench reference module)
    parents: tuple[Elite, ...]  # sampled from the island, best first
    best: Elite | None
    failures: tuple[Attempt, ...] = ()  # recent failures on this island, newest first
    hardware: dict[str, Any] | None = None  # fingerprint and measured ceilings, when known
    island: int = 0
    generation: int = 0
    tried: frozenset[str] = field(default_factory=frozenset)  # candidate ids already judged


@dataclass(frozen=True)
class Proposal:
    """One proposed module source and the parents it was derived from."""

    source: str
    parents: tuple[str, ...]
    proposer: str


class Proposer(Protocol):
    """Turns a context into zero or more proposals; never raises for a bad model reply."""

    name: str

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        """Up to `count` proposals for this context."""
        ...
