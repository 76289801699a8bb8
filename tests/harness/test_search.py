"""The search end to end: the real `openai` client against a scripted loopback server, and the
harness judging every proposal on CPU (Triton's interpreter)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.search.campaign import OptimizeOptions, baseline_source, summarize
from kevolve.harness.search.engine import Search, SearchConfig
from kevolve.harness.search.islands import IslandsConfig
from kevolve.harness.search.llm import LLMConfig, LLMProposer
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.store import StateMismatch, Store
from kevolve.harness.spec.load import load_problems

from tests.fakes.llm_server import FakeLLMServer, error

ROOT = Path(__file__).resolve().parents[2]
GOOD = (ROOT / "tests" / "corpus" / "kernelbench" / "softmax__good_online.py").read_text()
COMPILE_ERROR = GOOD.replace("offs = tl.arange(0, BLOCK)", "offs = tl.arange(0, n_cols)")
WRONG = GOOD.replace("(tl.exp(x - m) / d)", "(tl.exp(x - m) / (d + 1.0))")
CHEAT = GOOD.replace(
    "        n_rows, n_cols = x.shape\n", "        return torch.softmax(x, dim=1)\n"
)
GOOD_SMALLER = GOOD.replace("BLOCK = 512", "BLOCK = 256")


def fenced(source: str) -> str:
    return f"Here is the kernel.\n```python\n{source}```\n"


def test_a_search_survives_bad_replies_and_judges_every_proposal(tmp_path: Path) -> None:
    [problem] = load_problems(ROOT / "examples" / "kernelbench" / "softmax.py")
    script = [
        error(429, "slow down"),
        fenced(GOOD),  # retried, then correct
        fenced(COMPILE_ERROR),
        fenced(WRONG),
        fenced(CHEAT),
        error(500, "boom"),
        "I cannot help with that.",  # retried, then no code: no proposal
        "",  # an empty reply: no proposal
        fenced(GOOD_SMALLER),
    ]
    sleeps: list[float] = []
    with FakeLLMServer(script) as server:
        config = LLMConfig(
            base_url=server.base_url,
            models=(("fake-model", 1.0),),
            api_key="test-key",
            max_retries=1,
            backoff_s=0.5,
        )
        llm = LLMProposer(
            config, PromptBuilder(ROOT / "templates" / "prompts"), sleep=sleeps.append
        )
        # Generations of two; the third is planned after the first is folded (one overlaps).
        search_config = SearchConfig(
            budget=6, per_generation=2, parallel=1, seed=1, database=IslandsConfig(islands=2)
        )
        store = Store(tmp_path / "state.sqlite")
        search = Search(
            problem,
            baseline_source(problem),
            search_config,
            [(llm, 1.0)],
            lambda p, s: evaluate(p, s, EvalOptions(device="cpu", timeout=60)),
            store,
        )
        status = search.run()
        store.close()
    verdicts = {h["candidate"]: h["verdict"] for h in status.history}
    expected = {"rejected": 2, "correct": 2, "compile_error": 1, "incorrect": 1}
    assert dict(status.counts) == expected, verdicts
    assert status.evaluated == sum(expected.values()) == len(verdicts)
    assert status.best is not None and status.best.candidate.source.strip() in (
        GOOD.strip(),
        GOOD_SMALLER.strip(),
    )
    # One backoff each for the 429 and the 500; later slots find the script exhausted (500s).
    assert sleeps[:2] == [0.5, 0.5] and set(sleeps) == {0.5}
    assert llm.usage.failures >= 2 and llm.usage.prompt_tokens > 0
    options = OptimizeOptions(
        search=search_config,
        evaluation=EvalOptions(device="cpu"),
        state=tmp_path / "state.sqlite",
        llm=config,
    )
    result = summarize(problem, status, [(llm, 1.0)], options).to_dict()
    assert result["counts"] == expected and result["evaluated"] == 6
    rate = result["throughput"]
    assert rate["evaluations_per_hour"] > 0 and rate["timing_fraction"] == 0.0  # nothing timed
    assert result["best"]["proposer"] == "llm:fake-model"
    assert not result["publish_gate"]["passed"]
    assert "nothing was timed" in " ".join(result["publish_gate"]["reasons"])
    # The prompts carried the diagnostics of earlier failures to the model.
    assert any("compile_error" in str(r["messages"]) for r in server.requests[3:])


def test_a_state_file_of_another_search_is_refused(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.bind({"problem": "softmax", "seed": 0, "hardware": "cpu"})
    with pytest.raises(StateMismatch, match="differs in seed"):
        store.bind({"problem": "softmax", "seed": 1, "hardware": "cpu"})
    store.close()


def test_seeded_random_state_survives_the_store(tmp_path: Path) -> None:
    rng = random.Random(5)
    rng.random()
    version, internal, gauss = rng.getstate()
    store = Store(tmp_path / "s.sqlite")
    store.save_checkpoint(0, {"rng": [version, list(internal), gauss]})
    store.close()
    _, state = Store(tmp_path / "s.sqlite").last_checkpoint() or (0, {})
    again = random.Random()
    v, i, g = state["rng"]
    again.setstate((v, tuple(i), g))
    assert again.random() == rng.random()
