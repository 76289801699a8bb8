"""Tiny GGUF models written at test time, and llama.cpp's own HTTP server running them.

Both are real llama-architecture GGUF files (written with `gguf`, llama.cpp's own writer) that
llama.cpp loads and runs on the CPU in milliseconds:

- `write_scripted`: attention and feed-forward add nothing, so each next token depends on the
  current one alone, and the output matrix chains tokens: the model answers with fixed texts.
  Its chat template ends the prompt with a route token picked by what the last message says: an
  edit for a kernel prompt, its fix for a repair prompt.
- `write_random`: seeded random weights. It answers garbage, the same garbage for the same prompt
  under the server's fixed seed.

`LlamaServer` runs llama.cpp's server (llama-server, built into the xllamacpp wheel) as a process
on loopback: `python -m tests.harness.tiny_llama MODEL PORT N_CTX` is that process.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf
import numpy as np
import xllamacpp

from tests.bot.processes import eventually
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SPACE = "\u2581"  # SentencePiece's space, as the llama tokenizer stores it in token texts
SPECIALS = ("<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>")
UNK, BOS, EOS = 0, 1, 2
CHARACTERS = (*(chr(c) for c in range(32, 127)), "\n")  # printable ASCII, a token each
NORMAL, UNKNOWN, CONTROL = 1, 2, 3  # llama.cpp's token types
SERVER_SEED = 7  # the server's sampling seed: the same prompt gets the same reply
CONTEXT = 16384  # tokens: a kernel prompt takes about one token per character
REPAIR_PHRASE = "## Fix this program"  # in a repair prompt (templates/prompts/propose.j2)
CHAINED = 8.0  # the logit of a token's successor (all others 0): no sampler setting overturns it


@dataclass(frozen=True)
class Script:
    """What the scripted model answers a kernel prompt with, and a repair prompt (by default the
    same); an empty text is the end token at once."""

    edit: str
    repair: str | None = None


@dataclass(frozen=True)
class Shape:
    """A llama model's sizes: embedding, layers, heads, key/value width per head, feed-forward."""

    embedding: int
    layers: int = 1
    heads: int = 1
    head_width: int = 8  # keeps attention cheap over prompts of many thousand tokens
    feed_forward: int = 8


def chat_template(repairs: bool) -> str:
    """A Jinja chat template: each message behind its role token, then the route token: the
    repair route's where the last message asks for a repair (and `repairs`), else the edit's."""
    route = "<|edit|>"
    if repairs:
        route = (
            f"{{% if {json.dumps(REPAIR_PHRASE)} in messages[-1].content %}}<|repair|>"
            "{% else %}<|edit|>{% endif %}"
        )
    return (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}"
        "{% if add_generation_prompt %}" + route + "{% endif %}"
    )


def pieces(reply: str, taken: set[str]) -> list[str]:
    """`reply` as token texts, a line each where that text is new to the vocabulary (`taken`,
    updated); a line already taken is joined to a neighbour, as a token has one successor."""
    out: list[str] = []
    pending = ""
    for line in reply.splitlines(keepends=True):
        pending += line.replace(" ", SPACE)
        if pending not in taken:
            out.append(pending)
            taken.add(pending)
            pending = ""
    if pending:  # a taken last line: joined to the line before it
        if not out or out[-1] + pending in taken:
            raise ValueError(f"a scripted reply cannot be cut into new tokens: {reply!r}")
        taken.discard(out[-1])
        out[-1] += pending
        taken.add(out[-1])
    return out


def _vocabulary(routes: list[str], extra: list[str]) -> tuple[list[str], list[int]]:
    """Specials, route tokens (control tokens too), a token per character (a space as
    SentencePiece's), then `extra`; and each token's type."""
    chars = [SPACE if c == " " else c for c in CHARACTERS]
    tokens = [*SPECIALS, *routes, *chars, *extra]
    control = [CONTROL] * (len(SPECIALS) - 1 + len(routes))
    return tokens, [UNKNOWN, *control] + [NORMAL] * (len(chars) + len(extra))


def _layers(shape: Shape, make: Callable[[int, int], np.ndarray]) -> dict[str, np.ndarray]:
    """Every block's tensors, each matrix made by `make(rows, columns)`; norms are ones."""
    d, kv, f = shape.embedding, shape.heads * shape.head_width, shape.feed_forward
    sizes = {
        "attn_q": (kv, d),
        "attn_k": (kv, d),
        "attn_v": (kv, d),
        "attn_output": (d, kv),
        "ffn_gate": (f, d),
        "ffn_up": (f, d),
        "ffn_down": (d, f),
    }
    out: dict[str, np.ndarray] = {}
    for block in range(shape.layers):
        out[f"blk.{block}.attn_norm.weight"] = np.ones(d)
        out[f"blk.{block}.ffn_norm.weight"] = np.ones(d)
        for tensor, (rows, cols) in sizes.items():
            out[f"blk.{block}.{tensor}.weight"] = make(rows, cols)
    return out


def _write(
    path: Path,
    vocab: tuple[list[str], list[int]],
    shape: Shape,
    template: str,
    weights: dict[str, np.ndarray],
) -> Path:
    """A GGUF file of a llama model (float32) with a llama (SentencePiece) tokenizer."""
    tokens, types = vocab
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name(path.stem)
    w.add_context_length(CONTEXT)
    w.add_embedding_length(shape.embedding)
    w.add_block_count(shape.layers)
    w.add_feed_forward_length(shape.feed_forward)
    w.add_head_count(shape.heads)
    w.add_head_count_kv(shape.heads)
    w.add_key_length(shape.head_width)
    w.add_value_length(shape.head_width)
    w.add_rope_dimension_count(shape.head_width)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * len(tokens))
    w.add_token_types(types)
    w.add_bos_token_id(BOS)
    w.add_eos_token_id(EOS)
    w.add_unk_token_id(UNK)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(template)
    for tensor, value in weights.items():
        w.add_tensor(tensor, value.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_scripted(path: Path, script: Script) -> Path:
    """A model that answers each route with `script`'s text, token for token, then ends."""
    replies = {"edit": script.edit} | ({} if script.repair is None else {"repair": script.repair})
    routes = [f"<|{route}|>" for route in replies]
    taken = {*SPECIALS, *routes, *(SPACE if c == " " else c for c in CHARACTERS)}
    chains = {f"<|{route}|>": pieces(text, taken) for route, text in replies.items()}
    tokens, types = _vocabulary(routes, [p for chain in chains.values() for p in chain])
    index = {token: i for i, token in enumerate(tokens)}
    # Each token is its own direction of the embedding; attention and feed-forward add nothing,
    # so the output matrix reads the current token alone and names its successor.
    shape = Shape(embedding=-(-len(tokens) // 8) * 8)
    embed = np.zeros((len(tokens), shape.embedding))
    embed[np.arange(len(tokens)), np.arange(len(tokens))] = 1.0
    output = np.zeros((len(tokens), shape.embedding))
    for route, chain in chains.items():
        ids = [index[route], *(index[p] for p in chain), EOS]
        for current, following in itertools.pairwise(ids):
            output[following, current] = CHAINED
    weights = {"token_embd.weight": embed, "output_norm.weight": np.ones(shape.embedding)}
    weights["output.weight"] = output
    weights |= _layers(shape, lambda rows, cols: np.zeros((rows, cols)))
    return _write(path, (tokens, types), shape, chat_template(script.repair is not None), weights)


def write_random(path: Path, seed: int = 0, end_bias: float = 4.0) -> Path:
    """A model of seeded random weights: it answers garbage of printable characters, ended by
    the end token after a dozen tokens or so (more with a lower `end_bias`)."""
    rng = np.random.default_rng(seed)
    tokens, types = _vocabulary(["<|edit|>"], [])
    shape = Shape(embedding=32)

    def normal(rows: int, cols: int) -> np.ndarray:
        return rng.normal(0.0, 0.5, (rows, cols))

    # Every embedding shares a constant first component, which only the end token's logit reads:
    # that gives the end a steady chance at each step, so replies end by themselves.
    embed = normal(len(tokens), shape.embedding)
    embed[:, 0] = 2.0
    output = 2.0 * normal(len(tokens), shape.embedding)
    output[:, 0] = 0.0
    output[EOS] = 0.0
    output[EOS, 0] = end_bias
    weights = {"token_embd.weight": embed, "output_norm.weight": np.ones(shape.embedding)}
    weights["output.weight"] = output
    weights |= _layers(shape, normal)
    return _write(path, (tokens, types), shape, chat_template(False), weights)


class LlamaServer:
    """llama.cpp's server on a free loopback port, running one model file, as its own process."""

    def __init__(self, model: Path, log: Path, n_ctx: int = CONTEXT) -> None:
        self.model = model
        self.port = free_port()
        self.log = log
        argv = [sys.executable, "-m", "tests.harness.tiny_llama", str(model), str(self.port)]
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [*argv, str(n_ctx)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not eventually(self.ready, timeout=60):
            self.stop()
            raise RuntimeError(f"llama.cpp's server did not come up; its log: {log}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible endpoint, as `--llm-base-url` takes it."""
        return f"{self.url}/v1"

    def ready(self) -> bool:
        """Whether the server answers its health check with 200 (503 while it loads)."""
        if self.process.poll() is not None:
            raise RuntimeError(f"llama.cpp's server exited {self.process.returncode}: {self.log}")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return False

    def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """The server's JSON answer to a POST of `body`."""
        request = urllib.request.Request(
            self.url + path, json.dumps(body).encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        """Kill the server's process group and reap it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def serve(model: str, port: int, n_ctx: int) -> None:
    """Run llama.cpp's server in this process until it is killed: one slot, one thread, and a
    fixed sampling seed."""
    params = xllamacpp.CommonParams()
    params.model.path = model
    params.model_alias = {Path(model).stem}  # the name the server answers with
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = n_ctx
    params.n_parallel = 1
    params.sampling.seed = SERVER_SEED
    params.cpuparams.n_threads = 1
    params.cpuparams_batch.n_threads = 1
    server = xllamacpp.Server(params)
    print(f"serving {model} at {server.listening_address}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
