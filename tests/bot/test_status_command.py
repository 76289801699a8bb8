"""`kevolve status`: a search's standing read from its state file, through the real command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.proposal import Exchange
from kevolve.harness.search.store import Store

ROOT = Path(__file__).resolve().parents[2]


def status(*args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "status", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)


def a_search(path: Path) -> tuple[str, str]:
    """A state file as a search leaves it: a seed, a better LLM child folded, one reply that
    produced nothing, and one evaluation of a generation still in flight."""
    store = Store(path)
    store.bind({"problem": "softmax", "seed": 0, "hardware": "cuda"})
    seed, child, later = (
        Candidate("a = 1\n"),
        Candidate("a = 2\n", proposer="llm:m"),
        Candidate("a = 3\n"),
    )
    for c in (seed, child, later):
        store.save_candidate(c)
        store.save_evaluation(c.id, "cuda", Evaluation(Verdict.CORRECT, "ok", "softmax", "cuda"))
    message = ({"role": "user", "content": "p"},)
    store.save_exchange(1, Exchange("softmax-g001-s00", "m", message, "r"), child.id)
    store.save_exchange(1, Exchange("softmax-g001-s01", "m", message, "?", "no module"), None)
    history = [
        {"evaluated": 1, "candidate": seed.id, "verdict": "correct", "score": 1.0},
        {"evaluated": 2, "candidate": child.id, "verdict": "correct", "score": 1.3},
    ]
    state = {
        "generation": 1,
        "evaluated": 2,
        "counts": {"correct": 2},
        "history": history,
        "best": child.id,
        "elapsed_s": 61.2,
        "tokens": 12345,
        "cost_usd": 0.42,
        "repair_counts": [1, 1],
    }
    store.save_checkpoint(1, state)
    store.close()
    return seed.id, child.id


def test_status_says_where_a_search_stands(tmp_path: Path) -> None:
    _, child = a_search(tmp_path / "s.sqlite")
    done = status(str(tmp_path / "s.sqlite"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "search: softmax on cuda",
        "generation 1: 2 judged (correct 2); 1 more stored from a generation in flight",
        f"best: {child} from llm:m, score 1.300",
        "time: 61 s; LLM: 12,345 tokens, $0.42; 2 prompts answered (1 gave nothing); "
        "repairs: 1 judged, 1 correct",
    ]
    data = json.loads(status(str(tmp_path / "s.sqlite"), "--json").stdout)
    assert (data["evaluated"], data["stored"], data["best"], data["spoiled"]) == (2, 3, child, 1)


def test_a_search_before_its_first_checkpoint_has_no_best_yet(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.bind({"problem": "rmsnorm", "seed": 0, "hardware": "cpu"})
    store.close()
    done = status(str(tmp_path / "s.sqlite"))
    assert done.returncode == 0, done.stderr
    assert "generation 0: 0 judged (none yet)" in done.stdout and "best: none yet" in done.stdout


def test_a_missing_or_foreign_file_is_a_usage_error(tmp_path: Path) -> None:
    missing = status(str(tmp_path / "nope.sqlite"))
    assert missing.returncode == 2 and "no state file there" in missing.stderr
    assert not (tmp_path / "nope.sqlite").exists()  # read-only: nothing created
    (tmp_path / "notes.txt").write_text("hello\n")
    foreign = status(str(tmp_path / "notes.txt"))
    assert foreign.returncode == 2 and "is not a kevolve search's state file" in foreign.stderr
    assert "Traceback" not in foreign.stderr


def test_a_folder_shows_every_search_in_it_and_source_prints_the_best(tmp_path: Path) -> None:
    _, child = a_search(tmp_path / "softmax.sqlite")
    store = Store(tmp_path / "rmsnorm.sqlite")
    store.bind({"problem": "rmsnorm", "seed": 0, "hardware": "cuda"})
    store.close()
    (tmp_path / "notes.sqlite").write_bytes(b"not a database")  # skipped in a folder
    done = status(str(tmp_path), "--source")
    assert done.returncode == 0, done.stderr
    blocks = done.stdout.split("\n\n")
    assert blocks[0].startswith("search: rmsnorm on cuda")
    assert blocks[1].startswith("search: softmax on cuda")
    assert blocks[2] == f"best candidate's source ({child}):"
    assert blocks[3] == "a = 2\n"
    data = json.loads(status(str(tmp_path), "--json").stdout)
    assert [d["problem"] for d in data] == ["rmsnorm", "softmax"]
    assert "best_source" not in data[1]
