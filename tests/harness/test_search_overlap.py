"""Overlapping generations: the next generation fills the slots the current one's tail leaves
idle, and a search interrupted anywhere still resumes to exactly the uninterrupted outcome."""

from __future__ import annotations

import contextlib
import hashlib
import random
import threading
import time
from concurrent.futures import Future
from dataclasses import replace
from pathlib import Path

import pytest
from kevolve.harness.evaluation import CaseTiming, Evaluation, Timing, Verdict
from kevolve.harness.search.candidate import Candidate, candidate_id
from kevolve.harness.search.engine import Flight, Search, SearchConfig
from kevolve.harness.search.islands import IslandsConfig
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext
from kevolve.harness.search.status import Status, StopKind
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
BASELINE = "def kernel():\n    pass\n"


class Interrupted(Exception):
    """Stands in for a crash partway through a search."""


class Mutator:
    """A proposer whose proposals depend on the parents it is shown and on the search's rng."""

    name = "mutator"

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        parents = tuple(p.candidate.id for p in ctx.parents)
        return [
            Proposal(
                f"TAG = 'generation {ctx.generation} from {parents} {rng.random()}'\n{BASELINE}",
                parents,
                self.name,
            )
            for _ in range(count)
        ]

    def drain(self) -> Drained:
        return Drained()


class Neighbours:
    """A proposer with a small space, like the tuner's: three children per parent, no more, so a
    plan made ahead of a fold often finds nothing new."""

    name = "neighbours"

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        out: list[Proposal] = []
        for parent in ctx.parents:
            for i in range(3):
                source = f"TAG = '{parent.candidate.id}/{i}'\n{BASELINE}"
                if len(out) < count and candidate_id(source) not in ctx.tried:
                    out.append(Proposal(source, (parent.candidate.id,), self.name))
        return out

    def drain(self) -> Drained:
        return Drained()


def verdict(source: str) -> Evaluation:
    """A deterministic verdict from the source: some wrong, the rest timed at some speedup."""
    value = int(hashlib.sha256(source.encode()).hexdigest()[:8], 16)
    if value % 5 == 0:
        return Evaluation(verdict=Verdict.INCORRECT, reason="wrong", problem="softmax", device="x")
    timing = Timing(n=10, median_ms=1.0, q10_ms=1.0, q90_ms=1.0, min_ms=1.0)
    speedup = 0.5 + (value % 1000) / 1000
    return Evaluation(
        verdict=Verdict.CORRECT,
        reason="ok",
        problem="softmax",
        device="x",
        timed=True,
        timings=[CaseTiming(shape=[1], dtype="float32", candidate=timing, speedup=speedup)],
    )


@pytest.fixture(scope="module")
def problem() -> Problem:
    return load_problems(ROOT / "examples" / "kernelbench" / "softmax.py")[0]


def config(budget: int) -> SearchConfig:
    return SearchConfig(
        budget=budget,
        per_generation=3,
        parallel=2,
        patience=100,
        seed=7,
        database=IslandsConfig(islands=2),
    )


def outcome(status: Status) -> tuple[object, ...]:
    history = [(h["candidate"], h["verdict"], h["best_score"]) for h in status.history]
    best = status.best.candidate.id if status.best else None
    return status.evaluated, dict(status.counts), best, history, status.generation


def test_the_next_generation_runs_while_the_slowest_candidate_finishes(
    tmp_path: Path, problem: Problem
) -> None:
    next_started = threading.Event()
    waited: list[bool] = []

    def judge(_: Problem, source: str) -> Evaluation:
        if source.startswith("TAG = 'generation 2 "):
            next_started.set()
        if source.startswith("TAG = 'generation 1 ") and not waited:
            waited.append(True)  # the first candidate of generation 1 is its slowest
            waited[0] = next_started.wait(timeout=30)
        return verdict(source)

    store = Store(tmp_path / "s.sqlite")
    status = Search(problem, BASELINE, config(9), [(Mutator(), 1.0)], judge, store).run()
    store.close()
    assert waited == [True], "generation 2 did not start while generation 1 was unfinished"
    assert status.evaluated == 9 and status.generation == 2


@pytest.mark.parametrize("proposer", [Mutator, Neighbours])
@pytest.mark.parametrize("crash_at", [1, 2, 4, 5, 7, 9, 12, 14])
def test_a_search_interrupted_anywhere_resumes_to_the_same_outcome(
    tmp_path: Path, problem: Problem, crash_at: int, proposer: type[Mutator | Neighbours]
) -> None:
    whole = Store(tmp_path / "whole.sqlite")
    expected = outcome(
        Search(
            problem, BASELINE, config(14), [(proposer(), 1.0)], lambda _, s: verdict(s), whole
        ).run()
    )
    whole.close()

    calls: list[str] = []
    lock = threading.Lock()

    def crashing(_: Problem, source: str) -> Evaluation:
        with lock:
            calls.append(source)
            if len(calls) == crash_at:
                raise Interrupted
        return verdict(source)

    state = tmp_path / "resumed.sqlite"
    store = Store(state)
    with pytest.raises(Interrupted):
        Search(problem, BASELINE, config(14), [(proposer(), 1.0)], crashing, store).run()
    stored = {s for s in calls if store.evaluation(candidate_id(s), "cpu") is not None}
    store.close()
    judged_again: list[str] = []

    def counting(_: Problem, source: str) -> Evaluation:
        judged_again.append(source)
        return verdict(source)

    store = Store(state)
    resumed = Search(problem, BASELINE, config(14), [(proposer(), 1.0)], counting, store).run()
    store.close()
    assert outcome(resumed) == expected
    assert not stored & set(judged_again)  # what was stored before the crash is not judged again
    assert len(stored) + len(judged_again) >= 14


@pytest.mark.parametrize(("memory_bound", "most"), [(True, 2), (False, 4)])
def test_evaluations_in_flight_stay_within_what_the_seeds_memory_fits(
    tmp_path: Path, problem: Problem, memory_bound: bool, most: int
) -> None:
    running, seen, lock = [0], [0], threading.Lock()
    release = threading.Barrier(most, timeout=5)  # waits until `most` run at once

    def judge(_: Problem, source: str) -> Evaluation:
        ev = verdict(source)
        if source == BASELINE:  # the seed: each evaluation needs 30 of the GPU's 80 GiB
            ev.memory = {"device_total": 80 * 2**30, "check": 30 * 2**30, "peak": 30 * 2**30}
            return ev
        with lock:
            running[0] += 1
            seen[0] = max(seen[0], running[0])
        with contextlib.suppress(threading.BrokenBarrierError):  # the last few run fewer at once
            release.wait()
        with lock:
            running[0] -= 1
        return ev

    cfg = SearchConfig(budget=9, per_generation=4, parallel=4, seed=1, memory_bound=memory_bound)
    store = Store(tmp_path / "s.sqlite")
    Search(problem, BASELINE, cfg, [(Mutator(), 1.0)], judge, store).run()
    store.close()
    assert seen[0] == most


def test_the_minutes_stop_a_search_mid_generation_and_a_resume_judges_only_the_rest(
    tmp_path: Path, problem: Problem
) -> None:
    judged: list[str] = []

    def slow(_: Problem, source: str) -> Evaluation:
        judged.append(source)
        if source != BASELINE:
            time.sleep(0.5)
        return verdict(source)

    cfg = SearchConfig(budget=21, per_generation=20, parallel=2, seed=1, minutes=0.05)
    store = Store(tmp_path / "s.sqlite")
    started = time.monotonic()
    status = Search(problem, BASELINE, cfg, [(Mutator(), 1.0)], slow, store).run()
    took = time.monotonic() - started
    store.close()
    # 3 s of minutes, then the two running evaluations finish; the 20-candidate generation
    # (10 s of work) is not waited for, and nothing of it is folded.
    assert took < 5.0 and status.stop_reason == "0.05 minutes spent"
    assert status.stop is StopKind.MINUTES
    assert status.evaluated == 1 and 5 <= len(judged) < 15
    first = list(judged)

    judged.clear()
    store = Store(tmp_path / "s.sqlite")
    resumed = Search(
        problem, BASELINE, replace(cfg, minutes=None), [(Mutator(), 1.0)], slow, store
    ).run()
    store.close()
    assert resumed.evaluated == 21 and not set(first) & set(judged)


def test_a_generation_whose_last_evaluations_finish_after_the_minutes_is_still_folded(
    tmp_path: Path, problem: Problem
) -> None:
    def slow(_: Problem, source: str) -> Evaluation:
        if source != BASELINE:
            time.sleep(2.0)
        return verdict(source)

    cfg = SearchConfig(budget=3, per_generation=2, parallel=2, seed=1, minutes=0.02)
    store = Store(tmp_path / "s.sqlite")
    status = Search(problem, BASELINE, cfg, [(Mutator(), 1.0)], slow, store).run()
    store.close()
    # Both candidates were running when 1.2 s were up; nothing was dropped, so they count (and
    # the budget, the first stop rule, is what the search names).
    assert status.evaluated == 3 and status.generation == 1
    assert (status.stop, status.stop_reason) == (StopKind.BUDGET, "budget of 3 candidates spent")


def test_verdicts_that_finish_with_a_failing_evaluation_are_stored_before_it_raises(
    tmp_path: Path, problem: Problem
) -> None:
    store = Store(tmp_path / "s.sqlite")
    search = Search(
        problem, BASELINE, config(5), [(Mutator(), 1.0)], lambda _, s: verdict(s), store
    )
    good, bad = Candidate(f"X = 1\n{BASELINE}"), Candidate(f"X = 2\n{BASELINE}")
    finished: Future[Evaluation] = Future()
    finished.set_result(verdict(good.source))
    failed: Future[Evaluation] = Future()
    failed.set_exception(Interrupted())
    flight = Flight(1, [good, bad], {}, {failed: bad, finished: good})
    for done in ([failed, finished], [finished, failed]):  # whichever comes first
        with pytest.raises(Interrupted):
            search._store(flight, done)
        assert store.evaluation(good.id, "cpu") is not None
    store.close()
