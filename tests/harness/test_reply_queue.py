"""A reply-queue search through `kevolve optimize` as a person runs it: the command writes its
prompts and exits 75 until replies come, goes on when rerun, asks for repairs of failed candidates
up to `--repairs` turns, survives a SIGKILL while it judges, stops at `--max-usd`, and refuses bad
LLM flags. The demo softmax is judged on CPU (Triton's interpreter); every search here starts
from one paused search, copied, so the seed is judged once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.proposal import Exchange
from kevolve.harness.search.store import Store, evaluated_count

from tests.bot.processes import alive, descendants, eventually

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
SEED = (DEMO / "demo_kernels" / "softmax.py").read_text()
PAUSED = 75  # kevolve optimize's exit status while replies are missing

LAUNCH = "        BLOCK=triton.next_power_of_2(n_cols),\n"
GOOD = SEED.replace(LAUNCH, LAUNCH + "        num_warps=8,\n")
BROKEN = SEED.replace("    x = x.to(tl.float32)\n", "    x = x.to(tl.float32) + undefined_offset\n")
STILL_BROKEN = BROKEN.replace("undefined_offset", "still_undefined")
GOOD_REPLY = (
    "More warps per row hide the load latency.\n"
    "<<<<<<< SEARCH\n        BLOCK=triton.next_power_of_2(n_cols),\n=======\n"
    "        BLOCK=triton.next_power_of_2(n_cols),\n        num_warps=8,\n>>>>>>> REPLACE\n"
)
PROSE_REPLY = "I would try a larger block and more warps, but I am not sure how.\n"
BROKEN_REPLY = (
    "Shift the row by an offset before the exponent.\n"
    "<<<<<<< SEARCH\n    x = x.to(tl.float32)\n=======\n"
    "    x = x.to(tl.float32) + undefined_offset\n>>>>>>> REPLACE\n"
)
STILL_BROKEN_REPLY = (
    "Name the offset properly.\n"
    "<<<<<<< SEARCH\n    x = x.to(tl.float32) + undefined_offset\n=======\n"
    "    x = x.to(tl.float32) + still_undefined\n>>>>>>> REPLACE\n"
)
FIRST = {  # generation 1: a good edit, prose only, a compile error
    "softmax-g001-s00": GOOD_REPLY,
    "softmax-g001-s01": PROSE_REPLY,
    "softmax-g001-s02": BROKEN_REPLY,
}
SECOND = {  # generation 2: the repair of the compile error fails again; the rest is prose
    "softmax-g002-s00": STILL_BROKEN_REPLY,
    "softmax-g002-s01": PROSE_REPLY,
    "softmax-g002-s02": PROSE_REPLY,
}
NO_CODE = "reply holds no SEARCH/REPLACE edit that applies and no parseable module"


@dataclass(frozen=True)
class Ran:
    """A search folder (queue/, state.sqlite, result.json) and how its last command ended."""

    folder: Path
    done: subprocess.CompletedProcess[str]


def argv(folder: Path, *extra: str) -> list[str]:
    """`kevolve optimize` on the demo softmax with a reply queue, its state and result in
    `folder`."""
    return [
        sys.executable,
        "-m",
        "kevolve.bot.commands.cli",
        "optimize",
        str(DEMO),
        "--op",
        "softmax",
        "--device",
        "cpu",
        "--llm-queue",
        str(folder / "queue"),
        "--state",
        str(folder / "state.sqlite"),
        "--llm-share",
        "1",
        "--per-generation",
        "3",
        "--parallel",
        "1",
        "--budget",
        "8",
        "--out",
        str(folder / "result.json"),
        *extra,
    ]


def cli_env(folder: Path) -> dict[str, str]:
    """This environment without any LLM settings of the person running the tests (they would
    name a second transport), with the cache in `folder`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_LLM")}
    return env | {"KEVOLVE_CACHE_DIR": str(folder / "cache")}


def optimize(folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run the command to its end."""
    return subprocess.run(
        argv(folder, *extra),
        cwd=ROOT,
        env=cli_env(folder),
        capture_output=True,
        text=True,
        timeout=300,
    )


def copy(search: Path, to: Path) -> Path:
    """A copy of a search folder (state and queue) to go on from."""
    shutil.copytree(search, to, ignore=shutil.ignore_patterns("cache"))
    return to


def answer(
    folder: Path, replies: Mapping[str, str], usage: Mapping[str, dict[str, Any]] | None = None
) -> None:
    """Write replies (and reply sidecars) into the queue, as a person or a batch job would."""
    for key, text in replies.items():
        (folder / "queue" / "replies" / f"{key}.md").write_text(text)
    for key, data in (usage or {}).items():
        (folder / "queue" / "replies" / f"{key}.json").write_text(json.dumps(data))


def keys(generation: int) -> list[str]:
    """The prompt keys of a generation of three."""
    return [f"softmax-g{generation:03d}-s{slot:02d}" for slot in range(3)]


def prompt(folder: Path, key: str) -> str:
    return (folder / "queue" / "prompts" / f"{key}.md").read_text()


def sidecar(folder: Path, key: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "queue" / "prompts" / f"{key}.json").read_text())
    return data


def result(folder: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((folder / "result.json").read_text())
    return data


def outcome(folder: Path) -> dict[str, object]:
    """What two runs of the same search must agree on."""
    r = result(folder)
    return {
        "evaluated": r["evaluated"],
        "counts": r["counts"],
        "history": [(h["candidate"], h["verdict"]) for h in r["history"]],
        "waiting": r["waiting"],
        "stop_reason": r["stop_reason"],
    }


def exchanges(folder: Path) -> dict[str, tuple[str | None, Exchange]]:
    """The state's exchanges by key, with the candidate each produced."""
    store = Store(folder / "state.sqlite")
    try:
        return {e.key: (cid, e) for cid, e in store.exchanges()}
    finally:
        store.close()


def evaluations(state: Path) -> dict[str, str]:
    with sqlite3.connect(state) as db:
        return dict(db.execute("SELECT candidate_id, evaluation FROM evaluations").fetchall())


def text_of(messages: tuple[dict[str, str], ...]) -> str:
    """Messages as the one text a queued prompt file holds."""
    return "\n\n".join(m["content"].rstrip("\n") for m in messages) + "\n"


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """A fresh search: the seed judged, generation 1's prompts written, no replies yet."""
    folder = tmp_path_factory.mktemp("paused")
    return Ran(folder, optimize(folder))


@pytest.fixture(scope="module")
def answered(paused: Ran, tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """The paused search rerun once generation 1's replies were written."""
    folder = copy(paused.folder, tmp_path_factory.mktemp("answered") / "search")
    answer(folder, FIRST)
    return Ran(folder, optimize(folder))


def test_a_new_search_writes_its_prompts_and_exits_75_until_replies_come(paused: Ran) -> None:
    done, queue = paused.done, paused.folder / "queue"
    assert done.returncode == PAUSED, done.stderr
    assert (
        f"kevolve: paused: waiting for 3 replies in {queue / 'replies'} (prompts in "
        f"{queue / 'prompts'}, e.g. softmax-g001-s00.md); write each reply whole as <key>.md there"
    ) in done.stderr
    assert done.stdout == ""
    written = sorted(p.name for p in (queue / "prompts").iterdir())
    assert written == sorted(f"{k}{suffix}" for k in keys(1) for suffix in (".json", ".md"))
    assert list((queue / "replies").iterdir()) == []
    for key in keys(1):
        about = sidecar(paused.folder, key)
        assert (about["key"], about["search"], about["generation"]) == (key, "softmax", 1)
        assert (about["parent"], about["repair_of"], about["repair_turn"]) == (
            candidate_id(SEED),
            None,
            0,
        )
        assert "make `softmax` faster" in prompt(paused.folder, key)
        assert SEED.rstrip("\n") in prompt(paused.folder, key)  # the program to edit
    r = result(paused.folder)
    assert (r["evaluated"], r["counts"], r["waiting"]) == (1, {"correct": 1}, keys(1))
    assert (r["stop"], r["stop_reason"]) == ("paused", "waiting for 3 replies")
    assert r["llm"]["transport"] == "queue" and r["llm"]["queue"] == str(queue)


def test_replies_are_judged_and_the_compile_error_gets_a_repair_prompt(answered: Ran) -> None:
    done, folder = answered.done, answered.folder
    assert done.returncode == PAUSED, done.stderr
    assert "kevolve: paused: waiting for 3 replies in" in done.stderr
    assert "e.g. softmax-g002-s00.md" in done.stderr
    r = result(folder)
    assert (r["evaluated"], r["counts"]) == (3, {"correct": 2, "compile_error": 1})
    assert r["waiting"] == keys(2)
    judged = [h["candidate"] for h in r["history"]]
    assert judged == [candidate_id(SEED), candidate_id(GOOD), candidate_id(BROKEN)]

    repair = sidecar(folder, "softmax-g002-s00")
    assert (repair["generation"], repair["repair_of"], repair["repair_turn"]) == (
        2,
        candidate_id(BROKEN),
        1,
    )
    text = prompt(folder, "softmax-g002-s00")
    assert "## Fix this program (repair turn 1)" in text
    assert f"Your earlier candidate {candidate_id(BROKEN)} was judged `compile_error`" in text
    assert "NameError(\"name 'undefined_offset' is not defined\")" in text  # the compiler's word
    assert f"```python\n{BROKEN.rstrip()}\n```" in text  # the program to fix
    for key in keys(2)[1:]:
        assert (sidecar(folder, key)["repair_of"], sidecar(folder, key)["repair_turn"]) == (None, 0)
        assert "## Fix this program" not in prompt(folder, key)


def test_the_state_keeps_each_prompt_and_reply_with_the_candidate_it_produced(
    answered: Ran,
) -> None:
    folder = answered.folder
    found = exchanges(folder)
    assert sorted(found) == keys(1)  # generation 2's prompts have no reply yet
    for key in keys(1):
        _, exchange = found[key]
        assert text_of(exchange.messages) == prompt(folder, key)  # the prompt, as written
        assert [m["role"] for m in exchange.messages] == ["system", "user"]  # rebuilt the same
        assert (exchange.reply, exchange.model) == (FIRST[key], "queue")
    good, prose, broken = (found[k] for k in keys(1))
    assert good[0] == candidate_id(GOOD) and good[1].error is None
    assert good[1].rationale == "More warps per row hide the load latency."
    assert prose[0] is None
    assert prose[1].error == f"{NO_CODE} ({len(PROSE_REPLY)} characters)"
    assert broken[0] == candidate_id(BROKEN) and broken[1].error is None
    store = Store(folder / "state.sqlite")
    try:
        made = store.candidate(candidate_id(BROKEN))
        assert (made.source, made.proposer, made.generation) == (BROKEN, "llm:queue", 1)
        assert made.parents == (candidate_id(SEED),)
        assert store.exchanges(candidate_id(GOOD)) == [(candidate_id(GOOD), good[1])]
    finally:
        store.close()


def test_a_search_killed_while_it_judges_resumes_to_the_uninterrupted_outcome(
    paused: Ran, answered: Ran, tmp_path: Path
) -> None:
    folder = copy(paused.folder, tmp_path / "search")
    answer(folder, FIRST)
    state = folder / "state.sqlite"
    with open(tmp_path / "killed.stderr", "wb") as stderr:
        proc = subprocess.Popen(
            argv(folder),
            cwd=ROOT,
            env=cli_env(folder),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        # The seed is judged already: a second evaluation is the first candidate's.
        judging = eventually(lambda: evaluated_count(state) >= 2 or proc.poll() is not None, 240)
        assert judging and proc.poll() is None, "the search ended before it could be killed"
        judges = descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert eventually(lambda: not any(alive(pid) for pid in judges), timeout=30)
    before = evaluations(state)
    assert len(before) == 2  # the seed and the good edit; the compile error was next

    done = optimize(folder)
    assert done.returncode == PAUSED, done.stderr
    after = evaluations(state)
    assert {k: after[k] for k in before} == before  # nothing finished was judged again
    assert len(after) == 3
    assert outcome(folder) == outcome(answered.folder)
    links = {k: (cid, e.reply, e.error) for k, (cid, e) in exchanges(folder).items()}
    assert links == {
        k: (cid, e.reply, e.error) for k, (cid, e) in exchanges(answered.folder).items()
    }
    assert sorted(p.name for p in (folder / "queue" / "prompts").iterdir()) == sorted(
        p.name for p in (answered.folder / "queue" / "prompts").iterdir()
    )


def test_with_one_repair_turn_a_repair_that_fails_again_gets_no_second(
    paused: Ran, tmp_path: Path
) -> None:
    folder = copy(paused.folder, tmp_path / "search")
    answer(folder, FIRST)
    first = optimize(folder, "--repairs", "1")
    assert first.returncode == PAUSED, first.stderr
    assert sidecar(folder, "softmax-g002-s00")["repair_turn"] == 1  # the one turn is given
    answer(folder, SECOND)
    done = optimize(folder, "--repairs", "1")
    assert done.returncode == PAUSED, done.stderr
    r = result(folder)
    assert (r["evaluated"], r["counts"]) == (4, {"correct": 2, "compile_error": 2})
    assert (r["llm"]["repairs_judged"], r["llm"]["repairs_correct"]) == (1, 0)
    assert r["waiting"] == keys(3)
    assert exchanges(folder)["softmax-g002-s00"][0] == candidate_id(STILL_BROKEN)
    turns = [(sidecar(folder, k)["repair_of"], sidecar(folder, k)["repair_turn"]) for k in keys(3)]
    assert turns == [(None, 0)] * 3
    assert all("## Fix this program" not in prompt(folder, k) for k in keys(3))


def test_by_default_a_repair_that_fails_again_gets_a_second_turn(
    answered: Ran, tmp_path: Path
) -> None:
    folder = copy(answered.folder, tmp_path / "search")
    answer(folder, SECOND)
    done = optimize(folder)
    assert done.returncode == PAUSED, done.stderr
    store = Store(folder / "state.sqlite")
    try:
        repaired = store.candidate(candidate_id(STILL_BROKEN))
    finally:
        store.close()
    assert (repaired.proposer, repaired.parents) == ("llm:queue:repair", (candidate_id(BROKEN),))
    about = sidecar(folder, "softmax-g003-s00")
    assert (about["repair_of"], about["repair_turn"]) == (candidate_id(STILL_BROKEN), 2)
    text = prompt(folder, "softmax-g003-s00")
    assert "## Fix this program (repair turn 2)" in text
    assert "still_undefined" in text


def test_the_search_stops_at_the_cost_cap_priced_by_the_replying_model(
    paused: Ran, tmp_path: Path
) -> None:
    folder = copy(paused.folder, tmp_path / "search")
    tokens = {"model": "gpt-x", "prompt_tokens": 1000, "completion_tokens": 500}
    replies = {"softmax-g001-s00": BROKEN_REPLY, "softmax-g001-s01": PROSE_REPLY}
    replies["softmax-g001-s02"] = PROSE_REPLY
    answer(folder, replies, {"softmax-g001-s00": tokens, "softmax-g001-s01": tokens})
    done = optimize(folder, "--max-usd", "0.01", "--llm-price", "gpt-x=2,10")
    assert done.returncode == 0, done.stderr
    each = (1000 * 2 + 500 * 10) / 1e6  # 0.007 USD: the cap holds one reply, not two
    r = result(folder)
    assert (r["stop"], r["stop_reason"]) == ("cost", "the LLM cost cap of 0.01 USD reached")
    assert (r["evaluated"], r["waiting"]) == (2, [])
    llm = r["llm"]
    assert llm["cost_usd"] == pytest.approx(2 * each)
    assert llm["by_model"]["gpt-x"] == {
        "replies": 2,
        "tokens": 3000,
        "cost_usd": pytest.approx(2 * each),
    }
    # The cap was reached within the plan: the third reply is never read, nothing more is spent.
    assert "queue" not in llm["by_model"]
    assert not list((folder / "queue" / "prompts").glob("softmax-g002-*"))  # nothing more asked


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--llm-command", "agent --print"],
            "kevolve: error: --llm-command and --llm-queue both name an LLM transport. "
            "Fix: keep one",
        ),
        (
            ["--llm-price", "gpt-x=2.5"],
            "kevolve: error: --llm-price 'gpt-x=2.5' is not MODEL=IN,OUT. Fix: e.g. "
            "--llm-price gpt-x=2.5,10 (USD per million input and output tokens)",
        ),
        (
            ["--llm-price", "gpt-x=-1,10"],
            "kevolve: error: --llm-price 'gpt-x=-1,10' is not MODEL=IN,OUT.",
        ),
        (["--repairs", "-1"], "error: argument --repairs: must be at least 0, not -1"),
        (["--llm-share", "0"], "kevolve: error: --llm-share must be in (0, 1], not 0"),
        (["--max-usd", "0"], "error: argument --max-usd: must be a number above 0, not 0"),
        (["--minutes", "-5"], "error: argument --minutes: must be a number above 0, not -5"),
        (["--patience", "-1"], "error: argument --patience: must be at least 1, not -1"),
        (["--max-tokens", "-1"], "error: argument --max-tokens: must be at least 1, not -1"),
        (["--timeout", "-3"], "error: argument --timeout: must be a number above 0, not -3"),
        (["--budget", "0"], "error: argument --budget: must be at least 1, not 0"),
        (["--min-speedup", "0.5"], "kevolve: error: --min-speedup must be at least 1.0, not 0.5"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(tmp_path: Path, extra: list[str], message: str) -> None:
    done = optimize(tmp_path, *extra)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.sqlite").exists() and not (tmp_path / "queue").exists()
