"""Progress of a search: a live line on a pseudo-terminal, plain log lines elsewhere; through the
real `kevolve optimize`, and the line itself with a clock of our own."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
from collections import Counter
from pathlib import Path

from kevolve.bot.progress import ProgressLine
from kevolve.harness.search.status import Status

ROOT = Path(__file__).resolve().parents[2]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_line_has_the_count_verdicts_eta_and_llm_cost() -> None:
    now = [100.0]
    stream = Terminal()
    progress = ProgressLine(10, stream, clock=lambda: now[0])
    status = Status(evaluated=1, counts=Counter({"correct": 1}))
    progress(status)  # the seed: this run's start
    now[0] += 30.0
    status.evaluated, status.counts = 4, Counter({"correct": 3, "incorrect": 1})
    status.tokens, status.cost_usd, status.generation = 12345, 0.5, 1
    progress(status)
    last = stream.getvalue().split("\r\x1b[2K")[-1]
    # 3 evaluations in 30 s, 6 left: a minute to go.
    assert last == (
        "gen 1 | evaluated 4/10 (correct:3 incorrect:1) | best - | ETA 1m00s | "
        "LLM 12,345 tokens $0.50"
    )


def test_off_a_terminal_a_line_at_most_every_interval() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = ProgressLine(5, stream, every_s=30.0, clock=lambda: now[0])
    for step in range(1, 5):
        now[0] += 10.0
        progress(Status(evaluated=step))
    progress.close()
    lines = stream.getvalue().splitlines()
    # 1 at once, 2 and 3 held back, 4 after 30 s; nothing newer was held back at the end.
    assert [line.split(" | ")[1] for line in lines] == ["evaluated 1/5", "evaluated 4/5"]
    progress(Status(evaluated=5))  # within the interval: held back, then shown on close
    assert stream.getvalue().count("\n") == 2
    progress.close()
    assert stream.getvalue().splitlines()[-1].split(" | ")[1] == "evaluated 5/5"
    assert all(line.startswith("kevolve: gen ") for line in lines)


def optimize_argv(tmp_path: Path) -> list[str]:
    return [
        sys.executable, "-m", "kevolve.bot.commands.cli", "optimize", str(ROOT / "examples/demo"),
        "--op", "softmax", "--device", "cpu", "--budget", "3", "--per-generation", "2",
        "--parallel", "1", "--state", str(tmp_path / "s.sqlite"),
    ]  # fmt: skip


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEVOLVE_LLM")}
    return {**clean, "KEVOLVE_CACHE_DIR": str(tmp_path / "cache"), **extra}


def test_optimize_on_a_pseudo_terminal_redraws_one_line(tmp_path: Path) -> None:
    primary, secondary = pty.openpty()
    child = subprocess.Popen(
        optimize_argv(tmp_path),
        cwd=ROOT,
        env=env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=secondary,
    )
    os.close(secondary)
    seen = b""
    while True:
        ready, _, _ = select.select([primary], [], [], 300)
        if not ready:
            break
        try:
            chunk = os.read(primary, 4096)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    assert child.wait(timeout=60) == 0
    os.close(primary)
    text = seen.decode(errors="replace")
    assert "\r\x1b[2Kgen 0 | evaluated 1/3 (correct:1)" in text
    assert "evaluated 3/3" in text and "kevolve: gen" not in text


def test_optimize_off_a_terminal_writes_log_lines(tmp_path: Path) -> None:
    done = subprocess.run(
        optimize_argv(tmp_path),
        cwd=ROOT,
        env=env(tmp_path, KEVOLVE_PROGRESS_EVERY_S="0.001"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.startswith("kevolve: gen ")]
    assert [line.split(" | ")[1].split(" (")[0] for line in lines] == [
        "evaluated 1/3",
        "evaluated 2/3",
        "evaluated 3/3",
    ]
    assert "\x1b[2K" not in done.stderr
