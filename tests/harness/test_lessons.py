"""Tests for harness.search.lessons: what a search's state teaches, kept and recalled per family,
and shown in later prompts."""

from __future__ import annotations

from pathlib import Path

from kevolve.harness.evaluation import CaseTiming, Evaluation, Timing, Verdict
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.lessons import Lesson, Lessons, diff_summary, learned
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import Exchange, ProposalContext
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
SEED = "import triton\n\nBLOCK = 1024\nWARPS = 4\n"
HW = "cuda"


def timed(ms: float) -> Evaluation:
    """A correct evaluation whose one case took `ms`."""
    timing = CaseTiming([64, 64], "bfloat16", Timing(10, ms, ms, ms, ms))
    return Evaluation(Verdict.CORRECT, "correct", "softmax", "cuda", timed=True, timings=[timing])


def exchange(key: str, rationale: str, error: str | None = None) -> Exchange:
    return Exchange(key, "m", ({"role": "user", "content": "p"},), "r", error, rationale=rationale)


def state(tmp_path: Path) -> Store:
    """A search with a seed and three LLM children: 1.25x faster, 1.01x (noise), and broken."""
    store = Store(tmp_path / "s.sqlite")
    seed = Candidate(SEED)
    store.save_candidate(seed)
    store.save_evaluation(seed.id, HW, timed(1.0))
    children = [
        (SEED.replace("1024", "512"), timed(0.8), "Smaller blocks keep more programs resident."),
        (SEED.replace("WARPS = 4", "WARPS = 8"), timed(0.99), "More warps."),
        (
            SEED + "x = y\n",
            Evaluation(Verdict.COMPILE_ERROR, "y is undefined", "softmax", "cuda"),
            "Fuse the loops.",
        ),
    ]
    for i, (source, ev, why) in enumerate(children):
        child = Candidate(source, (seed.id,), "llm:m", 0, 1)
        store.save_candidate(child)
        store.save_evaluation(child.id, HW, ev)
        store.save_exchange(1, exchange(f"k-{i}", why), child.id)
    store.save_exchange(1, exchange("k-9", "Garbage.", error="no module"), None)
    return store


def test_a_search_teaches_what_beat_its_parent_and_what_failed(tmp_path: Path) -> None:
    store = state(tmp_path)
    lessons = learned(store, HW)
    store.close()
    assert [(x.kind, round(x.gain or 0, 2)) for x in lessons] == [("helped", 1.25), ("failed", 0)]
    helped, failed = lessons
    assert helped.text.startswith("Smaller blocks keep more programs resident. (1 lines changed:")
    assert "`BLOCK = 1024` -> `BLOCK = 512`" in helped.text
    assert failed.text == "Fuse the loops. -> compile_error: y is undefined"


def test_lessons_are_kept_once_and_recalled_per_family_and_hardware(tmp_path: Path) -> None:
    book = Lessons(tmp_path / "lessons.sqlite")
    found = [Lesson("helped", "a", 1.5), Lesson("helped", "b", 2.0), Lesson("failed", "c")]
    assert book.add("row_reduction", "h100", "softmax", found) == 3
    assert book.add("row_reduction", "h100", "rmsnorm", found) == 0  # one text once
    assert book.recall("row_reduction", "h100") == (
        "helped (2.00x over its parent): b",
        "helped (1.50x over its parent): a",
        "failed: c",
    )
    assert book.recall("row_reduction", "a10g") == ()
    assert book.recall("matmul", "h100") == ()
    book.close()
    again = Lessons(tmp_path / "lessons.sqlite")  # a later search, another process
    assert len(again.recall("row_reduction", "h100")) == 3
    again.close()


def test_recalled_lessons_appear_in_the_prompt(tmp_path: Path) -> None:
    problem = next(p for p in load_problems(ROOT / "examples/demo") if p.name == "softmax")
    source = (ROOT / "examples/demo/demo_kernels/softmax.py").read_text()
    ctx = ProposalContext(problem, source, (), None, lessons=("helped (1.25x ...): smaller",))
    prompt = PromptBuilder(ROOT / "templates/prompts").messages(ctx)[1]["content"]
    assert "## Lessons from earlier searches of this kind of op on this hardware\n\n" in prompt
    assert "- helped (1.25x ...): smaller\n" in prompt
    bare = PromptBuilder(ROOT / "templates/prompts").messages(
        ProposalContext(problem, source, (), None)
    )
    assert "Lessons from earlier searches" not in bare[1]["content"]


def test_a_diff_summary_counts_and_shows_the_first_changes() -> None:
    assert diff_summary("a\nb\nc\n", "a\nB\nc\nd\n") == "2 lines changed: `b` -> `B`; `` -> `d`"
    assert diff_summary("same\n", "same\n") == "no change"
