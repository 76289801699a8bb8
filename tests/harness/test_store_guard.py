"""harness.search.store directly: what each write keeps and each read gives back, across a
reopen of the file (a resumed search), and what it refuses (another search's file)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from kevolve.harness.evaluation import CaseCheck, Evaluation, Verdict
from kevolve.harness.profile import KernelProfile, Profile, Stall
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.proposal import Exchange
from kevolve.harness.search.store import StateMismatch, Store, evaluated_count

IDENTITY = {"problem": "softmax", "hardware": "cpu", "seed": 1}
EVALUATION = Evaluation(
    verdict=Verdict.CORRECT,
    reason="correct on 1 case",
    problem="softmax",
    device="cpu",
    checks=[CaseCheck(shape=[4, 8], dtype="float32", trials=2, passed=True)],
)
PROFILE = Profile(
    (4096, 1024),
    "float16",
    (
        KernelProfile(
            "softmax_kernel", 12.5, dram_pct=91.0, stalls=(Stall("long_scoreboard", 3.2),)
        ),
    ),
    "ncu 2025.1",
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A state file two folders below any that exist."""
    return tmp_path / "jobs" / "job-7" / "search.sqlite"


def reopened(path: Path, store: Store) -> Store:
    """The same file opened again, as a resumed search opens it."""
    store.close()
    return Store(path)


def test_the_state_file_is_made_with_its_folders_and_reopens(path: Path) -> None:
    store = Store(path)
    assert store.path == path and path.is_file()
    store = reopened(path, store)
    assert store.last_checkpoint() is None
    store.close()


def test_a_file_binds_to_one_search_and_refuses_another(path: Path) -> None:
    store = Store(path)
    store.bind(IDENTITY)
    store = reopened(path, store)
    store.bind(IDENTITY)  # the same search again: fine
    with pytest.raises(StateMismatch) as info:
        store.bind({**IDENTITY, "hardware": "h100", "seed": 2, "extra": True})
    assert str(info.value) == (
        f"{path} holds another search (differs in extra, hardware, seed); pass a new "
        "--state path, or delete the file to start over"
    )
    store.close()


def test_candidates_are_kept_once_with_where_they_came_from(path: Path) -> None:
    store = Store(path)
    child = Candidate("x = 2\n", ("aaaa", "bbbb"), "llm:m-1", island=3, generation=7)
    store.save_candidate(child)
    store.save_candidate(Candidate("x = 2\n", (), "tuner"))  # same id: the first stays
    store = reopened(path, store)
    kept = store.candidate(child.id)
    assert kept == child and kept.id == child.id
    assert (kept.parents, kept.proposer, kept.island, kept.generation) == (
        ("aaaa", "bbbb"),
        "llm:m-1",
        3,
        7,
    )
    with pytest.raises(KeyError) as info:
        store.candidate("0" * 16)
    assert info.value.args == ("0" * 16,)
    store.close()


def test_a_candidate_keeps_the_id_it_was_saved_under(path: Path) -> None:
    """A resumed search finds its candidates by the ids its plans name, even where the hash of
    the source would now come out otherwise (another Python's ast, an older kevolve)."""
    store = Store(path)
    older = Candidate("x = 3\n", (), "llm:m-1", id="0123456789abcdef")
    store.save_candidate(older)
    store = reopened(path, store)
    assert store.candidate("0123456789abcdef").id == "0123456789abcdef"
    store.close()


def test_a_plan_keeps_its_order_and_its_own_state_per_generation(path: Path) -> None:
    store = Store(path)
    store.save_plan(4, ["c", "a", "b"], {"rng": 1})
    store.save_plan(5, ["d"], {"rng": 2})
    store.save_plan(4, ["e", "f"], {"rng": 3})  # planned again: replaces the old plan
    store = reopened(path, store)
    assert store.plan(4) == (["e", "f"], {"rng": 3})
    assert store.plan(5) == (["d"], {"rng": 2})
    assert store.plan(6) is None
    store.close()


def test_a_state_file_from_before_plan_states_gives_its_newest_plan(path: Path) -> None:
    store = Store(path)
    store.save_plan(2, ["a", "b"], {})
    store.close()
    with sqlite3.connect(path) as db:  # as an older kevolve left it
        db.execute("DELETE FROM plan_states")
        db.execute(
            "INSERT INTO meta VALUES ('planned', ?)", ('{"generation": 2, "state": {"rng": 9}}',)
        )
    store = Store(path)
    assert store.plan(2) == (["a", "b"], {"rng": 9})
    assert store.plan(1) is None
    store.close()


def test_an_evaluation_is_kept_per_candidate_and_hardware(path: Path) -> None:
    store = Store(path)
    store.save_evaluation("c1", "cpu", EVALUATION)
    store = reopened(path, store)
    assert store.evaluation("c1", "cpu") == EVALUATION
    assert store.evaluation("c1", "h100") is None and store.evaluation("c2", "cpu") is None
    assert evaluated_count(path) == 1
    store.close()


def test_a_profile_or_why_none_was_taken_is_kept(path: Path) -> None:
    store = Store(path)
    store.save_profile("c1", "h100", PROFILE)
    store.save_profile("c2", "h100", None, "ncu: permission denied")
    store.save_profile("c3", "h100", None)
    store = reopened(path, store)
    assert store.profile("c1", "h100") == (PROFILE, "")
    assert store.profile("c2", "h100") == (None, "ncu: permission denied")
    assert store.profile("c3", "h100") == (None, "")
    assert store.profile("c1", "a100") is None
    with sqlite3.connect(path) as db:
        errors = db.execute("SELECT candidate_id, error FROM profiles ORDER BY 1").fetchall()
    assert errors == [("c1", None), ("c2", "ncu: permission denied"), ("c3", None)]
    store.close()


def test_exchanges_come_back_in_key_order_with_their_candidates(path: Path) -> None:
    store = Store(path)
    first = Exchange(
        "s-g001-s01",
        "m-1",
        ({"role": "user", "content": "make it faster"},),
        "```python\nx = 1\n```",
        None,
        120,
        45,
        0.0123,
        "Fewer passes.",
    )
    failed = Exchange("s-g001-s00", "m-2", ({"role": "user", "content": "again"},), None, "timeout")
    store.save_exchange(1, first, "c1")
    store.save_exchange(1, failed, None)
    store = reopened(path, store)
    assert store.exchanges() == [(None, failed), ("c1", first)]
    assert store.exchanges("c1") == [("c1", first)]
    assert store.exchanges("c9") == []
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT generation FROM exchanges").fetchall() == [(1,), (1,)]
    store.close()


def test_the_newest_checkpoint_is_the_resume_point(path: Path) -> None:
    store = Store(path)
    store.save_checkpoint(1, {"best": "a"})
    store.save_checkpoint(3, {"best": "c"})
    store.save_checkpoint(2, {"best": "b"})
    store = reopened(path, store)
    assert store.last_checkpoint() == (3, {"best": "c"})
    store.close()


def test_a_write_that_fails_leaves_nothing_behind(path: Path) -> None:
    store = Store(path)
    with pytest.raises(TypeError):
        store.save_plan(1, ["a", "b"], {"unserializable": object()})
    assert store.plan(1) is None  # the plan's rows were rolled back with its state
    store.save_plan(1, ["c"], {})  # and the file takes the next write
    assert store.plan(1) == (["c"], {})
    store.close()


def test_the_evaluated_count_of_a_missing_or_unfinished_file_is_zero(path: Path) -> None:
    assert evaluated_count(path) == 0
    path.parent.mkdir(parents=True)
    path.write_bytes(b"")  # created, not yet initialized
    assert evaluated_count(path) == 0


def test_the_file_survives_a_crash_between_writes(path: Path) -> None:
    """Each write commits by itself: what a killed search wrote is there without a close."""
    store = Store(path)
    store.save_evaluation("c1", "cpu", EVALUATION)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        assert db.execute("SELECT COUNT(*) FROM evaluations").fetchone() == (1,)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    store.close()
