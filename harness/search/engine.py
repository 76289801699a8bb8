"""The search: propose, judge, keep the elites, repeat — resumable at every step.

One generation = plan (proposals from the database's islands, stored before anything runs),
judge (evaluations in parallel, each stored as it finishes), then fold the verdicts into the
database in plan order. Folding in order, from stored plans and stored verdicts, is what makes a
resumed search end exactly where an uninterrupted one with the same seed would.

Generations overlap by one: generation n+1 is planned (from the database as it stood after
generation n-1) and queued before generation n is folded, so the evaluation slots that n's slowest
candidates leave idle go to n+1. The order of plans, folds and checkpoints never depends on which
evaluation finishes first, so resuming still ends where an uninterrupted search would.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

from kevolve.harness.evaluation import Evaluation
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.islands import Islands, IslandsConfig
from kevolve.harness.search.planner import Brief, Planner, Profiler
from kevolve.harness.search.proposal import Proposer
from kevolve.harness.search.status import (
    RepliesPending,
    Status,
    StopKind,
    memory_slots,
    score,
)
from kevolve.harness.search.store import Store
from kevolve.harness.spec.problem import Problem

Evaluator = Callable[[Problem, str], Evaluation]


@dataclass(frozen=True)
class SearchConfig:
    """Budget, stop rules and effort of one search."""

    budget: int = 40  # candidates judged, the seed included
    minutes: float | None = None
    max_tokens: int | None = None  # LLM tokens, prompt and completion together
    max_usd: float | None = None  # LLM cost
    patience: int = 6  # generations without a better best
    per_generation: int = 4
    parallel: int | None = 2  # evaluations in flight; None: `optimize` gives one per executor slot
    parents: int = 3  # elites shown to a proposer
    seed: int = 0
    hardware: str = "cpu"  # key of the evaluation cache
    # Evaluations share one GPU: keep no more in flight than the seed's measured memory fits.
    memory_bound: bool = False
    repairs: int = 2  # turns a failed LLM candidate gets to be fixed, with its exact failure
    # Plan generation n+1 before n is folded (keeps GPUs busy); off when proposals wait on
    # replies from people or batches, whose next prompts should carry n's verdicts.
    overlap: bool = True
    refill: bool = True  # a proposal slot that produced nothing is asked again
    name: str = ""  # names the search in queued prompts (the problem's name when empty)
    database: IslandsConfig = field(default_factory=IslandsConfig)


@dataclass
class Flight:
    """One planned generation whose evaluations are queued or running."""

    generation: int
    candidates: list[Candidate]
    stored: dict[str, Evaluation]  # verdicts found in the store, not judged again
    futures: dict[Future[Evaluation], Candidate]


class Search:
    """Runs one search to a stop rule, persisting as it goes."""

    def __init__(
        self,
        problem: Problem,
        baseline_source: str,
        config: SearchConfig,
        proposers: Sequence[tuple[Proposer, float]],
        evaluator: Evaluator,
        store: Store,
        clock: Callable[[], float] = time.monotonic,
        on_progress: Callable[[Status], None] | None = None,
        lessons: tuple[str, ...] = (),
        profiler: Profiler | None = None,
    ) -> None:
        self.problem = problem
        self.baseline_source = baseline_source
        self.config = config
        self.evaluator = evaluator
        self.store = store
        self.clock = clock
        self.on_progress = on_progress or (lambda status: None)
        self.rng = random.Random(config.seed)
        self.db = Islands(config.database, self.rng)
        self.status = Status()
        brief = Brief(
            problem,
            baseline_source,
            config.parents,
            config.repairs,
            config.refill,
            config.hardware,
            config.name,
            lessons,
            config.max_usd,
        )
        self.planner = Planner(brief, proposers, store, profiler)
        self._started = clock()

    def run(self) -> Status:
        """Search until a stop rule fires; resumes from the store when it has state."""
        self.store.bind(
            {
                "problem": self.problem.name,
                "seed": self.config.seed,
                "hardware": self.config.hardware,
            }
        )
        if not self._resume():
            self._seed()
        with ThreadPoolExecutor(max_workers=self._slots()) as pool:
            try:
                self._generations(pool)
            except RepliesPending as paused:
                self.status.waiting = paused.keys
                n = len(paused.keys)
                self.status.stop_reason = f"waiting for {n} {'reply' if n == 1 else 'replies'}"
                self.status.stop = StopKind.PAUSED
            finally:
                # On a stop (or an error) queued evaluations are dropped; running ones finish
                # and are stored, so a resumed search does not judge them again.
                pool.shutdown(wait=True, cancel_futures=True)
        now = self.clock()
        self.status.elapsed_s += now - self._started
        self._started = now
        return self.status

    def _slots(self) -> int:
        """Evaluations in flight: `parallel`, or fewer where the GPU's memory holds fewer."""
        wanted = max(1, self.config.parallel or 1)
        fit = memory_slots(self.status.baseline) if self.config.memory_bound else None
        return wanted if fit is None else min(wanted, fit)

    def _generations(self, pool: ThreadPoolExecutor) -> None:
        """Fold generation after generation, keeping the next one queued behind the current."""
        flight = None if self._stop() else self._launch(pool, self.status.generation + 1)
        while flight is not None:
            ahead = None
            if self.config.overlap and not self._stop():
                ahead = self._launch(pool, flight.generation + 1, len(flight.candidates))
            folded = self._fold_generation(flight, ahead)
            if self._stop() or not folded:
                if ahead is not None:
                    self._drain(ahead)
                return
            # No plan ahead (the proposers had nothing new yet): plan from the fresh verdicts.
            flight = ahead or self._launch(pool, flight.generation + 1)

    def _launch(
        self, pool: ThreadPoolExecutor, generation: int, in_flight: int = 0
    ) -> Flight | None:
        """Plan generation `generation` (or reload its stored plan) and queue what is unjudged.

        None when the budget has nothing left for it, and for a plan ahead of an unfolded
        generation (`in_flight` > 0) that came out empty."""
        planned = self.store.plan(generation)
        if planned is None:
            wanted = self._wanted(in_flight)
            if wanted <= 0:
                return None
            ids = [c.id for c in self._plan(generation, wanted)]
            if not ids and in_flight:
                return None
            self.store.save_plan(generation, ids, self._state())
        else:
            ids, state = planned
            # A plan made after the newest checkpoint carries the state to go on from; one made
            # before it (queued ahead of that generation's fold) is already part of it.
            if state["generation"] == self.status.generation:
                self._restore(state)
            for i in ids:
                self.db.register(i)
        candidates = [self.store.candidate(i) for i in ids]
        hw = self.config.hardware
        stored = {c.id: ev for c in candidates if (ev := self.store.evaluation(c.id, hw))}
        futures = {
            pool.submit(self.evaluator, self.problem, c.source): c
            for c in candidates
            if c.id not in stored
        }
        return Flight(generation, candidates, stored, futures)

    def _wanted(self, in_flight: int) -> int:
        """How many candidates the next generation plans: every evaluation slot twice over,
        so the slowest candidates' tail leaves few slots idle, within the budget."""
        size = max(self.config.per_generation, 2 * self._slots())
        return min(size, self.config.budget - self.status.evaluated - in_flight)

    def _seed(self) -> None:
        """Generation 0: the repo's current kernel, judged once and placed on every island."""
        seed = Candidate(self.baseline_source, proposer="seed")
        self.store.save_candidate(seed)
        self.db.register(seed.id)
        ev = self._verdict(seed)
        self.status.baseline = ev
        self._fold(seed, ev)
        value = score(ev)
        if value is not None:
            for island in range(1, self.config.database.islands):
                copy = Candidate(seed.source, proposer="seed", island=island)
                self.db.add(Elite(copy, value, ev))
        self._checkpoint(0)

    def _fold_generation(self, flight: Flight, behind: Flight | None = None) -> bool:
        """Wait for a generation's verdicts (each stored as it arrives), fold them in plan order.

        When the minutes run out first, what has not started (here and in the generation queued
        `behind` it) is dropped and what is running finishes and is stored; False, with nothing
        folded, if that left the generation incomplete (a resume judges only the rest)."""
        verdicts = dict(flight.stored)
        pending = set(flight.futures)
        while pending:
            done, pending = wait(pending, self._seconds_left(), FIRST_COMPLETED)
            if pending and self._seconds_left() == 0.0:
                for queued in behind.futures if behind else ():
                    queued.cancel()  # freed slots must not start the generation queued behind
                dropped = {f for f in pending if f.cancel()}
                done, pending = done | wait(pending - dropped).done, set()
                if dropped:
                    self._store(flight, done)
                    return False
            verdicts.update(self._store(flight, done))
        before = self.status.best.score if self.status.best else None
        for c in flight.candidates:
            self._fold(c, verdicts[c.id])
        after = self.status.best.score if self.status.best else None
        self.status.stale = 0 if after is not None and after != before else self.status.stale + 1
        self.db.end_generation(flight.generation + 1)
        self.status.generation = flight.generation
        self._checkpoint(flight.generation)
        return True

    def _store(self, flight: Flight, done: Iterable[Future[Evaluation]]) -> dict[str, Evaluation]:
        """Store the finished evaluations (here, on the thread owning the store); their verdicts.

        Every verdict is stored before an evaluator's exception among them is raised."""
        verdicts, failed = {}, None
        for future in done:
            if future.exception() is not None:
                failed = failed or future
                continue
            c = flight.futures[future]
            verdicts[c.id] = future.result()
            self.store.save_evaluation(c.id, self.config.hardware, verdicts[c.id])
        if failed is not None:
            failed.result()  # raises the evaluator's exception
        return verdicts

    def _seconds_left(self) -> float | None:
        """Seconds until the minutes run out (0.0 once they have); None without a time limit."""
        if self.config.minutes is None:
            return None
        spent = self.status.elapsed_s + self.clock() - self._started
        return max(0.0, self.config.minutes * 60 - spent)

    def _drain(self, flight: Flight) -> None:
        """A stopped search's queued generation: drop what has not started, store what finishes
        (storing one already stored again changes nothing)."""
        running = {f for f in flight.futures if not f.cancel()}
        self._store(flight, wait(running).done)

    def _plan(self, generation: int, wanted: int) -> list[Candidate]:
        """The planner's candidates for `generation`; the LLM's spend shows in the status even
        when the plan pauses for replies."""
        baseline = self.status.baseline
        try:
            hardware = baseline.hardware if baseline else None
            return self.planner.plan(generation, wanted, self.db, self.rng, hardware)
        finally:
            self.status.cost_usd, self.status.tokens = self.planner.cost, self.planner.tokens

    def _verdict(self, c: Candidate) -> Evaluation:
        """The stored verdict on `c`, or a new one (stored)."""
        hw = self.config.hardware
        ev = self.store.evaluation(c.id, hw)
        if ev is None:
            ev = self.evaluator(self.problem, c.source)
            self.store.save_evaluation(c.id, hw, ev)
        return ev

    def _fold(self, c: Candidate, ev: Evaluation) -> None:
        """Count a verdict, keep a correct candidate as an elite, track the best and patience."""
        self.status.evaluated += 1
        self.status.counts[ev.verdict.value] += 1
        self.status.gpu_s += ev.phases.get("time", 0.0)
        value = score(ev)
        repair = self.planner.is_repair(c.id)
        self.status.repairs += 1 if repair else 0
        if value is None:
            self.planner.failed(c, ev)
        else:
            self.status.repaired += 1 if repair else 0
            self.db.add(Elite(c, value, ev))
        best = self.db.best()
        improved = best is not None and (
            self.status.best is None or best.score > self.status.best.score
        )
        if improved:
            self.status.best = best
        self.status.history.append(
            {
                "evaluated": self.status.evaluated,
                "candidate": c.id,
                "verdict": ev.verdict.value,
                "score": value,
                "best_score": best.score if best else None,
            }
        )
        self.on_progress(self.status)

    def _stop(self) -> bool:
        """True (with a reason) once a budget is spent or patience runs out."""
        s, cfg = self.status, self.config
        minutes = (s.elapsed_s + self.clock() - self._started) / 60
        rules = [
            (
                s.evaluated >= cfg.budget,
                StopKind.BUDGET,
                f"budget of {cfg.budget} candidates spent",
            ),
            (
                cfg.minutes is not None and minutes >= cfg.minutes,
                StopKind.MINUTES,
                f"{cfg.minutes} minutes spent",
            ),
            (
                cfg.max_tokens is not None and self.planner.tokens >= cfg.max_tokens,
                StopKind.TOKENS,
                f"{cfg.max_tokens} LLM tokens spent",
            ),
            (
                cfg.max_usd is not None and self.planner.cost >= cfg.max_usd,
                StopKind.COST,
                f"the LLM cost cap of {cfg.max_usd} USD reached",
            ),
            (
                s.stale >= cfg.patience,
                StopKind.PATIENCE,
                f"no improvement for {cfg.patience} generations",
            ),
        ]
        s.stop, s.stop_reason = next(
            ((kind, why) for hit, kind, why in rules if hit), (StopKind.OTHER, "")
        )
        return bool(s.stop_reason)

    def _checkpoint(self, generation: int) -> None:
        """Store the state after a finished generation."""
        self.store.save_checkpoint(generation, self._state())

    def _state(self) -> dict[str, Any]:
        """Everything needed to continue exactly from here."""
        version, internal, gauss = self.rng.getstate()
        s = self.status
        return {
            "rng": [version, list(internal), gauss],
            "database": self.db.to_dict(),
            "evaluated": s.evaluated,
            "counts": dict(s.counts),
            "history": s.history,
            "generation": s.generation,
            "stale": s.stale,
            "best": s.best.candidate.id if s.best else None,
            "baseline": s.baseline.candidate_hash if s.baseline else None,
            "elapsed_s": s.elapsed_s + self.clock() - self._started,
            "repair_counts": [s.repairs, s.repaired],
            "gpu_s": s.gpu_s,
            **self.planner.to_state(),
        }

    def _resume(self) -> bool:
        """Load the newest checkpoint, if any; True when there was one."""
        found = self.store.last_checkpoint()
        if found is None:
            return False
        self._restore(found[1])
        return True

    def _restore(self, state: dict[str, Any]) -> None:
        """Put the search back into a stored state."""
        version, internal, gauss = state["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        hw = self.config.hardware
        elites = {}
        for island in state["database"]["islands"]:
            for entry in island:
                cid = entry["id"]
                ev = self.store.evaluation(cid, hw)
                if ev is not None:
                    elites[cid] = Elite(self.store.candidate(cid), float(entry["score"]), ev)
        self.db = Islands.from_dict(state["database"], self.config.database, self.rng, elites)
        s = self.status
        s.evaluated, s.counts = state["evaluated"], Counter(state["counts"])
        s.history, s.generation, s.stale = state["history"], state["generation"], state["stale"]
        s.best = elites.get(state["best"]) if state["best"] else None
        seed = Candidate(self.baseline_source, proposer="seed")
        s.baseline = self.store.evaluation(seed.id, hw)
        s.elapsed_s, s.gpu_s = state["elapsed_s"], state["gpu_s"]
        self._started = self.clock()
        self.planner.restore(state)
        s.cost_usd, s.tokens = self.planner.cost, self.planner.tokens
        s.repairs, s.repaired = state.get("repair_counts", [0, 0])
