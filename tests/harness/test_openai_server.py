"""The HTTP transport against an OpenAI-compatible server that is not kevolve's: llama.cpp's own
server (from the xllamacpp wheel) running tiny GGUF models written here (tests.harness.tiny_llama).

A scripted model answers a kernel prompt with an edit that fails to compile and a repair prompt with
its fix; others answer prose, nothing, or (random weights) garbage. The transport reads the
server's replies and token counts as they are; the proposer turns each into a proposal or a
recorded failure; and real CPU searches (the Triton interpreter judging the demo softmax) go on
through garbage, a context the prompts do not fit (HTTP 400 on every ask) and a server killed
mid-search, each to its own stop rule, keeping every exchange in the state."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kevolve.harness.evaluate import EvalOptions
from kevolve.harness.search.campaign import OptimizeOptions, optimize
from kevolve.harness.search.candidate import candidate_id
from kevolve.harness.search.engine import SearchConfig
from kevolve.harness.search.llm import LLMConfig, LLMProposer
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import Exchange, ProposalContext
from kevolve.harness.search.status import Status
from kevolve.harness.search.store import Store
from kevolve.harness.search.transport import (
    Ask,
    HttpSettings,
    HttpTransport,
    TransportError,
)
from kevolve.harness.spec.load import load_problems

from tests.harness.tiny_llama import LlamaServer, Script, write_random, write_scripted

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
TEMPLATES = ROOT / "templates" / "prompts"
SEED = (DEMO / "demo_kernels" / "softmax.py").read_text()
PAUSED = 75  # kevolve optimize's exit status while a reply queue waits

LINE = "    x = x.to(tl.float32)\n"
BROKEN = SEED.replace(LINE, "    x = x.to(tl.float32) + undefined_offset\n")
FIXED = SEED.replace(LINE, "    x = x.to(tl.float32) + 0.0\n")
BROKEN_REPLY = (
    "Shift the row by an offset before the exponent.\n"
    f"<<<<<<< SEARCH\n{LINE}=======\n    x = x.to(tl.float32) + undefined_offset\n"
    ">>>>>>> REPLACE\n"
)
FIX_REPLY = (
    "Name the offset: zero keeps the result.\n"
    "<<<<<<< SEARCH\n    x = x.to(tl.float32) + undefined_offset\n=======\n"
    "    x = x.to(tl.float32) + 0.0\n>>>>>>> REPLACE\n"
)
PROSE_REPLY = "I would try a larger block and more warps, but I am not sure how.\n"
NO_CODE = "reply holds no SEARCH/REPLACE edit that applies and no parseable module"
CUT = "cut at the output limit (max_tokens)"
GONE = "APIConnectionError: Connection error. (gave up after 3 attempts)"
SCRIPTS = {
    "tiny-scripted": Script(edit=BROKEN_REPLY, repair=FIX_REPLY),
    "tiny-prose": Script(edit=PROSE_REPLY),
    "tiny-silent": Script(edit=""),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every model file by the name its server answers with (the file's stem)."""
    folder = tmp_path_factory.mktemp("models")
    made = {name: write_scripted(folder / f"{name}.gguf", s) for name, s in SCRIPTS.items()}
    made["tiny-random"] = write_random(folder / "tiny-random.gguf")
    return made


@pytest.fixture(scope="module")
def servers(
    models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, LlamaServer]]:
    """One llama.cpp server per model, each its own process on loopback."""
    logs = tmp_path_factory.mktemp("server-logs")
    started: dict[str, LlamaServer] = {}
    try:
        for name, model in models.items():
            started[name] = LlamaServer(model, logs / f"{name}.log")
        yield started
    finally:
        for server in started.values():
            server.stop()


def messages(text: str) -> tuple[dict[str, str], ...]:
    """A system message and `text` as the user's."""
    return ({"role": "system", "content": "You write Triton.\n"}, {"role": "user", "content": text})


def ask(text: str = "Make the softmax faster.", model: str = "tiny-scripted") -> Ask:
    """A prompt for `model`."""
    return Ask("softmax-g001-s00", model, messages(text))


def too_long(n_ctx: int) -> str:
    """The server's refusal of a prompt beyond its context, as the transport words it."""
    refusal = rf"request \(\d+ tokens\) exceeds the available context size \({n_ctx} tokens\)"
    return rf"^HTTP 400: {refusal}"  # the status said once


def prompt_tokens(server: LlamaServer, sent: tuple[dict[str, str], ...]) -> int:
    """How many tokens the server counts in `sent` once its chat template has laid it out."""
    laid_out = server.post("/apply-template", {"messages": list(sent)})["prompt"]
    tokens = server.post("/tokenize", {"content": laid_out, "add_special": True})["tokens"]
    return len(tokens)


# --- HttpTransport ------------------------------------------------------------------------------


def test_a_reply_comes_back_whole_with_the_servers_token_counts(
    servers: dict[str, LlamaServer],
) -> None:
    server = servers["tiny-scripted"]
    transport = HttpTransport(HttpSettings(server.base_url))
    reply = transport.complete(ask())
    assert reply.text == BROKEN_REPLY
    assert (reply.truncated, reply.model, transport.requests) == (False, "tiny-scripted", 1)
    assert reply.prompt_tokens == prompt_tokens(server, messages("Make the softmax faster."))
    assert reply.completion_tokens == len(BROKEN_REPLY.splitlines()) + 1  # a line each, the end


def test_a_reply_cut_at_max_tokens_is_marked_truncated(servers: dict[str, LlamaServer]) -> None:
    transport = HttpTransport(HttpSettings(servers["tiny-scripted"].base_url, max_tokens=3))
    reply = transport.complete(ask())
    assert reply.text == "".join(BROKEN_REPLY.splitlines(keepends=True)[:3])
    assert (reply.truncated, reply.completion_tokens) == (True, 3)


def test_an_empty_reply_is_an_error_not_a_reply(servers: dict[str, LlamaServer]) -> None:
    transport = HttpTransport(HttpSettings(servers["tiny-silent"].base_url))
    with pytest.raises(TransportError, match=r"^empty reply$"):
        transport.complete(ask(model="tiny-silent"))
    assert transport.requests == 1


def test_a_prompt_beyond_the_context_is_the_servers_400_and_not_retried(
    servers: dict[str, LlamaServer],
) -> None:
    slept: list[float] = []
    transport = HttpTransport(HttpSettings(servers["tiny-scripted"].base_url), slept.append)
    with pytest.raises(TransportError, match=too_long(16384)):
        transport.complete(ask("x" * 20_000))
    assert (transport.requests, slept) == (1, [])


def test_a_killed_server_is_asked_again_with_backoff_then_given_up(
    models: dict[str, Path], tmp_path: Path
) -> None:
    server = LlamaServer(models["tiny-scripted"], tmp_path / "server.log")
    settings = HttpSettings(server.base_url, max_retries=2, backoff_s=0.5)
    slept: list[float] = []
    transport = HttpTransport(settings, slept.append)
    assert transport.complete(ask()).text == BROKEN_REPLY
    server.stop()
    with pytest.raises(TransportError, match=f"^{re.escape(GONE)}$"):
        transport.complete(ask())
    assert (transport.requests, slept) == (4, [0.5, 1.0])


# --- LLMProposer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "max_tokens", "ending"),
    [
        ("tiny-random", 8192, ""),  # garbage
        ("tiny-random", 4, f", {CUT}"),  # garbage, cut short
        ("tiny-prose", 8192, ""),  # prose, no code
    ],
)
def test_a_reply_that_holds_no_program_is_kept_as_a_failed_exchange(
    servers: dict[str, LlamaServer],
    ctx: ProposalContext,
    model: str,
    max_tokens: int,
    ending: str,
) -> None:
    server = servers[model]
    config = LLMConfig(models=((model, 1.0),), base_url=server.base_url, max_tokens=max_tokens)
    proposer = LLMProposer(config, PromptBuilder(TEMPLATES))
    assert proposer.propose(ctx, random.Random(0), 1) == []
    (spoiled,) = proposer.drain().spoiled
    assert spoiled.reply and spoiled.messages == tuple(PromptBuilder(TEMPLATES).messages(ctx))
    assert spoiled.error == f"{NO_CODE} ({len(spoiled.reply)} characters{ending})"
    assert proposer.last_errors == [f"{model}: {spoiled.error}"]
    assert spoiled.model == model
    assert spoiled.prompt_tokens == prompt_tokens(server, spoiled.messages)  # the server's count
    assert spoiled.completion_tokens == proposer.usage.completion_tokens > 0
    assert (proposer.usage.failures, proposer.usage.requests) == (1, 1)
    if model == "tiny-prose":
        assert spoiled.reply == PROSE_REPLY


def test_an_empty_reply_is_kept_as_a_failed_exchange_without_a_reply(
    servers: dict[str, LlamaServer], ctx: ProposalContext
) -> None:
    config = LLMConfig(models=(("tiny-silent", 1.0),), base_url=servers["tiny-silent"].base_url)
    proposer = LLMProposer(config, PromptBuilder(TEMPLATES))
    assert proposer.propose(ctx, random.Random(0), 1) == []
    (spoiled,) = proposer.drain().spoiled
    assert (spoiled.reply, spoiled.error, spoiled.model) == (None, "empty reply", "tiny-silent")
    assert (proposer.usage.failures, proposer.usage.requests) == (1, 1)


# --- searches -----------------------------------------------------------------------------------


def cli_env(folder: Path) -> dict[str, str]:
    """This environment without the LLM settings of whoever runs the tests, the cache in
    `folder`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_LLM")}
    return env | {"KEVOLVE_CACHE_DIR": str(folder / "cache")}


# The LLM alone proposes; a generation asks up to 9 prompts (3 wanted, each asked again while it
# produces nothing new), and two generations without a better kernel end the search.
SEARCH_FLAGS = ["--device", "cpu", "--llm-share", "1", "--per-generation", "3", "--parallel", "1"]
SEARCH_FLAGS += ["--budget", "8", "--patience", "2"]


def optimize_command(folder: Path, *transport: str) -> subprocess.CompletedProcess[str]:
    """`kevolve optimize` on the demo softmax, its state and result in `folder`."""
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "optimize"]
    argv += [str(DEMO), "--op", "softmax"]
    argv += [*SEARCH_FLAGS, *transport, "--state", str(folder / "state.sqlite")]
    argv += ["--out", str(folder / "result.json")]
    return subprocess.run(
        argv, cwd=ROOT, env=cli_env(folder), capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search state whose seed is judged and nothing else: a reply queue's first run, which
    stops once it has written generation 1's prompts. Each search below starts from a copy."""
    folder = tmp_path_factory.mktemp("seeded")
    done = optimize_command(folder, "--llm-queue", str(folder / "queue"))
    assert done.returncode == PAUSED, done.stderr
    return folder / "state.sqlite"


@dataclass(frozen=True)
class Searched:
    """A finished search: its folder, how the command ended, its result and its exchanges."""

    folder: Path
    done: subprocess.CompletedProcess[str]
    result: dict[str, Any]
    exchanges: list[tuple[str | None, Exchange]]


def exchanges_in(state: Path) -> list[tuple[str | None, Exchange]]:
    """The state's exchanges, each with the candidate it produced (None for none)."""
    store = Store(state)
    try:
        return store.exchanges()
    finally:
        store.close()


def search(seeded: Path, folder: Path, server: LlamaServer, model: str) -> Searched:
    """`kevolve optimize` against `server`, going on from the seeded state."""
    folder.mkdir()
    shutil.copy(seeded, folder / "state.sqlite")
    done = optimize_command(folder, "--llm-base-url", server.base_url, "--llm-model", model)
    assert done.returncode == 0, done.stderr
    result = json.loads((folder / "result.json").read_text())
    return Searched(folder, done, result, exchanges_in(folder / "state.sqlite"))


def test_a_search_fed_garbage_keeps_every_reply_and_stops_by_its_rule(
    seeded: Path, servers: dict[str, LlamaServer], tmp_path: Path
) -> None:
    server = servers["tiny-random"]
    s = search(seeded, tmp_path / "search", server, "tiny-random")
    assert s.result["stop_reason"] == "no improvement for 2 generations"
    assert (s.result["evaluated"], s.result["counts"]) == (1, {"correct": 1})  # the seed alone
    llm = s.result["llm"]
    assert llm["requests"] == llm["failures"] == len(s.exchanges) > 0
    for cid, exchange in s.exchanges:
        assert cid is None and exchange.model == "tiny-random"
        assert exchange.reply and exchange.error == f"{NO_CODE} ({len(exchange.reply)} characters)"
        assert exchange.completion_tokens > 0
    first = s.exchanges[0][1]
    assert first.prompt_tokens == prompt_tokens(server, first.messages)  # the server's count
    assert "# Task: make `softmax` faster" in first.messages[-1]["content"]
    assert llm["prompt_tokens"] == sum(e.prompt_tokens for _, e in s.exchanges)
    assert llm["completion_tokens"] == sum(e.completion_tokens for _, e in s.exchanges)
    assert llm["by_model"]["tiny-random"]["replies"] == len(s.exchanges)


def test_a_search_judges_the_models_edit_and_the_repair_it_asked_for(
    seeded: Path, servers: dict[str, LlamaServer], tmp_path: Path
) -> None:
    s = search(seeded, tmp_path / "search", servers["tiny-scripted"], "tiny-scripted")
    assert s.result["counts"] == {"correct": 2, "compile_error": 1}
    judged = [h["candidate"] for h in s.result["history"]]
    assert judged == [candidate_id(SEED), candidate_id(BROKEN), candidate_id(FIXED)]
    assert (s.result["llm"]["repairs_judged"], s.result["llm"]["repairs_correct"]) == (1, 1)
    made = {cid: e for cid, e in s.exchanges if e.error is None}
    assert set(made) == {candidate_id(BROKEN), candidate_id(FIXED)}
    assert made[candidate_id(BROKEN)].reply == BROKEN_REPLY
    assert made[candidate_id(BROKEN)].rationale == "Shift the row by an offset before the exponent."
    repair = made[candidate_id(FIXED)]
    assert repair.reply == FIX_REPLY
    assert "## Fix this program (repair turn 1)" in repair.messages[-1]["content"]
    assert "NameError(\"name 'undefined_offset' is not defined\")" in repair.messages[-1]["content"]
    repeats = [e for _, e in s.exchanges if e.error is not None]
    assert repeats and all(e.error == "an earlier candidate" for e in repeats)
    assert all(e.reply == BROKEN_REPLY for e in repeats)  # the same edit, asked again
    store = Store(s.folder / "state.sqlite")
    try:
        fixed = store.candidate(candidate_id(FIXED))
    finally:
        store.close()
    assert (fixed.proposer, fixed.parents) == ("llm:tiny-scripted:repair", (candidate_id(BROKEN),))


def test_a_search_whose_prompts_overflow_the_context_keeps_each_400_and_stops_by_its_rule(
    seeded: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    server = LlamaServer(models["tiny-scripted"], tmp_path / "server.log", n_ctx=2048)
    try:
        s = search(seeded, tmp_path / "search", server, "tiny-scripted")
    finally:
        server.stop()
    assert s.result["stop_reason"] == "no improvement for 2 generations"
    assert s.result["evaluated"] == 1
    assert s.result["llm"]["requests"] == s.result["llm"]["failures"] == len(s.exchanges) > 0
    for cid, exchange in s.exchanges:
        assert cid is None and exchange.reply is None and exchange.error is not None
        assert re.match(too_long(2048), exchange.error)


def test_a_search_goes_on_to_its_stop_rule_after_its_server_is_killed(
    seeded: Path, models: dict[str, Path], tmp_path: Path
) -> None:
    server = LlamaServer(models["tiny-scripted"], tmp_path / "server.log")
    shutil.copy(seeded, tmp_path / "state.sqlite")
    problem = next(p for p in load_problems(DEMO) if p.name == "softmax")

    def kill_after_the_first_candidate(status: Status) -> None:
        if status.evaluated >= 2:  # the seed, then the model's first edit
            server.stop()

    options = OptimizeOptions(
        search=SearchConfig(budget=8, patience=2, per_generation=3, parallel=1, hardware="cpu"),
        evaluation=EvalOptions(device="cpu", cache_dir=tmp_path / "cache"),
        state=tmp_path / "state.sqlite",
        llm=LLMConfig(
            models=(("tiny-scripted", 1.0),),
            base_url=server.base_url,
            max_retries=2,
            backoff_s=0.5,
        ),
        llm_share=1.0,
        profiling=None,
    )
    slept: list[float] = []
    try:
        result = optimize(problem, options, kill_after_the_first_candidate, slept.append)
    finally:
        server.stop()
    assert result.stop_reason == "no improvement for 2 generations"
    assert result.counts == {"correct": 1, "compile_error": 1}
    exchanges = exchanges_in(tmp_path / "state.sqlite")
    answered = [e for _, e in exchanges if e.reply is not None]
    lost = [e for _, e in exchanges if e.reply is None]
    assert answered and all(e.reply == BROKEN_REPLY for e in answered)
    assert lost and all(e.error == GONE for e in lost)
    assert slept == [0.5, 1.0] * len(lost)
