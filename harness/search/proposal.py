"""The `Proposer` interface: anything that turns what the search knows into new candidates."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

from kevolve.harness.evaluation import Evaluation
from kevolve.harness.profile import Profile
from kevolve.harness.search.candidate import Elite
from kevolve.harness.search.direction import Direction
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
    repair: Repair | None = None  # set: fix this failed candidate instead of proposing anew
    lessons: tuple[str, ...] = ()  # what earlier searches of this op family learned
    slot: int = 0  # this proposal's place in its generation's plan (names queued prompts)
    search: str = ""  # names the search in queued prompts (the problem, unless told)
    profile: Profile | None = None  # what ncu saw of the parent a reply edits, when taken
    direction: Direction | None = None  # set where the prompt would repeat one of its plan's
    # The seed's (repository kernel's) evaluation: a search times torch.compile there only, and
    # its figures stand for every candidate's (`harness.evaluation.with_seed_compile`).
    seed: Evaluation | None = None


@dataclass(frozen=True)
class Repair:
    """A failed candidate to fix: its id, source, the verdict that says why, and which turn."""

    candidate_id: str
    source: str
    evaluation: Evaluation
    turn: int  # 1 for the first repair of a fresh failure


@dataclass(frozen=True)
class Exchange:
    """One prompt and its raw reply (or why none came), kept in the search state for audit."""

    key: str
    model: str
    messages: tuple[dict[str, str], ...]
    reply: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    rationale: str = ""  # the reply's prose before its code: why the model made the change


@dataclass(frozen=True)
class Proposal:
    """One proposed module source and the parents it was derived from."""

    source: str
    parents: tuple[str, ...]
    proposer: str
    exchange: Exchange | None = None  # the prompt and reply that produced it, for LLM proposals


@dataclass
class Drained:
    """What a proposer tells the search after planning: prompts still waiting for replies and
    exchanges that produced no candidate (kept for audit)."""

    waiting: list[str] = field(default_factory=list)
    spoiled: list[Exchange] = field(default_factory=list)


class Proposer(Protocol):
    """Turns a context into zero or more proposals; never raises for a bad model reply."""

    name: str

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        """Up to `count` proposals for this context."""
        ...

    def drain(self) -> Drained:
        """Prompts waiting for replies and spoiled exchanges since the last call; cleared."""
        ...
