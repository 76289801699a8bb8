"""`LLMProposer`: asks a weighted ensemble of models for kernel rewrites and repairs."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from kevolve.harness.search.edits import apply_reply
from kevolve.harness.search.prompt import PromptBuilder, basis
from kevolve.harness.search.proposal import Drained, Exchange, Proposal, ProposalContext
from kevolve.harness.search.transport import (
    Ask,
    CommandSettings,
    CommandTransport,
    HttpSettings,
    HttpTransport,
    QueueTransport,
    Reply,
    ReplyPending,
    Transport,
    TransportError,
)

RATIONALE_CHARS = 600  # of a reply's prose, kept as the change's rationale
_CODE_START = re.compile(r"^(```|<<<<<<< SEARCH)", re.MULTILINE)


@dataclass(frozen=True)
class LLMConfig:
    """Who to ask and how: one transport (an endpoint, a command or a reply queue), weighted
    model slots, limits, sampling, prices, the spending cap and repair turns."""

    models: tuple[tuple[str, float], ...]  # (model name, sampling weight)
    base_url: str = ""  # an OpenAI-compatible endpoint ...
    api_key: str = ""
    command: tuple[str, ...] = ()  # ... or a command run per prompt ...
    command_env: tuple[tuple[str, str], ...] = ()  # the only environment it gets (plus PATH...)
    queue: Path | None = None  # ... or a folder of prompts and replies
    timeout_s: float = 120.0  # per request; per command run with `command`
    max_retries: int = 4  # retries after the first attempt, on 408/409/429/5xx/timeouts
    backoff_s: float = 1.0  # first retry delay; doubles on each further retry
    temperature: float = 0.8
    max_tokens: int = 8192
    price_per_mtok: tuple[float, float] = (0.0, 0.0)  # USD per million (input, output) tokens
    prices: tuple[tuple[str, float, float], ...] = ()  # per model, overriding price_per_mtok
    max_usd: float | None = None  # the search stops once its LLM cost reaches this
    repairs: int = 2  # turns a failed LLM candidate gets to be fixed

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("LLMConfig.models is empty: name at least one (model, weight)")
        if any(weight <= 0 for _, weight in self.models):
            raise ValueError(f"LLMConfig.models weights must be positive: {self.models}")
        if self.max_retries < 0:
            raise ValueError(f"LLMConfig.max_retries must be >= 0, not {self.max_retries}")
        if self.repairs < 0:
            raise ValueError(f"the repair turns must be >= 0, not {self.repairs}")
        if self.max_usd is not None and self.max_usd <= 0:
            raise ValueError(f"the cost cap must be above 0 USD, not {self.max_usd}")
        named = [bool(self.base_url), bool(self.command), self.queue is not None]
        if sum(named) != 1:
            raise ValueError(
                "an LLM needs exactly one transport: an endpoint (--llm-base-url), a command "
                "(--llm-command) or a reply queue (--llm-queue)"
            )

    @property
    def transport_name(self) -> str:
        """`http`, `command` or `queue`."""
        return "http" if self.base_url else "command" if self.command else "queue"

    def price(self, model: str) -> tuple[float, float]:
        """USD per million input and output tokens for `model`."""
        return next(((i, o) for m, i, o in self.prices if m == model), self.price_per_mtok)


def transport_for(config: LLMConfig, sleep: Callable[[float], None] = time.sleep) -> Transport:
    """The transport `config` names."""
    if config.base_url:
        http = HttpSettings(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout_s=config.timeout_s,
            max_retries=config.max_retries,
            backoff_s=config.backoff_s,
            temperature=config.temperature,
            max_tokens=config.max_tokens,
        )
        return HttpTransport(http, sleep)
    if config.command:
        settings = CommandSettings(
            config.command, timeout_s=config.timeout_s, env=dict(config.command_env)
        )
        return CommandTransport(settings)
    assert config.queue is not None  # one of three, checked by LLMConfig
    return QueueTransport(config.queue)


@dataclass
class Usage:
    """Tokens, requests (retries included), failed proposal slots, repairs asked and cost."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    failures: int = 0
    repairs: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, dict[str, float]] = field(default_factory=dict)


class _Failure(Exception):
    """A proposal slot that produced nothing, with the reason in words."""


class LLMProposer:
    """A `Proposer` that turns model replies into whole-module proposals; never raises."""

    def __init__(
        self,
        config: LLMConfig,
        prompts: PromptBuilder,
        sleep: Callable[[float], None] = time.sleep,
        transport: Transport | None = None,
    ) -> None:
        self.config = config
        self.prompts = prompts
        self.name = "llm:" + "+".join(model for model, _ in config.models)
        self.usage = Usage()
        self.last_errors: list[str] = []  # why slots of the last `propose` call came back empty
        self.transport = transport or transport_for(config, sleep)
        self._drained = Drained()
        self._asked: dict[str, int] = {}  # prompts named per generation and slot, for keys

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        """Up to `count` proposals, one reply each; failures go to `last_errors`, prompts still
        waiting for a reply to `drain()`."""
        self.last_errors = []
        messages = tuple(self.prompts.messages(ctx))
        edited = ctx.repair.source if ctx.repair else basis(ctx).source
        parents = (ctx.repair.candidate_id,) if ctx.repair else basis(ctx).parent_ids
        proposals = []
        for _ in range(count):
            model = self._pick(rng)
            ask = Ask(self._key(ctx), model, messages, self._about(ctx, model, parents))
            try:
                reply = self.transport.complete(ask)
            except ReplyPending as pending:
                self._drained.waiting.append(pending.key)
                continue
            except TransportError as exc:
                self._spoil(ask, None, str(exc))
                continue
            finally:
                self.usage.requests = self.transport.requests
            exchange = self._account(ask, reply)
            try:
                source = _parse(reply, edited)
            except _Failure as failure:
                self._spoil(ask, reply, str(failure), exchange)
                continue
            if ctx.repair:
                self.usage.repairs += 1
            tag = f"llm:{reply.model or model}" + (":repair" if ctx.repair else "")
            proposals.append(Proposal(source, parents, tag, exchange))
        return proposals

    def drain(self) -> Drained:
        drained, self._drained = self._drained, Drained()
        return drained

    def _key(self, ctx: ProposalContext) -> str:
        """`<search>-g<generation>-s<slot>[-<n>]`: stable across resumes of the same search."""
        base = f"{ctx.search or ctx.problem.name}-g{ctx.generation:03d}-s{ctx.slot:02d}"
        n = self._asked.get(base, 0)
        self._asked[base] = n + 1
        return base if n == 0 else f"{base}-{n}"

    def _about(
        self, ctx: ProposalContext, model: str, parents: tuple[str, ...]
    ) -> dict[str, object]:
        """The sidecar of a queued prompt: where it sits in the search."""
        return {
            "search": ctx.search or ctx.problem.name,
            "generation": ctx.generation,
            "island": ctx.island,
            "parent": parents[0] if parents else None,
            "model_slot": model,
            "repair_of": ctx.repair.candidate_id if ctx.repair else None,
            "repair_turn": ctx.repair.turn if ctx.repair else 0,
        }

    def _pick(self, rng: random.Random) -> str:
        """A model name drawn by weight."""
        names = [name for name, _ in self.config.models]
        weights = [weight for _, weight in self.config.models]
        return rng.choices(names, weights=weights)[0]

    def _account(self, ask: Ask, reply: Reply) -> Exchange:
        """Add a reply's tokens and cost; the exchange as it will be kept."""
        model = reply.model or ask.model
        price_in, price_out = self.config.price(model)
        cost = (reply.prompt_tokens * price_in + reply.completion_tokens * price_out) / 1e6
        u = self.usage
        u.prompt_tokens += reply.prompt_tokens
        u.completion_tokens += reply.completion_tokens
        u.cost_usd += cost
        mine = u.by_model.setdefault(model, {"replies": 0, "tokens": 0, "cost_usd": 0.0})
        mine["replies"] += 1
        mine["tokens"] += reply.prompt_tokens + reply.completion_tokens
        mine["cost_usd"] += cost
        shown = ({"role": "user", "content": reply.shown},) if reply.shown else None
        return Exchange(
            ask.key,
            model,
            shown or tuple(dict(m) for m in ask.messages),
            reply.text,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            cost_usd=cost,
            rationale=rationale(reply.text),
        )

    def _spoil(
        self, ask: Ask, reply: Reply | None, why: str, exchange: Exchange | None = None
    ) -> None:
        """A slot that produced nothing: counted, explained and kept for audit."""
        self.usage.failures += 1
        self.last_errors.append(f"{ask.model}: {why}")
        kept = exchange or Exchange(
            ask.key, ask.model, tuple(dict(m) for m in ask.messages), reply.text if reply else None
        )
        self._drained.spoiled.append(replace(kept, error=why))


def parse_prices(
    items: list[str], source: str = "--llm-price"
) -> tuple[tuple[str, float, float], ...]:
    """'model=IN,OUT' items as (model, USD per M input, USD per M output)."""
    prices = []
    for item in items:
        model, _, pair = item.partition("=")
        parts = pair.split(",")
        try:
            cost_in, cost_out = (float(x) for x in parts)
        except ValueError:
            cost_in = cost_out = -1.0
        if not model or len(parts) != 2 or cost_in < 0 or cost_out < 0:
            raise ValueError(
                f"{source} {item!r} is not MODEL=IN,OUT. Fix: e.g. {source} gpt-x=2.5,10 "
                "(USD per million input and output tokens)"
            )
        prices.append((model, cost_in, cost_out))
    return tuple(prices)


def rationale(reply: str) -> str:
    """The prose a reply opens with, before its first code fence or edit block (shortened)."""
    match = _CODE_START.search(reply)
    prose = " ".join((reply[: match.start()] if match else "").split())
    return prose if len(prose) <= RATIONALE_CHARS else prose[: RATIONALE_CHARS - 3] + "..."


def _parse(reply: Reply, parent_source: str) -> str:
    """The module a reply describes; a failure when it holds none."""
    source = apply_reply(reply.text, parent_source)
    if source is None:
        cut = ", cut at the output limit (max_tokens)" if reply.truncated else ""
        raise _Failure(
            "reply holds no SEARCH/REPLACE edit that applies and no parseable module "
            f"({len(reply.text)} characters{cut})"
        )
    return source
