"""Tests for `harness.search.islands`: dedup, island caps, tempered sampling, migration, saving."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Candidate, Elite, candidate_id
from kevolve.harness.search.islands import Islands, IslandsConfig

OK = Evaluation(verdict=Verdict.CORRECT, reason="ok", problem="p", device="cpu")


def elite(i: int, score: float, island: int = 0) -> Elite:
    """A correct candidate `x = i` on the given island with the given score."""
    return Elite(Candidate(source=f"x = {i}\n", island=island), score, OK)


def make(seed: int = 0, rng: random.Random | None = None, **overrides: Any) -> Islands:
    """A database with a seeded (or the given) rng and the given config overrides."""
    return Islands(IslandsConfig(**overrides), rng or random.Random(seed))


def ids(elites: list[Elite]) -> list[str]:
    """The candidate ids, in order."""
    return [e.candidate.id for e in elites]


def test_register_dedups_sources_differing_only_in_comments_and_layout() -> None:
    db = make()
    a = candidate_id("def f(x):\n    return x + 1\n")
    b = candidate_id("# a comment\ndef f(x):\n\n    return x+1   # inline\n")
    c = candidate_id("def f(x):\n    return x + 2\n")
    assert not db.seen(a)
    assert db.register(a) is True
    assert db.seen(a) and db.seen(b)
    assert db.register(b) is False
    assert db.register(c) is True


def test_island_keeps_only_its_best_elites_with_ties_in_add_order() -> None:
    db = make(elites_per_island=3)
    for i, score in enumerate([1.0, 5.0, 2.0, 5.0, 0.5, 3.0]):
        db.add(elite(i, score))
    kept = db.sample(0, 10)
    assert [e.score for e in kept] == [5.0, 5.0, 3.0]
    assert ids(kept) == ids([elite(1, 5.0), elite(3, 5.0), elite(5, 3.0)])
    assert db.islands_summary()[0] == {
        "island": 0,
        "count": 3,
        "best_score": 5.0,
        "best_id": elite(1, 5.0).candidate.id,
    }


def test_readding_the_same_id_is_a_noop() -> None:
    db = make()
    db.add(elite(1, 2.0))
    db.add(elite(1, 9.0))
    assert [e.score for e in db.sample(0, 5)] == [2.0]


def test_add_rejects_an_island_out_of_range() -> None:
    with pytest.raises(ValueError):
        make(islands=2).add(elite(1, 1.0, island=2))


def test_sample_returns_distinct_elites_best_first() -> None:
    db = make(seed=3)
    for i in range(6):
        db.add(elite(i, float(i)))
    for _ in range(50):
        drawn = db.sample(0, 3)
        assert len(set(ids(drawn))) == 3
        assert [e.score for e in drawn] == sorted((e.score for e in drawn), reverse=True)
    assert db.sample(1, 3) == []
    assert db.sample(0, 0) == []


def test_sample_prefers_higher_scores() -> None:
    db = make(seed=7, temperature=0.5)
    for i, score in enumerate([1.0, 1.5, 2.0]):
        db.add(elite(i, score))
    counts = Counter(db.sample(0, 1)[0].score for _ in range(3000))
    assert counts[2.0] > counts[1.5] > counts[1.0] > 0


def test_sample_is_uniform_when_scores_tie() -> None:
    db = make(seed=11)
    for i in range(4):
        db.add(elite(i, 1.0))
    counts = Counter(db.sample(0, 1)[0].candidate.id for _ in range(4000))
    assert len(counts) == 4
    assert all(800 < n < 1200 for n in counts.values())


def test_temperature_is_scaled_by_the_score_spread() -> None:
    small, large = make(seed=4), make(seed=4)
    for i, score in enumerate([1.0, 1.5, 2.0, 1.25]):
        small.add(elite(i, score))
        large.add(elite(i, score * 10))
    assert [ids(small.sample(0, 2)) for _ in range(50)] == [
        ids(large.sample(0, 2)) for _ in range(50)
    ]


def test_low_temperature_concentrates_on_the_best() -> None:
    db = make(seed=5, temperature=0.01)
    for i, score in enumerate([1.0, 1.2, 1.4, 2.0]):
        db.add(elite(i, score))
    picks = [db.sample(0, 1)[0].score for _ in range(500)]
    assert picks.count(2.0) == 500


def test_best_and_island_best() -> None:
    db = make(islands=3)
    assert db.best() is None and db.island_best(0) is None
    db.add(elite(1, 2.0, island=0))
    db.add(elite(2, 3.0, island=1))
    db.add(elite(3, 3.0, island=2))
    db.add(elite(4, 1.0, island=2))
    best = db.best()
    assert best is not None and best.candidate.id == elite(2, 3.0).candidate.id
    island2 = db.island_best(2)
    assert island2 is not None and island2.candidate.id == elite(3, 3.0).candidate.id


def test_next_island_cycles() -> None:
    db = make(islands=3)
    assert [db.next_island() for _ in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_migration_reseeds_the_weakest_and_ring_copies_bests() -> None:
    db = make(islands=4, migration_interval=2, reset_fraction=0.5)
    db.add(elite(0, 4.0, island=0))
    db.add(elite(1, 1.0, island=1))
    db.add(elite(2, 3.0, island=2))
    db.add(elite(10, 0.5, island=2))
    # Island 3 is empty, island 1 holds the weakest best: both are reset.
    before = db.to_dict()
    db.end_generation(1)
    assert db.to_dict() == before
    db.end_generation(2)
    champion, second = elite(0, 4.0).candidate.id, elite(2, 3.0).candidate.id
    summary = db.islands_summary()
    assert [s["best_id"] for s in summary] == [champion] * 4
    assert ids(db.sample(1, 10)) == [champion]
    assert ids(db.sample(2, 10)) == [champion, second, elite(10, 0.5).candidate.id]
    assert ids(db.sample(3, 10)) == [champion, second]
    assert ids(db.sample(0, 10)) == [champion]


def test_migration_off_and_empty_database_are_safe() -> None:
    db = make(migration_interval=0)
    db.add(elite(1, 1.0))
    db.end_generation(4)
    assert [s["count"] for s in db.islands_summary()] == [1, 0, 0, 0]
    empty = make()
    empty.end_generation(4)
    assert empty.best() is None


def _filled(seed: int, rng: random.Random | None = None) -> Islands:
    db = make(seed=seed, rng=rng, islands=2, elites_per_island=4)
    for i in range(10):
        db.add(elite(i, 1.0 + (i * 7 % 10) / 10, island=i % 2))
    return db


def test_identical_seeds_give_identical_samples() -> None:
    a, b, c = _filled(42), _filled(42), _filled(43)
    draws_a = [ids(a.sample(i % 2, 2)) for i in range(40)]
    draws_b = [ids(b.sample(i % 2, 2)) for i in range(40)]
    draws_c = [ids(c.sample(i % 2, 2)) for i in range(40)]
    assert draws_a == draws_b
    assert draws_a != draws_c


def test_round_trip_preserves_behaviour() -> None:
    original_rng = random.Random(9)
    db = _filled(9, original_rng)
    for gen in range(1, 6):
        db.register(f"id{gen}")
        db.next_island()
        db.end_generation(gen)
    elites = {e.candidate.id: e for i in range(2) for e in db.sample(i, 10)}
    data = json.loads(json.dumps(db.to_dict()))
    rng = random.Random()
    rng.setstate(original_rng.getstate())
    copy = Islands.from_dict(data, db.config, rng, elites)
    assert copy.to_dict() == db.to_dict()
    assert copy.islands_summary() == db.islands_summary()
    assert copy.next_island() == db.next_island()
    assert [ids(copy.sample(i % 2, 3)) for i in range(20)] == [
        ids(db.sample(i % 2, 3)) for i in range(20)
    ]
    head = db.island_best(1)
    assert head is not None
    # A newcomer tied with the best must rank after it in the reloaded copy too.
    late = elite(99, head.score, island=1)
    db.add(late)
    copy.add(late)
    assert copy.to_dict() == db.to_dict()
    assert copy.island_best(1) == head
    assert not copy.register("id3") and copy.seen("id5")


def test_from_dict_rejects_a_mismatched_island_count() -> None:
    db = _filled(1)
    with pytest.raises(ValueError):
        Islands.from_dict(db.to_dict(), IslandsConfig(islands=3), random.Random(0), {})
