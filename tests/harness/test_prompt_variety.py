"""No two prompts of one generation's plan are the same text: a request that would repeat an
earlier one (same program shown, same failures) names an optimization direction, in turn from the
list; the first request keeps today's text, and a resumed plan writes the very same prompts.
Prompts go through the real `LLMProposer` and `PromptBuilder` into a reply queue."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.direction import DIRECTIONS, steer
from kevolve.harness.search.islands import Islands, IslandsConfig
from kevolve.harness.search.llm import LLMConfig, LLMProposer
from kevolve.harness.search.planner import Brief, Planner
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.status import RepliesPending
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
PROBLEM = next(p for p in load_problems(ROOT / "examples/demo") if p.name == "softmax")
SEED = (ROOT / "examples/demo/demo_kernels/softmax.py").read_text()
SECTION = re.compile(r"\n## Direction\n\nThis request's direction: [^\n]+\n[^\n]+\n")


def elite(n: int, score: float = 1.0, island: int | None = None) -> Elite:
    """Correct program number `n`, on island `n` unless told."""
    ev = Evaluation(Verdict.CORRECT, "correct", "softmax", "cpu")
    where = n if island is None else island
    return Elite(Candidate(f"{SEED}VARIANT = {n}\n", island=where), score, ev)


def database(islands: int, elites: bool, seed: int = 0) -> Islands:
    """`islands` islands, each holding one program of its own (or none)."""
    db = Islands(IslandsConfig(islands=islands), random.Random(seed))
    for i in range(islands if elites else 0):
        db.register(elite(i).candidate.id)
        db.add(elite(i))
    return db


def plan(
    folder: Path, db: Islands, rng: random.Random, wanted: int, broken: str | None = None
) -> list[str]:
    """Generation 1 planned into a reply queue in `folder` (after the LLM's `broken` candidate
    on island 0 failed to compile, when given); its prompt texts in slot order."""
    llm = LLMProposer(
        LLMConfig(models=(("queue", 1.0),), queue=folder), PromptBuilder(ROOT / "templates/prompts")
    )
    store = Store(folder.parent / f"{folder.name}.sqlite")
    planner = Planner(Brief(PROBLEM, SEED, 3, 2, True, "cpu", ""), [(llm, 1.0)], store)
    if broken is not None:
        failed = Candidate(broken, proposer="llm:queue")
        ev = Evaluation(Verdict.COMPILE_ERROR, "NameError: name 'oops' is not defined", "x", "cpu")
        store.save_candidate(failed)
        store.save_evaluation(failed.id, "cpu", ev)
        planner.failed(failed, ev)
    try:
        with pytest.raises(RepliesPending) as paused:
            planner.plan(1, wanted, db, rng, None)
    finally:
        store.close()
    keys = [f"softmax-g001-s{s:02d}" for s in range(wanted)]
    assert paused.value.keys == keys
    files = sorted((folder / "prompts").glob("*.md"))
    assert [f.stem for f in files] == keys
    return [f.read_text() for f in files]


def directions(prompts: list[str]) -> list[str | None]:
    """Each prompt's direction line, or None."""
    found = [re.search(r"^This request's direction: (.+)\.$", p, re.MULTILINE) for p in prompts]
    return [m.group(1) if m else None for m in found]


def test_eight_slots_over_four_islands_ask_eight_different_prompts(tmp_path: Path) -> None:
    prompts = plan(tmp_path / "queue", database(4, elites=True), random.Random(0), 8)
    assert len(set(prompts)) == 8
    # Each island's second request names a direction, each island starting one further along.
    assert directions(prompts) == [None] * 4 + list(DIRECTIONS[:4])
    for first, repeat in zip(prompts[:4], prompts[4:], strict=True):
        assert "## Direction" not in first
        assert SECTION.sub("", repeat, count=1) == first  # the repeat adds one section, no more
        assert (
            "Another request for the same program explores a different direction; "
            "propose a change along this one.\n\n## Rules of the harness" in repeat
        )


def test_islands_showing_the_same_program_still_ask_different_prompts(tmp_path: Path) -> None:
    # Empty islands all show the repository's kernel: the same text but for the direction.
    prompts = plan(tmp_path / "queue", database(4, elites=False), random.Random(0), 4)
    assert len(set(prompts)) == 4
    assert directions(prompts) == [None, *DIRECTIONS[:3]]
    assert all(SECTION.sub("", p, count=1) == prompts[0] for p in prompts)


def test_past_the_end_of_the_list_a_second_round_begins(tmp_path: Path) -> None:
    wanted = len(DIRECTIONS) + 3
    prompts = plan(tmp_path / "queue", database(1, elites=True), random.Random(0), wanted)
    assert len(set(prompts)) == wanted
    assert directions(prompts) == [None, *DIRECTIONS, DIRECTIONS[0], DIRECTIONS[1]]
    second = prompts[len(DIRECTIONS) + 1]
    assert "cover every direction, 1 of them this one too; propose a less obvious change" in second
    assert "Another request" not in second


def test_a_resumed_plan_writes_the_same_prompts(tmp_path: Path) -> None:
    # One island of four programs, three shown per prompt: the rng picks which, and eight
    # slots must repeat some of its four choices.
    programs = [elite(i, score=1.0 + i / 10, island=0) for i in range(4)]
    rng = random.Random(7)  # one generator for the database and the planner, as a search has
    db = Islands(IslandsConfig(islands=1), rng)
    for e in programs:
        db.register(e.candidate.id)
        db.add(e)
    saved, rng_state = db.to_dict(), rng.getstate()
    first = plan(tmp_path / "first", db, rng, 8)
    assert len(set(first)) == 8 and any(directions(first))
    rng.setstate(rng_state)
    by_id = {e.candidate.id: e for e in programs}
    resumed = Islands.from_dict(saved, IslandsConfig(islands=1), rng, by_id)
    assert plan(tmp_path / "resumed", resumed, rng, 8) == first


def test_a_repair_does_not_count_as_the_first_request_for_its_program(tmp_path: Path) -> None:
    broken = f"{SEED}VARIANT = oops\n"
    prompts = plan(tmp_path / "queue", database(1, elites=True), random.Random(0), 3, broken)
    assert "## Fix this program (repair turn 1)" in prompts[0]
    assert directions(prompts) == [None, None, DIRECTIONS[0]]
    assert len(set(prompts)) == 3


def test_each_repeat_of_a_program_takes_the_next_direction_from_its_start() -> None:
    assert [steer(2, n).focus for n in range(1, 6)] == [*DIRECTIONS[2:], *DIRECTIONS[:2]]
    assert [steer(0, n).round for n in (1, 5, 6, 11)] == [1, 1, 2, 3]
    with pytest.raises(ValueError, match="the first request has no direction"):
        steer(0, 0)
