"""Transports: how one prompt reaches a model and its reply comes back.

Three ways: an OpenAI-compatible HTTP endpoint, a command run per prompt (prompt on stdin, reply
on stdout), and a reply queue (prompts written to a folder; the search pauses until replies
appear there). The proposer above them never learns which one it talks to.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from openai import APIConnectionError, APIStatusError, OpenAI, OpenAIError
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

RETRY_STATUSES = frozenset({408, 409, 429})  # plus every 5xx
MAX_RETRY_AFTER_S = 60.0  # a server's Retry-After is honoured up to this long
REPLY_SUFFIXES = (".md", ".txt")  # what a reply file in the queue may be called


class TransportError(Exception):
    """A prompt that produced no reply, with the reason in words."""


class ReplyPending(Exception):
    """The reply queue has the prompt but no reply yet."""

    def __init__(self, key: str) -> None:
        super().__init__(f"waiting for the reply to {key}")
        self.key = key


@dataclass(frozen=True)
class Ask:
    """One prompt: a stable key, the model slot it is for, the messages and where it comes from."""

    key: str  # unique within a search and stable across its resumes
    model: str
    messages: tuple[Mapping[str, str], ...]
    about: Mapping[str, Any] = field(default_factory=dict)  # search, generation, parent, ...

    def text(self) -> str:
        """The messages as one plain text, for a command or a person: system first."""
        return "\n\n".join(m["content"].rstrip("\n") for m in self.messages) + "\n"


@dataclass(frozen=True)
class Reply:
    """A model's answer and what it cost in tokens (0 where the transport cannot tell)."""

    text: str
    truncated: bool = False  # cut at the token or output limit
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""  # who answered, when the transport knows better than the slot's name
    shown: str | None = None  # the prompt the model saw, where it differs from the one asked


class Transport(Protocol):
    """Sends one prompt, returns its reply; raises `TransportError` (or `ReplyPending`)."""

    requests: int  # attempts so far, retries included

    def complete(self, ask: Ask) -> Reply: ...


@dataclass(frozen=True)
class HttpSettings:
    """An OpenAI-compatible endpoint and how patiently to ask it."""

    base_url: str
    api_key: str = ""
    timeout_s: float = 120.0
    max_retries: int = 4  # retries after the first attempt, on 408/409/429/5xx/timeouts
    backoff_s: float = 1.0  # first retry delay; doubles on each further retry
    temperature: float = 0.8
    max_tokens: int = 8192


class HttpTransport:
    """Chat completions over HTTP with counted retries and backoff (slept through `sleep`)."""

    def __init__(self, settings: HttpSettings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self.requests = 0
        self._sleep = sleep
        self._client = OpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key or "unused",  # keyless local servers still need a value
            timeout=settings.timeout_s,
            max_retries=0,  # retries are ours: counted, and slept through the injected clock
        )

    def complete(self, ask: Ask) -> Reply:
        attempts = self.settings.max_retries + 1
        messages = [_message(m) for m in ask.messages]
        for attempt in range(attempts):
            self.requests += 1
            try:
                completion = self._client.chat.completions.create(
                    model=ask.model,
                    messages=messages,
                    temperature=self.settings.temperature,
                    max_tokens=self.settings.max_tokens,
                )
            except (APIStatusError, APIConnectionError) as exc:
                if not _transient(exc):
                    raise TransportError(_describe(exc)) from exc
                if attempt + 1 == attempts:
                    raise TransportError(
                        f"{_describe(exc)} (gave up after {attempts} attempts)"
                    ) from exc
                self._sleep(self._delay(attempt, exc))
                continue
            except (OpenAIError, ValueError) as exc:  # ValueError: a body that is not JSON
                raise TransportError(f"malformed response: {exc}") from exc
            return _reply(completion)
        raise TransportError("no attempt was made")  # unreachable: attempts >= 1

    def _delay(self, attempt: int, exc: OpenAIError) -> float:
        """Exponential backoff, or the server's Retry-After when that is longer (capped)."""
        delay = self.settings.backoff_s * 2.0**attempt
        if isinstance(exc, APIStatusError):
            retry_after = str(exc.response.headers.get("retry-after", ""))
            if retry_after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(retry_after), MAX_RETRY_AFTER_S))
        return delay


@dataclass(frozen=True)
class CommandSettings:
    """A command run once per prompt, and the limits it runs under.

    The command gets only the environment named here (plus PATH, HOME and LANG of the caller):
    an agent CLI's key is the operator's to hand over, never the bot's whole environment."""

    argv: tuple[str, ...]
    timeout_s: float = 600.0
    max_output_bytes: int = 1_000_000
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


class CommandTransport:
    """Runs `argv` with the prompt on stdin; stdout is the reply."""

    def __init__(self, settings: CommandSettings) -> None:
        if not settings.argv:
            raise ValueError("the LLM command is empty: name a program to run")
        self.settings = settings
        self.requests = 0

    def complete(self, ask: Ask) -> Reply:
        self.requests += 1
        s = self.settings
        env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
        env |= dict(s.env) | {"KEVOLVE_PROMPT_KEY": ask.key, "KEVOLVE_MODEL": ask.model}
        # Files, not pipes: the reply counts once the command exits, even where a helper it
        # left behind still holds its stdout; the command's whole session is killed after.
        with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as out:
            stdin.write(ask.text().encode())
            stdin.seek(0)
            with tempfile.TemporaryFile() as err:
                code = self._run(env, stdin, out, err)
                err.seek(0)
                stderr = err.read()[-4096:].decode(errors="replace")
            if code != 0:
                tail = stderr.strip().splitlines()[-1:] or ["no stderr"]
                ended = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
                raise TransportError(f"{s.argv[0]} {ended}: {tail[0][:300]}")
            out.seek(0)
            text = out.read(s.max_output_bytes + 1)
        cut = len(text) > s.max_output_bytes
        return Reply(text[: s.max_output_bytes].decode(errors="replace"), truncated=cut)

    def _run(self, env: dict[str, str], stdin: IO[bytes], out: IO[bytes], err: IO[bytes]) -> int:
        """The command's exit status; its session is killed when it ends or runs too long."""
        s = self.settings
        try:
            child = subprocess.Popen(
                list(s.argv),
                stdin=stdin,
                stdout=out,
                stderr=err,
                env=env,
                cwd=s.cwd,
                start_new_session=True,
            )
        except OSError as exc:
            raise TransportError(f"{s.argv[0]} could not be run: {exc.strerror}") from None
        try:
            return child.wait(timeout=s.timeout_s)
        except subprocess.TimeoutExpired:
            raise TransportError(f"{s.argv[0]} gave no reply within {s.timeout_s:g} s") from None
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@dataclass(frozen=True)
class ReplyUsage:
    """What a reply's optional sidecar (`replies/<key>.json`) may say about who wrote it."""

    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class QueueTransport:
    """Prompts go to `root/prompts/<key>.md` with a JSON sidecar; replies are read from
    `root/replies/<key>.md` (or `.txt`, with an optional `<key>.json` naming the model and its
    tokens). A prompt without a reply raises `ReplyPending`: the search stores its state and
    stops, and the same command run later goes on from there."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.requests = 0
        self._clock = clock

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def replies(self) -> Path:
        return self.root / "replies"

    def complete(self, ask: Ask) -> Reply:
        found = self._reply_file(ask.key)
        if found is None:
            self._write_prompt(ask)
            raise ReplyPending(ask.key)
        self.requests += 1
        try:
            text = found.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise TransportError(f"the reply {found} could not be read: {exc.strerror}") from None
        usage = self._usage(ask.key)
        return Reply(
            text,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            model=usage.model,
            shown=self._shown(ask),
        )

    def _shown(self, ask: Ask) -> str | None:
        """The prompt file under this key when it says something else than `ask` (written by
        an earlier run, say on another machine): the reply answers that one."""
        try:
            shown = (self.prompts / f"{ask.key}.md").read_text(encoding="utf-8")
        except OSError:
            return None
        return None if shown == ask.text() else shown

    def _reply_file(self, key: str) -> Path | None:
        for suffix in REPLY_SUFFIXES:
            path = self.replies / f"{key}{suffix}"
            if path.is_file():
                return path
        return None

    def _write_prompt(self, ask: Ask) -> None:
        """The prompt and its sidecar, each written whole (temp file, then rename); once."""
        self.prompts.mkdir(parents=True, exist_ok=True)
        self.replies.mkdir(parents=True, exist_ok=True)
        about = {"key": ask.key, "model": ask.model, **ask.about, "written_at": self._clock()}
        for suffix, body in ((".json", json.dumps(about, indent=2)), (".md", ask.text())):
            path = self.prompts / f"{ask.key}{suffix}"
            if not path.exists():
                partial = path.with_name(f".{path.name}.partial")
                partial.write_text(body, encoding="utf-8")
                partial.replace(path)

    def _usage(self, key: str) -> ReplyUsage:
        """The reply's sidecar, if one was written and makes sense; else nothing known."""
        path = self.replies / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return ReplyUsage()
        if not isinstance(data, dict):
            return ReplyUsage()
        model = data.get("model")
        return ReplyUsage(
            model=model if isinstance(model, str) else "",
            prompt_tokens=_tokens(data.get("prompt_tokens")),
            completion_tokens=_tokens(data.get("completion_tokens")),
        )


def _tokens(value: object) -> int:
    """A token count from a sidecar: a whole number of at least 0, else 0 (unknown)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not value.is_integer():
        return 0
    return max(0, int(value))


def _transient(exc: APIStatusError | APIConnectionError) -> bool:
    """True for errors worth retrying: timeouts, lost connections, 408/409/429 and 5xx."""
    if isinstance(exc, APIStatusError):
        return exc.status_code in RETRY_STATUSES or exc.status_code >= 500
    return True


def _describe(exc: APIStatusError | APIConnectionError) -> str:
    """An API error in one line."""
    if isinstance(exc, APIStatusError):
        # The client's message already opens with "Error code: N - "; say the status once.
        detail = re.sub(rf"^Error code: {exc.status_code}\s*-\s*", "", exc.message)
        return f"HTTP {exc.status_code}: {detail}"
    return f"{type(exc).__name__}: {exc}"


def _message(message: Mapping[str, str]) -> ChatCompletionMessageParam:
    """A prompt message as the client's typed system or user message."""
    if message["role"] == "system":
        return {"role": "system", "content": message["content"]}
    return {"role": "user", "content": message["content"]}


def _reply(completion: ChatCompletion) -> Reply:
    """The first choice's text, whether max_tokens cut it, and the tokens; no text fails."""
    choices = completion.choices or []
    content = choices[0].message.content if choices and choices[0].message else None
    if not content or not content.strip():
        raise TransportError("empty reply" if choices else "malformed response: no choices")
    usage = completion.usage
    return Reply(
        content,
        truncated=choices[0].finish_reason == "length",
        prompt_tokens=int(getattr(usage, "prompt_tokens", None) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", None) or 0),
        model=completion.model or "",
    )
