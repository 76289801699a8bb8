"""Tests for harness.search.llm through the real openai client and a scripted loopback server."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from kevolve.harness.search.llm import LLMConfig, LLMProposer
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import ProposalContext

from tests.fakes.llm_server import FakeLLMServer, Response, completion, error
from tests.harness.conftest import MODULE, PARENT
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
EDIT = "Use wider blocks.\n<<<<<<< SEARCH\nBLOCK = 256\n=======\nBLOCK = 1024\n>>>>>>> REPLACE\n"
FULL = f"A one-pass kernel:\n```python\n{MODULE}```\n"


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


class Proposer:
    """An `LLMProposer` on the fake server, with its sleeps recorded instead of slept."""

    def __init__(self, base_url: str, **overrides: object) -> None:
        self.sleeps: list[float] = []
        settings: dict[str, object] = {
            "base_url": base_url,
            "models": (("model-a", 1.0),),
            "api_key": "test-key",
            "timeout_s": 5.0,
            "max_retries": 2,
        }
        config = LLMConfig(**{**settings, **overrides})  # type: ignore[arg-type]
        self.llm = LLMProposer(
            config, PromptBuilder(ROOT / "templates/prompts"), self.sleeps.append
        )


def test_good_reply_becomes_a_proposal(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(EDIT)
    proposer = Proposer(server.base_url, temperature=0.5, max_tokens=1000)
    proposals = proposer.llm.propose(ctx, random.Random(0), 1)
    assert len(proposals) == 1
    assert proposals[0].source == PARENT.replace("BLOCK = 256", "BLOCK = 1024")
    assert proposals[0].parents == (ctx.parents[0].candidate.id,)
    assert proposals[0].proposer == "llm:model-a"
    request = server.requests[0]
    assert (request["model"], request["temperature"], request["max_tokens"]) == (
        "model-a",
        0.5,
        1000,
    )
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert "make `softmax` faster" in request["messages"][1]["content"]
    assert proposer.llm.last_errors == [] and proposer.sleeps == []


def test_full_module_reply_becomes_a_proposal(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(FULL)
    proposals = Proposer(server.base_url).llm.propose(ctx, random.Random(0), 1)
    assert [p.source for p in proposals] == [MODULE]


def test_usage_tokens_and_cost_are_summed(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(
        Response(200, completion(EDIT, prompt_tokens=1000, completion_tokens=200)),
        Response(200, completion(FULL, prompt_tokens=3000, completion_tokens=800)),
        (200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": FULL}}]}),
    )
    proposer = Proposer(server.base_url, price_per_mtok=(2.0, 10.0))
    assert len(proposer.llm.propose(ctx, random.Random(0), 3)) == 3
    usage = proposer.llm.usage
    assert (usage.prompt_tokens, usage.completion_tokens) == (4000, 1000)
    assert (usage.requests, usage.failures) == (3, 0)
    assert usage.cost_usd == pytest.approx((4000 * 2.0 + 1000 * 10.0) / 1e6)


def test_rate_limit_then_success_is_retried(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(error(429, "slow down"), EDIT)
    proposer = Proposer(server.base_url, backoff_s=0.5)
    assert len(proposer.llm.propose(ctx, random.Random(0), 1)) == 1
    assert proposer.sleeps == [0.5]
    assert proposer.llm.usage.requests == 2 and len(server.requests) == 2


def test_retry_after_header_lengthens_the_backoff(
    server: FakeLLMServer, ctx: ProposalContext
) -> None:
    limited = error(429, "slow down")
    server.push(Response(429, limited.body, {"Retry-After": "3"}), EDIT)
    proposer = Proposer(server.base_url, backoff_s=0.5)
    assert len(proposer.llm.propose(ctx, random.Random(0), 1)) == 1
    assert proposer.sleeps == [3.0]


def test_server_error_then_success_is_retried(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(error(500, "oops"), error(503, "busy"), FULL)
    proposer = Proposer(server.base_url, backoff_s=1.0)
    assert len(proposer.llm.propose(ctx, random.Random(0), 1)) == 1
    assert proposer.sleeps == [1.0, 2.0]


def test_repeated_server_errors_exhaust_retries(
    server: FakeLLMServer, ctx: ProposalContext
) -> None:
    server.push(*[error(500, "down")] * 3, EDIT)
    proposer = Proposer(server.base_url, max_retries=2, backoff_s=1.0)
    assert proposer.llm.propose(ctx, random.Random(0), 1) == []
    assert proposer.sleeps == [1.0, 2.0] and len(server.requests) == 3
    [message] = proposer.llm.last_errors
    assert message.startswith("model-a: HTTP 500") and "gave up after 3 attempts" in message
    assert (proposer.llm.usage.requests, proposer.llm.usage.failures) == (3, 1)


def test_client_errors_are_not_retried(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(error(400, "bad model"), EDIT)
    proposer = Proposer(server.base_url)
    assert proposer.llm.propose(ctx, random.Random(0), 1) == []
    assert proposer.sleeps == [] and len(server.requests) == 1
    assert "HTTP 400" in proposer.llm.last_errors[0]


def test_timeout_is_retried(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push(Response(200, completion(EDIT), delay_s=1.0), EDIT)
    proposer = Proposer(server.base_url, timeout_s=0.2, backoff_s=0.25)
    assert len(proposer.llm.propose(ctx, random.Random(0), 1)) == 1
    assert proposer.sleeps == [0.25]


def test_unreachable_server_yields_no_proposal(ctx: ProposalContext) -> None:
    proposer = Proposer(f"http://127.0.0.1:{free_port()}/v1", max_retries=1)
    assert proposer.llm.propose(ctx, random.Random(0), 2) == []
    assert proposer.sleeps == [1.0, 1.0]
    assert len(proposer.llm.last_errors) == 2
    assert "APIConnectionError" in proposer.llm.last_errors[0]


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("", "empty reply"),
        ((200, completion(None)), "empty reply"),
        ((200, {"id": "x", "choices": []}), "no choices"),
        ((200, "<html>gateway</html>"), "malformed response"),
        ("I would use a bigger block.", "no SEARCH/REPLACE edit that applies"),
        ((200, completion("```python\ndef f(:\n```", finish_reason="length")), "max_tokens"),
    ],
)
def test_unusable_replies_yield_no_proposal(
    server: FakeLLMServer, ctx: ProposalContext, entry: str | tuple[int, object], reason: str
) -> None:
    server.push(entry, FULL)  # type: ignore[arg-type]
    proposer = Proposer(server.base_url)
    proposals = proposer.llm.propose(ctx, random.Random(0), 2)
    assert [p.source for p in proposals] == [MODULE]  # the second slot still works
    [message] = proposer.llm.last_errors
    assert reason in message
    assert proposer.sleeps == [] and proposer.llm.usage.failures == 1


def test_last_errors_reset_on_each_call(server: FakeLLMServer, ctx: ProposalContext) -> None:
    server.push("no code here", FULL)
    proposer = Proposer(server.base_url)
    proposer.llm.propose(ctx, random.Random(0), 1)
    assert len(proposer.llm.last_errors) == 1
    proposer.llm.propose(ctx, random.Random(0), 1)
    assert proposer.llm.last_errors == []


def test_weighted_ensemble_picks_models_by_weight(
    server: FakeLLMServer, ctx: ProposalContext
) -> None:
    models = (("big", 3.0), ("small", 1.0))
    server.push(*[FULL] * 80)
    proposer = Proposer(server.base_url, models=models)
    first = proposer.llm.propose(ctx, random.Random(7), 40)
    second = proposer.llm.propose(ctx, random.Random(7), 40)
    picked = server.models
    assert picked[:40] == picked[40:]  # the seed decides the sequence
    assert [p.proposer for p in first + second] == [f"llm:{m}" for m in picked]
    assert 20 <= picked[:40].count("big") <= 38 and "small" in picked
    assert proposer.llm.name == "llm:big+small"


def test_config_rejects_an_empty_or_unweighted_ensemble() -> None:
    with pytest.raises(ValueError, match="empty"):
        LLMConfig(base_url="http://x/v1", models=(), api_key="k")
    with pytest.raises(ValueError, match="positive"):
        LLMConfig(base_url="http://x/v1", models=(("m", 0.0),), api_key="k")
