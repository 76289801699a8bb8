"""`LLMProposer`: asks a weighted ensemble of OpenAI-compatible models for kernel rewrites."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from kevolve.harness.search.edits import apply_reply
from kevolve.harness.search.prompt import PromptBuilder, basis
from kevolve.harness.search.proposal import Proposal, ProposalContext
from openai import APIConnectionError, APIStatusError, OpenAI, OpenAIError
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

RETRY_STATUSES = frozenset({408, 409, 429})  # plus every 5xx
MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this long


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to ask: endpoint, weighted models, limits, sampling and prices."""

    base_url: str
    models: tuple[tuple[str, float], ...]  # (model name, sampling weight)
    api_key: str
    timeout_s: float = 120.0
    max_retries: int = 4  # retries after the first attempt, on 408/409/429/5xx/timeouts
    backoff_s: float = 1.0  # first retry delay; doubles on each further retry
    temperature: float = 0.8
    max_tokens: int = 8192
    price_per_mtok: tuple[float, float] = (0.0, 0.0)  # USD per million (input, output) tokens

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("LLMConfig.models is empty: name at least one (model, weight)")
        if any(weight <= 0 for _, weight in self.models):
            raise ValueError(f"LLMConfig.models weights must be positive: {self.models}")
        if self.max_retries < 0:
            raise ValueError(f"LLMConfig.max_retries must be >= 0, not {self.max_retries}")


@dataclass
class Usage:
    """Tokens, HTTP requests (retries included), failed proposal slots and cost so far."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests: int = 0
    failures: int = 0
    cost_usd: float = 0.0


class _Failure(Exception):
    """A proposal slot that produced nothing, with the reason in words."""


class LLMProposer:
    """A `Proposer` that turns chat completions into whole-module proposals; never raises."""

    def __init__(
        self,
        config: LLMConfig,
        prompts: PromptBuilder,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.prompts = prompts
        self.name = "llm:" + "+".join(model for model, _ in config.models)
        self.usage = Usage()
        self.last_errors: list[str] = []  # why slots of the last `propose` call came back empty
        self._sleep = sleep
        self._client = OpenAI(
            base_url=config.base_url,
            api_key=config.api_key or "unused",  # keyless local servers still need a value
            timeout=config.timeout_s,
            max_retries=0,  # retries are ours: counted, and slept through the injected clock
        )

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        """Up to `count` proposals, one chat completion each; failures go to `last_errors`."""
        self.last_errors = []
        messages = [_message(m) for m in self.prompts.messages(ctx)]
        base = basis(ctx)
        proposals = []
        for _ in range(count):
            model = self._pick(rng)
            try:
                source = _parse(*self._complete(model, messages), base.source)
            except _Failure as failure:
                self.usage.failures += 1
                self.last_errors.append(f"{model}: {failure}")
                continue
            proposals.append(Proposal(source, base.parent_ids, f"llm:{model}"))
        return proposals

    def _pick(self, rng: random.Random) -> str:
        """A model name drawn by weight."""
        names = [name for name, _ in self.config.models]
        weights = [weight for _, weight in self.config.models]
        return rng.choices(names, weights=weights)[0]

    def _complete(self, model: str, messages: list[ChatCompletionMessageParam]) -> tuple[str, bool]:
        """The reply text of one completion and whether max_tokens cut it, retrying with backoff."""
        attempts = self.config.max_retries + 1
        for attempt in range(attempts):
            self.usage.requests += 1
            try:
                completion = self._client.chat.completions.create(
                    model=model,
                    messages=messages,
                    temperature=self.config.temperature,
                    max_tokens=self.config.max_tokens,
                )
            except (APIStatusError, APIConnectionError) as exc:
                if not _transient(exc):
                    raise _Failure(_describe(exc)) from exc
                if attempt + 1 == attempts:
                    raise _Failure(f"{_describe(exc)} (gave up after {attempts} attempts)") from exc
                self._sleep(self._delay(attempt, exc))
                continue
            except (OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
                raise _Failure(f"malformed response: {exc}") from exc
            self._account(completion)
            return _reply_text(completion)
        raise _Failure("no attempt was made")  # unreachable: attempts >= 1

    def _delay(self, attempt: int, exc: OpenAIError) -> float:
        """Exponential backoff, or the server's Retry-After when that is longer (capped)."""
        delay = self.config.backoff_s * 2.0**attempt
        if isinstance(exc, APIStatusError):
            retry_after = str(exc.response.headers.get("retry-after", ""))
            if retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
        return delay

    def _account(self, completion: ChatCompletion) -> None:
        """Add a completion's tokens and cost; a missing usage counts as zero."""
        usage = completion.usage
        prompt = int(getattr(usage, "prompt_tokens", None) or 0)
        output = int(getattr(usage, "completion_tokens", None) or 0)
        price_in, price_out = self.config.price_per_mtok
        self.usage.prompt_tokens += prompt
        self.usage.completion_tokens += output
        self.usage.cost_usd += (prompt * price_in + output * price_out) / 1e6


def _transient(exc: APIStatusError | APIConnectionError) -> bool:
    """True for errors worth retrying: timeouts, lost connections, 408/409/429 and 5xx."""
    if isinstance(exc, APIStatusError):
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return True


def _describe(exc: APIStatusError | APIConnectionError) -> str:
    """An API error in one line."""
    if isinstance(exc, APIStatusError):
        return f"HTTP {exc.status_code}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


def _message(message: dict[str, str]) -> ChatCompletionMessageParam:
    """A prompt message as the client's typed system or user message."""
    if message["role"] == "system":
        return {"role": "system", "content": message["content"]}
    return {"role": "user", "content": message["content"]}


def _reply_text(completion: ChatCompletion) -> tuple[str, bool]:
    """The first choice's text and whether max_tokens cut it; no text is a failure."""
    choices = completion.choices or []
    content = choices[0].message.content if choices and choices[0].message else None
    if not content or not content.strip():
        raise _Failure("empty reply" if choices else "malformed response: no choices")
    return content, choices[0].finish_reason == "length"


def _parse(reply: str, truncated: bool, parent_source: str) -> str:
    """The module a reply describes; a failure when it holds none."""
    source = apply_reply(reply, parent_source)
    if source is None:
        cut = ", cut at max_tokens" if truncated else ""
        raise _Failure(
            "reply holds no SEARCH/REPLACE edit that applies and no parseable module "
            f"({len(reply)} characters{cut})"
        )
    return source
