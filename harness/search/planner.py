"""`Planner`: what a generation asks its proposers, and what it remembers between generations.

Repairs of recent failures come first (each gets up to `repairs` turns with its exact failure),
then the proposers' new ideas, one island at a time; a new-idea request whose prompt would repeat
an earlier one of the same plan names an optimization direction instead (`direction.steer`), so no
two prompts of a generation are the same text. The planner keeps the repair queue, which
turn made each repair, each island's recent failures and the LLM's spend, and hands them to the
search's checkpoints so a resumed search plans exactly as an uninterrupted one would.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from kevolve.harness.evaluation import Evaluation
from kevolve.harness.profile import Profile, ProfileError
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.direction import Direction, steer
from kevolve.harness.search.islands import Islands
from kevolve.harness.search.prompt import basis
from kevolve.harness.search.proposal import Attempt, Proposal, ProposalContext, Proposer, Repair
from kevolve.harness.search.status import RepliesPending
from kevolve.harness.search.store import Store
from kevolve.harness.spec.problem import Problem

# A correct candidate's profile (ncu on a GPU host); raises `ProfileError` when none can be taken.
Profiler = Callable[[Problem, str, Evaluation], Profile]
SHOWN_FAILURES = 3  # an island's recent failures a prompt shows


@dataclass(frozen=True)
class Brief:
    """What every proposal of one search is told, besides the database's elites."""

    problem: Problem
    baseline_source: str
    parents: int  # elites shown to a proposer
    repairs: int  # turns a failed LLM candidate gets
    refill: bool  # a proposal slot that produced nothing is asked again
    hardware: str  # key of the evaluation cache
    name: str  # names the search in queued prompts
    lessons: tuple[str, ...] = ()
    max_usd: float | None = None  # no more asks once the LLM has cost this much


class Planner:
    """Plans generations for one search from its proposers; keeps repairs, failures and spend."""

    def __init__(
        self,
        brief: Brief,
        proposers: Sequence[tuple[Proposer, float]],
        store: Store,
        profiler: Profiler | None = None,
    ) -> None:
        self.brief = brief
        self.proposers = list(proposers)
        self.store = store
        self.profiler = profiler
        self.failures: dict[int, list[Attempt]] = {}
        self.repairs: list[tuple[str, int]] = []  # failed LLM candidates to fix, and the turn
        self.turns: dict[str, int] = {}  # repair candidates and which turn made them
        self.tokens = 0
        self.cost = 0.0
        self._tokens_before = 0  # tokens spent by earlier runs of a resumed search
        self._cost_before = 0.0  # the same for cost

    def plan(
        self,
        generation: int,
        wanted: int,
        db: Islands,
        rng: random.Random,
        hardware: dict[str, Any] | None,
    ) -> list[Candidate]:
        """New, unseen candidates: repairs of recent failures first, then the proposers', one
        island at a time. Raises `RepliesPending` when queued prompts wait for replies."""
        turn = _Turn(self, generation, db, rng, hardware, self.seed())
        fixer = next((p for p, _ in self.proposers if p.name.startswith("llm:")), None)
        queue, self.repairs = self.repairs, []
        for cid, number in queue:
            if fixer is None or turn.full(wanted) or self._spent():
                self.repairs.append((cid, number))  # no room this generation: the next one
                continue
            failed, ev = self.store.candidate(cid), self.store.evaluation(cid, self.brief.hardware)
            if ev is None:
                continue
            ctx = turn.context(failed.island, Repair(cid, failed.source, ev, number))
            spoiled = turn.take(fixer, fixer.propose(ctx, rng, 1), ctx)
            if spoiled and number < self.brief.repairs:
                self.repairs.append((cid, number + 1))  # an empty reply spends the turn
        for _ in range(wanted * 3):  # proposers may return duplicates
            if turn.full(wanted) or self._spent():
                break
            island = db.next_island()
            proposer = self._pick(rng)
            ctx = turn.context(island)
            spoiled = turn.take(proposer, proposer.propose(ctx, rng, 1), ctx)
            if spoiled and not self.brief.refill:
                wanted -= spoiled
        self.tokens, self.cost = self._tokens_used(), self._cost_used()
        if turn.waiting:
            raise RepliesPending(turn.waiting)
        return turn.planned

    def failed(self, c: Candidate, ev: Evaluation) -> None:
        """A folded failure: shown to its island's next prompts; an LLM one is queued for repair."""
        self.failures.setdefault(c.island, []).insert(0, Attempt(c.source, ev))
        number = self.turns.get(c.id, 0)
        if c.proposer.startswith("llm:") and number < self.brief.repairs:
            self.repairs.append((c.id, number + 1))

    def seed(self) -> Evaluation | None:
        """The seed's stored evaluation, read from the store as a resumed search reads it, so
        both show its torch.compile figures alike; None before it is judged."""
        return self.store.evaluation(Candidate(self.brief.baseline_source).id, self.brief.hardware)

    def is_repair(self, candidate_id: str) -> bool:
        """Whether a repair turn produced this candidate."""
        return self.turns.get(candidate_id, 0) > 0

    def profile(self, elite: Elite) -> Profile | None:
        """The elite's stored profile, taken now (once per candidate and hardware) if the
        search has a profiler; None where none could be taken (the reason is stored)."""
        hw, cid = self.brief.hardware, elite.candidate.id
        stored = self.store.profile(cid, hw)
        if stored is not None:
            return stored[0]
        if self.profiler is None:
            return None
        try:
            source = elite.candidate.source
            taken: Profile | None = self.profiler(self.brief.problem, source, elite.evaluation)
            error = ""
        except ProfileError as exc:
            taken, error = None, str(exc)
        self.store.save_profile(cid, hw, taken, error)
        return taken

    def to_state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the planner."""
        return {
            "tokens": self.tokens,
            "cost_usd": self.cost,
            "repairs": [list(r) for r in self.repairs],
            "turns": self.turns,
            "failures": {
                str(k): [a.source for a in v[:SHOWN_FAILURES]] for k, v in self.failures.items()
            },
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Back to a checkpoint's planner state (failures re-read from the stored verdicts)."""
        self.tokens = self._tokens_before = int(state["tokens"])
        self.cost = self._cost_before = float(state.get("cost_usd", 0.0))
        self.repairs = [(cid, int(turn)) for cid, turn in state.get("repairs", [])]
        self.turns = {cid: int(turn) for cid, turn in state.get("turns", {}).items()}
        hw = self.brief.hardware
        self.failures = {
            int(k): [
                Attempt(src, ev)
                for src in v
                if (ev := self.store.evaluation(Candidate(src).id, hw))
            ]
            for k, v in state["failures"].items()
        }

    def _spent(self) -> bool:
        """Whether the LLM's cost reached the cap: a plan stops asking there, not only the
        search between generations (one generation's asks could otherwise overrun it)."""
        cap = self.brief.max_usd
        return cap is not None and self._cost_used() >= cap

    def _pick(self, rng: random.Random) -> Proposer:
        weights = [w for _, w in self.proposers]
        return rng.choices([p for p, _ in self.proposers], weights=weights)[0]

    def _tokens_used(self) -> int:
        """LLM tokens spent so far by every proposer that counts them."""
        total = 0
        for proposer, _ in self.proposers:
            usage = getattr(proposer, "usage", None)
            total += getattr(usage, "prompt_tokens", 0) + getattr(usage, "completion_tokens", 0)
        return self._tokens_before + total

    def _cost_used(self) -> float:
        """LLM cost so far (USD) by every proposer that counts it."""
        spent = sum(getattr(getattr(p, "usage", None), "cost_usd", 0.0) for p, _ in self.proposers)
        return self._cost_before + spent


class _Turn:
    """One generation's planning: the contexts it hands out and what came back."""

    def __init__(
        self,
        planner: Planner,
        generation: int,
        db: Islands,
        rng: random.Random,
        hardware: dict[str, Any] | None,
        seed: Evaluation | None,
    ) -> None:
        self.planner = planner
        self.generation = generation
        self.db = db
        self.rng = rng
        self.hardware = hardware
        self.seed = seed
        self.planned: list[Candidate] = []
        self.waiting: list[str] = []
        self.slot = 0
        # What each new-idea prompt so far showed (edited and shown elites, failures): the order
        # it first came in and how often it came.
        self.shown: dict[tuple[tuple[str, ...], tuple[str, ...]], tuple[int, int]] = {}

    def full(self, wanted: int) -> bool:
        return len(self.planned) + len(self.waiting) >= wanted

    def context(self, island: int, repair: Repair | None = None) -> ProposalContext:
        """The next slot's context for `island` (the slot names queued prompts): a repair's, or
        a new idea's, with a direction where it would repeat an earlier one."""
        brief, planner = self.planner.brief, self.planner
        parents = tuple(self.db.sample(island, brief.parents))
        best = self.db.best()
        edited = parents[0] if parents else best
        ctx = ProposalContext(
            problem=brief.problem,
            baseline_source=brief.baseline_source,
            parents=parents,
            best=best,
            failures=tuple(planner.failures.get(island, [])[:SHOWN_FAILURES]),
            hardware=self.hardware,
            island=island,
            generation=self.generation,
            tried=self.db.registered(),
            lessons=brief.lessons,
            slot=self.slot,
            search=brief.name or brief.problem.name,
            profile=planner.profile(edited) if edited is not None else None,
            repair=repair,
            seed=self.seed,
        )
        self.slot += 1
        return ctx if repair else replace(ctx, direction=self._direction(ctx))

    def _direction(self, ctx: ProposalContext) -> Direction | None:
        """None for the first new-idea context that shows its program with its failures (the
        prompt is the same text for every island that shows both); the next direction of that
        program's turn through the list for each repeat."""
        shown = (basis(ctx).parent_ids, tuple(a.source for a in ctx.failures))
        order, times = self.shown.get(shown, (len(self.shown), 0))
        self.shown[shown] = (order, times + 1)
        return steer(order, times) if times else None

    def take(self, proposer: Proposer, proposals: list[Proposal], ctx: ProposalContext) -> int:
        """Keep the new candidates among `proposals` and every exchange behind them; note the
        prompts still waiting. How many of the proposer's asks produced nothing."""
        store = self.planner.store
        for p in proposals:
            c = Candidate(p.source, p.parents, p.proposer, ctx.island, ctx.generation)
            fresh = self.db.register(c.id)
            if fresh:
                store.save_candidate(c)
                self.planned.append(c)
                if ctx.repair is not None:
                    self.planner.turns[c.id] = ctx.repair.turn
            if p.exchange is not None:
                kept = p.exchange if fresh else replace(p.exchange, error="an earlier candidate")
                store.save_exchange(ctx.generation, kept, c.id)
        drained = proposer.drain()
        self.waiting.extend(drained.waiting)
        for exchange in drained.spoiled:
            store.save_exchange(ctx.generation, exchange, None)
        return len(drained.spoiled)
