"""The planner stops asking once the LLM's cost reaches the cap, within a generation."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from kevolve.harness.search.islands import Islands, IslandsConfig
from kevolve.harness.search.planner import Brief, Planner
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Usage:
    cost_usd: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class PricedModel:
    """A proposer whose every ask costs one dollar and yields a new module."""

    name = "llm:priced"

    def __init__(self) -> None:
        self.usage = Usage()
        self.asks = 0

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        self.asks += 1
        self.usage.cost_usd += 1.0
        return [Proposal(f"{ctx.baseline_source}ASK_{self.asks} = 1\n", (), self.name)]

    def drain(self) -> Drained:
        return Drained()


def plan_with_cap(tmp_path: Path, cap: float | None) -> PricedModel:
    problem = next(p for p in load_problems(ROOT / "examples/demo") if p.name == "softmax")
    source = problem.kernel_path.read_text() if problem.kernel_path else ""
    brief = Brief(problem, source, 3, 2, True, "cpu", "", max_usd=cap)
    model = PricedModel()
    store = Store(tmp_path / "state.sqlite")
    rng = random.Random(0)
    planned = Planner(brief, [(model, 1.0)], store).plan(
        1, 8, Islands(IslandsConfig(islands=1), rng), rng, None
    )
    store.close()
    assert len(planned) == model.asks
    return model


def test_a_plan_stops_asking_at_the_cost_cap(tmp_path: Path) -> None:
    assert plan_with_cap(tmp_path, 2.5).asks == 3  # the ask that crossed the cap is the last


def test_without_a_cap_a_plan_fills_its_generation(tmp_path: Path) -> None:
    assert plan_with_cap(tmp_path, None).asks == 8
