"""Tests for harness.search.transport with real processes and files: a command run per prompt
(`CommandTransport`) and a folder of prompts and replies (`QueueTransport`), alone and under the
`LLMProposer` (harness.search.llm), whose configuration picks one of them."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import sys
import textwrap
import time
from pathlib import Path

import pytest
from kevolve.harness.search.llm import (
    RATIONALE_CHARS,
    LLMConfig,
    LLMProposer,
    rationale,
    transport_for,
)
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import ProposalContext
from kevolve.harness.search.transport import (
    Ask,
    CommandSettings,
    CommandTransport,
    QueueTransport,
    ReplyPending,
    TransportError,
)

from tests.bot.processes import alive, eventually
from tests.harness.conftest import MODULE, PARENT

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "prompts"
WHY = "Wider blocks move more bytes per program.\nThey also halve the loop trips."
EDIT = f"{WHY}\n<<<<<<< SEARCH\nBLOCK = 256\n=======\nBLOCK = 1024\n>>>>>>> REPLACE\n"
FULL = f"A one-pass kernel:\n```python\n{MODULE}```\n"
KEY = "softmax-g000-s00"  # the first prompt of a context without a search name or generation
NO_CODE = "reply holds no SEARCH/REPLACE edit that applies and no parseable module"

# A command that answers with the bytes of the file named in its argument (after reading the
# prompt, as an agent CLI would).
CAT = """
import sys
sys.stdin.buffer.read()
with open(sys.argv[1], "rb") as reply:
    sys.stdout.buffer.write(reply.read())
"""


def ask(text: str = "Make it faster.", key: str = "k-1") -> Ask:
    """A two-message prompt as the proposer builds them, with a sidecar's worth of `about`."""
    messages = (
        {"role": "system", "content": "You write Triton.\n"},
        {"role": "user", "content": text},
    )
    return Ask(key, "model-a", messages, {"search": "softmax", "generation": 3, "island": 1})


def script(tmp_path: Path, body: str, name: str = "agent") -> tuple[str, ...]:
    """The argv that runs `body` as a Python script written under `tmp_path`."""
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(body))
    return (sys.executable, str(path))


def replying(tmp_path: Path, reply: bytes) -> tuple[str, ...]:
    """The argv of a command whose stdout is `reply`."""
    (tmp_path / "reply.bin").write_bytes(reply)
    return (*script(tmp_path, CAT, "cat_reply"), str(tmp_path / "reply.bin"))


# --- CommandTransport ---------------------------------------------------------------------------


def test_a_command_gets_the_prompt_on_stdin_and_its_stdout_is_the_reply(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        """
        import hashlib, sys
        prompt = sys.stdin.buffer.read()
        first = prompt.decode().splitlines()[0]
        print(f"sha256 {hashlib.sha256(prompt).hexdigest()}, first line {first!r}")
        """,
    )
    transport = CommandTransport(CommandSettings(argv, timeout_s=60))
    prompt = ask("Make it faster.\nKeep the signature.")
    reply = transport.complete(prompt)
    digest = hashlib.sha256(prompt.text().encode()).hexdigest()
    assert prompt.text() == "You write Triton.\n\nMake it faster.\nKeep the signature.\n"
    assert reply.text == f"sha256 {digest}, first line 'You write Triton.'\n"
    assert (reply.truncated, reply.prompt_tokens, reply.completion_tokens) == (False, 0, 0)
    assert (reply.model, reply.shown) == ("", None)
    assert transport.requests == 1


def test_a_command_sees_only_path_home_lang_its_own_variables_and_the_prompt_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LANG", "C.UTF-8")
    monkeypatch.setenv("KEVOLVE_LLM_API_KEY", "sk-kevolve-bot-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("AGENT_API_KEY", "the-operator-did-not-hand-this-over")
    work = tmp_path / "work"
    work.mkdir()
    # The environment the kernel handed the process (Python may add LC_CTYPE to its own copy).
    argv = script(
        tmp_path,
        """
        import json, os, sys
        sys.stdin.read()
        raw = open("/proc/self/environ", "rb").read().split(b"\\0")
        env = dict(item.decode().split("=", 1) for item in raw if item)
        json.dump({"env": env, "cwd": os.getcwd()}, sys.stdout)
        """,
    )
    settings = CommandSettings(argv, timeout_s=60, env={"AGENT_API_KEY": "handed-over"}, cwd=work)
    seen = json.loads(CommandTransport(settings).complete(ask(key="softmax-g002-s01")).text)
    assert seen["env"] == {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "AGENT_API_KEY": "handed-over",
        "KEVOLVE_PROMPT_KEY": "softmax-g002-s01",
        "KEVOLVE_MODEL": "model-a",
    }
    assert seen["cwd"] == str(work)


def test_a_failing_command_names_its_exit_status_and_last_stderr_line(tmp_path: Path) -> None:
    argv = script(
        tmp_path,
        """
        import sys
        sys.stdin.read()
        print("half a reply")
        print("connecting to the model", file=sys.stderr)
        print("error: quota exceeded for this key", file=sys.stderr)
        sys.exit(3)
        """,
    )
    transport = CommandTransport(CommandSettings(argv, timeout_s=60))
    with pytest.raises(TransportError) as failed:
        transport.complete(ask())
    assert str(failed.value) == f"{argv[0]} exited with 3: error: quota exceeded for this key"
    assert transport.requests == 1


def test_a_failing_command_without_stderr_says_so(tmp_path: Path) -> None:
    argv = script(tmp_path, "import sys\nsys.stdin.read()\nsys.exit(1)\n")
    with pytest.raises(TransportError) as failed:
        CommandTransport(CommandSettings(argv, timeout_s=60)).complete(ask())
    assert str(failed.value) == f"{argv[0]} exited with 1: no stderr"


def test_a_command_that_outlives_its_timeout_is_stopped_with_an_error(tmp_path: Path) -> None:
    argv = script(tmp_path, "import time\ntime.sleep(120)\n")
    started = time.monotonic()
    with pytest.raises(TransportError) as failed:
        CommandTransport(CommandSettings(argv, timeout_s=0.5)).complete(ask())
    assert str(failed.value) == f"{argv[0]} gave no reply within 0.5 s"
    assert time.monotonic() - started < 60  # killed, not waited for


def test_a_timed_out_command_leaves_no_process_behind(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    argv = script(
        tmp_path,
        f"""
        import subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(worker.pid))
        time.sleep(120)
        """,
    )
    with pytest.raises(TransportError, match="gave no reply"):
        CommandTransport(CommandSettings(argv, timeout_s=2.0)).complete(ask())
    worker = int(pid_file.read_text())
    try:
        assert eventually(lambda: not alive(worker), timeout=3.0)
    finally:
        if alive(worker):
            os.kill(worker, 9)


def test_a_command_that_exits_with_its_reply_answers_though_its_worker_lives_on(
    tmp_path: Path,
) -> None:
    pid_file = tmp_path / "worker.pid"
    argv = script(
        tmp_path,
        f"""
        import subprocess, sys
        sys.stdin.read()
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
        open({str(pid_file)!r}, "w").write(str(worker.pid))
        print("Use wider blocks.")
        """,
    )
    try:
        reply = CommandTransport(CommandSettings(argv, timeout_s=3.0)).complete(ask())
        assert reply.text == "Use wider blocks.\n"
    finally:
        if pid_file.exists() and alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), 9)


@pytest.mark.parametrize(("size", "truncated"), [(999, False), (1000, False), (1001, True)])
def test_output_beyond_the_limit_is_cut_and_marked(
    tmp_path: Path, size: int, truncated: bool
) -> None:
    argv = replying(tmp_path, b"x" * size)
    reply = CommandTransport(CommandSettings(argv, max_output_bytes=1000)).complete(ask())
    assert reply.text == "x" * min(size, 1000)
    assert reply.truncated is truncated


def test_a_missing_program_is_an_error_not_a_crash(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-agent")
    with pytest.raises(TransportError) as failed:
        CommandTransport(CommandSettings((missing, "--print"))).complete(ask())
    assert str(failed.value) == f"{missing} could not be run: No such file or directory"


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="the LLM command is empty"):
        CommandTransport(CommandSettings(()))


# --- QueueTransport -----------------------------------------------------------------------------


def test_a_missing_reply_writes_the_prompt_and_its_sidecar_and_waits(tmp_path: Path) -> None:
    queue = QueueTransport(tmp_path / "queue", clock=lambda: 1234.5)
    prompt = ask(key="softmax-g003-s01")
    with pytest.raises(ReplyPending) as pending:
        queue.complete(prompt)
    assert pending.value.key == "softmax-g003-s01"
    prompts = tmp_path / "queue" / "prompts"
    assert sorted(p.name for p in prompts.iterdir()) == [
        "softmax-g003-s01.json",
        "softmax-g003-s01.md",
    ]  # and no partial files left behind
    assert (prompts / "softmax-g003-s01.md").read_text() == prompt.text()
    assert json.loads((prompts / "softmax-g003-s01.json").read_text()) == {
        "key": "softmax-g003-s01",
        "model": "model-a",
        "search": "softmax",
        "generation": 3,
        "island": 1,
        "written_at": 1234.5,
    }
    assert (tmp_path / "queue" / "replies").is_dir()  # where the replies go, ready to write
    assert queue.requests == 0  # waiting is not a request


def test_asking_again_for_a_pending_reply_keeps_the_first_prompt(tmp_path: Path) -> None:
    queue = QueueTransport(tmp_path, clock=itertools.count(100).__next__)
    with pytest.raises(ReplyPending):
        queue.complete(ask("the first text"))
    with pytest.raises(ReplyPending):
        queue.complete(ask("a later text"))
    assert (tmp_path / "prompts" / "k-1.md").read_text() == ask("the first text").text()
    assert json.loads((tmp_path / "prompts" / "k-1.json").read_text())["written_at"] == 100


@pytest.mark.parametrize("suffix", [".md", ".txt"])
def test_a_reply_file_is_the_reply(tmp_path: Path, suffix: str) -> None:
    queue = QueueTransport(tmp_path)
    with pytest.raises(ReplyPending):
        queue.complete(ask())
    (tmp_path / "replies" / f"k-1{suffix}").write_text("Use wider blocks.\n")
    reply = queue.complete(ask())
    assert reply.text == "Use wider blocks.\n"
    assert (reply.truncated, reply.prompt_tokens, reply.completion_tokens) == (False, 0, 0)
    assert (reply.model, reply.shown) == ("", None)  # the prompt on file is the one asked
    assert queue.requests == 1


def test_a_reply_sidecar_names_the_model_and_its_tokens(tmp_path: Path) -> None:
    replies = tmp_path / "replies"
    replies.mkdir()
    (replies / "k-1.md").write_text("Use wider blocks.\n")
    usage = {"model": "gpt-x", "prompt_tokens": 1200, "completion_tokens": 300}
    (replies / "k-1.json").write_text(json.dumps(usage))
    reply = QueueTransport(tmp_path).complete(ask())
    assert (reply.model, reply.prompt_tokens, reply.completion_tokens) == ("gpt-x", 1200, 300)


@pytest.mark.parametrize(
    ("sidecar", "known"),
    [
        ("{not json", ("", 0, 0)),
        ("[1200, 300]", ("", 0, 0)),
        ('{"model": 7, "prompt_tokens": "many", "completion_tokens": 300}', ("", 0, 300)),
        (b"\xff\xfe\x00", ("", 0, 0)),
        ('{"prompt_tokens": -5000000, "completion_tokens": true}', ("", 0, 0)),
        ('{"prompt_tokens": 1000.0, "completion_tokens": 2.5}', ("", 1000, 0)),
    ],
)
def test_a_garbage_reply_sidecar_is_ignored(
    tmp_path: Path, sidecar: str | bytes, known: tuple[str, int, int]
) -> None:
    replies = tmp_path / "replies"
    replies.mkdir()
    (replies / "k-1.md").write_text("Use wider blocks.\n")
    path = replies / "k-1.json"
    path.write_bytes(sidecar if isinstance(sidecar, bytes) else sidecar.encode())
    reply = QueueTransport(tmp_path).complete(ask())
    assert reply.text == "Use wider blocks.\n"
    assert (reply.model, reply.prompt_tokens, reply.completion_tokens) == known


def test_a_reply_to_a_prompt_that_says_something_else_carries_that_prompt(tmp_path: Path) -> None:
    queue = QueueTransport(tmp_path)
    with pytest.raises(ReplyPending):
        queue.complete(ask("the prompt an earlier run wrote"))
    (tmp_path / "replies" / "k-1.md").write_text("Use wider blocks.\n")
    reply = queue.complete(ask("the prompt this run built"))
    assert reply.shown == ask("the prompt an earlier run wrote").text()


def test_a_reply_without_a_prompt_on_file_is_read_as_is(tmp_path: Path) -> None:
    (tmp_path / "replies").mkdir()
    (tmp_path / "replies" / "k-1.md").write_text("Use wider blocks.\n")
    reply = QueueTransport(tmp_path).complete(ask())
    assert (reply.text, reply.shown) == ("Use wider blocks.\n", None)
    assert not (tmp_path / "prompts").exists()  # answered: nothing to ask for


# --- LLMProposer over a command and a queue -----------------------------------------------------


def command_proposer(tmp_path: Path, reply: bytes) -> LLMProposer:
    """An `LLMProposer` whose command answers every prompt with `reply`."""
    config = LLMConfig(models=(("model-a", 1.0),), command=replying(tmp_path, reply))
    return LLMProposer(config, PromptBuilder(TEMPLATES))


def queue_proposer(tmp_path: Path, replies: dict[str, bytes], **overrides: object) -> LLMProposer:
    """An `LLMProposer` on a reply queue that already holds `replies` (file name -> content)."""
    folder = tmp_path / "queue" / "replies"
    folder.mkdir(parents=True)
    for name, content in replies.items():
        (folder / name).write_bytes(content)
    queue = tmp_path / "queue"
    config = LLMConfig(models=(("model-a", 1.0),), queue=queue, **overrides)  # type: ignore[arg-type]
    return LLMProposer(config, PromptBuilder(TEMPLATES))


def text_of(messages: tuple[dict[str, str], ...]) -> str:
    """Messages as the one text a command or a person is shown."""
    return "\n\n".join(m["content"].rstrip("\n") for m in messages) + "\n"


@pytest.mark.parametrize("transport", ["command", "queue"])
def test_a_good_reply_becomes_a_proposal_with_its_rationale(
    tmp_path: Path, ctx: ProposalContext, transport: str
) -> None:
    llm = (
        command_proposer(tmp_path, EDIT.encode())
        if transport == "command"
        else queue_proposer(tmp_path, {f"{KEY}.md": EDIT.encode()})
    )
    [proposal] = llm.propose(ctx, random.Random(0), 1)
    assert proposal.source == PARENT.replace("BLOCK = 256", "BLOCK = 1024")
    assert (proposal.parents, proposal.proposer) == ((ctx.parents[0].candidate.id,), "llm:model-a")
    exchange = proposal.exchange
    assert exchange is not None
    assert (exchange.key, exchange.model, exchange.reply, exchange.error) == (
        KEY,
        "model-a",
        EDIT,
        None,
    )
    assert exchange.rationale == " ".join(WHY.split())
    assert [m["role"] for m in exchange.messages] == ["system", "user"]
    assert "make `softmax` faster" in exchange.messages[1]["content"]
    drained = llm.drain()
    assert (drained.waiting, drained.spoiled) == ([], [])
    assert (llm.usage.requests, llm.usage.failures) == (1, 0)


def test_a_queued_prompt_waits_and_a_rerun_reads_its_reply(
    tmp_path: Path, ctx: ProposalContext
) -> None:
    config = LLMConfig(models=(("model-a", 1.0),), queue=tmp_path)
    first = LLMProposer(config, PromptBuilder(TEMPLATES))
    assert first.propose(ctx, random.Random(0), 1) == []
    drained = first.drain()
    assert (drained.waiting, drained.spoiled) == ([KEY], [])
    assert (first.usage.failures, first.last_errors) == (0, [])
    written = (tmp_path / "prompts" / f"{KEY}.md").read_text()
    sidecar = json.loads((tmp_path / "prompts" / f"{KEY}.json").read_text())
    assert sidecar["parent"] == ctx.parents[0].candidate.id
    assert (sidecar["repair_of"], sidecar["repair_turn"], sidecar["model_slot"]) == (
        None,
        0,
        "model-a",
    )

    (tmp_path / "replies" / f"{KEY}.md").write_text(EDIT)
    rerun = LLMProposer(config, PromptBuilder(TEMPLATES))
    [proposal] = rerun.propose(ctx, random.Random(0), 1)
    assert proposal.exchange is not None
    assert text_of(proposal.exchange.messages) == written  # the prompt kept is the one answered
    assert rerun.drain().waiting == []


def test_per_model_prices_give_each_reply_its_cost(tmp_path: Path, ctx: ProposalContext) -> None:
    usage_x = {"model": "gpt-x", "prompt_tokens": 1000, "completion_tokens": 200}
    usage_slot = {"prompt_tokens": 3000, "completion_tokens": 500}  # no model: the slot's
    replies = {
        f"{KEY}.md": EDIT.encode(),
        f"{KEY}.json": json.dumps(usage_x).encode(),
        f"{KEY}-1.md": FULL.encode(),
        f"{KEY}-1.json": json.dumps(usage_slot).encode(),
    }
    llm = queue_proposer(
        tmp_path, replies, prices=(("gpt-x", 2.0, 10.0),), price_per_mtok=(1.0, 4.0)
    )
    proposals = llm.propose(ctx, random.Random(0), 2)
    assert [p.proposer for p in proposals] == ["llm:gpt-x", "llm:model-a"]
    exchanges = [p.exchange for p in proposals if p.exchange is not None]
    assert [(e.key, e.model) for e in exchanges] == [(KEY, "gpt-x"), (f"{KEY}-1", "model-a")]
    cost_x = (1000 * 2.0 + 200 * 10.0) / 1e6
    cost_slot = (3000 * 1.0 + 500 * 4.0) / 1e6
    assert [e.cost_usd for e in exchanges] == pytest.approx([cost_x, cost_slot])
    assert [(e.prompt_tokens, e.completion_tokens) for e in exchanges] == [(1000, 200), (3000, 500)]
    usage = llm.usage
    assert usage.cost_usd == pytest.approx(cost_x + cost_slot)
    assert (usage.prompt_tokens, usage.completion_tokens) == (4000, 700)
    assert usage.by_model == {
        "gpt-x": {"replies": 1, "tokens": 1200, "cost_usd": pytest.approx(cost_x)},
        "model-a": {"replies": 1, "tokens": 3500, "cost_usd": pytest.approx(cost_slot)},
    }


UNUSABLE = {
    "garbage": b"\x00\xff\xfe\x9c binary \x1b[31m noise",
    "empty": b"",
    "prose": b"I would use a bigger block and more warps, but I cannot write the code.\n",
}


@pytest.mark.parametrize("transport", ["command", "queue"])
@pytest.mark.parametrize("kind", sorted(UNUSABLE))
def test_an_unusable_reply_is_kept_as_a_spoiled_exchange(
    tmp_path: Path, ctx: ProposalContext, transport: str, kind: str
) -> None:
    reply = UNUSABLE[kind]
    llm = (
        command_proposer(tmp_path, reply)
        if transport == "command"
        else queue_proposer(tmp_path, {f"{KEY}.md": reply})
    )
    assert llm.propose(ctx, random.Random(0), 1) == []
    drained = llm.drain()
    assert drained.waiting == []
    [spoiled] = drained.spoiled
    text = reply.decode(errors="replace")
    assert (spoiled.key, spoiled.model, spoiled.reply) == (KEY, "model-a", text)
    assert spoiled.error == f"{NO_CODE} ({len(text)} characters)"
    assert [m["role"] for m in spoiled.messages] == ["system", "user"]
    assert llm.last_errors == [f"model-a: {spoiled.error}"]
    assert (llm.usage.requests, llm.usage.failures) == (1, 1)
    assert llm.drain().spoiled == []  # drained once


def test_a_reply_cut_at_the_output_limit_is_spoiled_and_says_so(
    tmp_path: Path, ctx: ProposalContext
) -> None:
    argv = replying(tmp_path, FULL.encode())
    config = LLMConfig(models=(("model-a", 1.0),), command=argv)
    whole = CommandTransport(CommandSettings(argv, max_output_bytes=len(FULL)))
    uncut = LLMProposer(config, PromptBuilder(TEMPLATES), transport=whole)
    assert len(uncut.propose(ctx, random.Random(0), 1)) == 1  # the same reply, whole, is good

    cut = CommandTransport(CommandSettings(argv, max_output_bytes=len(FULL) // 2))
    llm = LLMProposer(config, PromptBuilder(TEMPLATES), transport=cut)
    assert llm.propose(ctx, random.Random(0), 1) == []
    [spoiled] = llm.drain().spoiled
    assert spoiled.reply == FULL[: len(FULL) // 2]
    expected = f"{NO_CODE} ({len(FULL) // 2} characters, cut at the output limit (max_tokens))"
    assert spoiled.error == expected


def test_a_failing_command_is_kept_as_a_spoiled_exchange_without_a_reply(
    tmp_path: Path, ctx: ProposalContext
) -> None:
    argv = script(tmp_path, "import sys\nsys.stdin.read()\nsys.exit('rate limited')\n")
    llm = LLMProposer(LLMConfig(models=(("model-a", 1.0),), command=argv), PromptBuilder(TEMPLATES))
    assert llm.propose(ctx, random.Random(0), 1) == []
    [spoiled] = llm.drain().spoiled
    assert (spoiled.key, spoiled.reply) == (KEY, None)
    assert spoiled.error == f"{argv[0]} exited with 1: rate limited"
    assert llm.last_errors == [f"model-a: {spoiled.error}"]


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (EDIT, " ".join(WHY.split())),
        ("Fuse the passes:\n\n```python\nx = 1\n```\nThen it is fast.", "Fuse the passes:"),
        ("<<<<<<< SEARCH\na\n=======\nb\n>>>>>>> REPLACE\n", ""),
        ("Only prose, no code at all.", ""),
        (
            "word " * 200 + "\n```python\nx = 1\n```\n",
            ("word " * 200)[: RATIONALE_CHARS - 3] + "...",
        ),
    ],
)
def test_the_rationale_is_the_prose_before_the_code(reply: str, expected: str) -> None:
    assert rationale(reply) == expected


# --- LLMConfig ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "transports",
    [
        {"command": ("agent",), "queue": Path("queue")},
        {"base_url": "http://127.0.0.1:1/v1", "queue": Path("queue")},
        {"base_url": "http://127.0.0.1:1/v1", "command": ("agent",)},
        {},
    ],
)
def test_an_llm_needs_exactly_one_transport(transports: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="an LLM needs exactly one transport"):
        LLMConfig(models=(("m", 1.0),), **transports)  # type: ignore[arg-type]


def test_repair_turns_and_the_cost_cap_are_checked() -> None:
    with pytest.raises(ValueError, match="the repair turns must be >= 0, not -1"):
        LLMConfig(models=(("m", 1.0),), queue=Path("q"), repairs=-1)
    with pytest.raises(ValueError, match="the cost cap must be above 0 USD"):
        LLMConfig(models=(("m", 1.0),), queue=Path("q"), max_usd=0.0)
    assert LLMConfig(models=(("m", 1.0),), queue=Path("q"), repairs=0).repairs == 0


def test_the_config_builds_the_transport_it_names(tmp_path: Path) -> None:
    command = LLMConfig(
        models=(("m", 1.0),),
        command=("agent", "--print"),
        command_env=(("AGENT_API_KEY", "k"),),
        timeout_s=42.0,
    )
    built = transport_for(command)
    assert isinstance(built, CommandTransport)
    assert built.settings.argv == ("agent", "--print")
    assert (built.settings.timeout_s, dict(built.settings.env)) == (42.0, {"AGENT_API_KEY": "k"})
    assert command.transport_name == "command"
    queue = LLMConfig(models=(("m", 1.0),), queue=tmp_path)
    built_queue = transport_for(queue)
    assert isinstance(built_queue, QueueTransport) and built_queue.root == tmp_path
    assert queue.transport_name == "queue"
