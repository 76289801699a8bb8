"""`kevolve optimize` as a user runs it: a tuner-only search on CPU, killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]

KERNEL = """import torch
import triton
import triton.language as tl

BLOCK = 256


@triton.jit
def _double_kernel(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)


def double(x):
    y = torch.empty_like(x)
    n = x.numel()
    _double_kernel[(triton.cdiv(n, BLOCK),)](x, y, n, BLOCK=BLOCK)
    return y
"""

REFERENCE = """import torch


def double(x):
    return x * 2.0


def inputs(shape, dtype, device, generator):
    return (torch.randn(shape, generator=generator, device=device).to(dtype),)
"""

CONFIG = """[tool.kevolve.ops.double]
kernel = "ops/double.py"
entry = "double"
reference = "ops/reference.py:double"
inputs = "ops/reference.py:inputs"
dtypes = ["float32"]
shapes = [[4096]]
check_shapes = [[7], [300]]
"""


def make_repo(root: Path) -> Path:
    (root / "ops").mkdir(parents=True)
    (root / "ops" / "double.py").write_text(KERNEL)
    (root / "ops" / "reference.py").write_text(REFERENCE)
    (root / "pyproject.toml").write_text(CONFIG)
    return root


def optimize(repo: Path, state: Path, out: Path) -> subprocess.Popen[bytes]:
    argv = [
        sys.executable,
        "-m",
        "kevolve.bot.commands.cli",
        "optimize",
        str(repo),
        "--budget",
        "7",
        "--device",
        "cpu",
        "--parallel",
        "2",
        "--seed",
        "3",
        "--state",
        str(state),
        "--out",
        str(out),
        "--timeout",
        "60",
    ]
    return subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )


def stored(state: Path) -> dict[str, str]:
    with sqlite3.connect(state) as db:
        try:
            rows = db.execute("SELECT candidate_id, evaluation FROM evaluations").fetchall()
        except sqlite3.OperationalError:  # the file exists before the search made its tables
            return {}
        return dict(rows)


def finish(proc: subprocess.Popen[bytes]) -> None:
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()


def outcome(path: Path) -> dict[str, object]:
    result = json.loads(path.read_text())
    history = [(h["candidate"], h["verdict"]) for h in result["history"]]
    return {
        "evaluated": result["evaluated"],
        "counts": result["counts"],
        "best": result["best"]["id"],
        "history": history,
    }


def test_a_search_killed_with_sigkill_resumes_without_losing_or_repeating_work(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    finish(optimize(repo, tmp_path / "a.sqlite", tmp_path / "a.json"))
    assert outcome(tmp_path / "a.json")["evaluated"] == 7  # the budget, never overshot

    state = tmp_path / "b.sqlite"
    proc = optimize(repo, state, tmp_path / "b.json")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        if state.exists() and len(stored(state)) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the search ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = stored(state)
    assert 3 <= len(before) < 7

    finish(optimize(repo, state, tmp_path / "b.json"))
    after = stored(state)
    assert {k: after[k] for k in before} == before  # nothing finished was judged again
    assert outcome(tmp_path / "b.json") == outcome(tmp_path / "a.json")
    assert len(after) == outcome(tmp_path / "a.json")["evaluated"]


@pytest.mark.parametrize(
    "extra, hide_ray, message",
    [
        (
            ["--executor", "rey"],
            False,
            "argument --executor: unknown executor 'rey'; use local or ray",
        ),
        (
            ["--executor", "ray", "--ray-address", "head-node"],
            False,
            "argument --ray-address: 'head-node' is not a Ray cluster address. Fix: give host:port",
        ),
        (
            ["--ray-address", "127.0.0.1:6379"],
            False,
            "kevolve: error: --ray-address is for --executor ray. Fix: add --executor ray, or "
            "drop it",
        ),
        (
            ["--executor", "ray"],
            True,
            "kevolve: error: --executor ray needs Ray: pip install 'kevolve[ray]'",
        ),
        (
            ["--executor", "ray", "--ray-address", "127.0.0.1:{port}"],
            False,
            "kevolve: error: no Ray cluster answers at 127.0.0.1:{port} (Connection refused). "
            "Fix: start one",
        ),
    ],
)
def test_a_bad_executor_exits_2_naming_the_flag_and_the_fix(
    tmp_path: Path, extra: list[str], hide_ray: bool, message: str
) -> None:
    port = free_port()
    hide = "sys.modules['ray'] = None; " if hide_ray else ""  # what a host without Ray meets
    code = f"import sys; {hide}from kevolve.bot.commands.cli import main; sys.exit(main())"
    argv = [sys.executable, "-c", code, "optimize", str(ROOT / "examples" / "demo")]
    argv += ["--op", "softmax", "--device", "cpu", "--state", str(tmp_path / "s.sqlite")]
    argv += [arg.format(port=port) for arg in extra]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert message.format(port=port) in done.stderr
    assert "Traceback" not in done.stderr


def test_a_failing_harness_ends_the_search_with_a_message_and_keeps_the_state(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "repo")
    broken = REFERENCE.replace("    return x * 2.0", '    raise RuntimeError("reference bug")')
    (repo / "ops" / "reference.py").write_text(broken)
    state = tmp_path / "s.sqlite"
    proc = optimize(repo, state, tmp_path / "out.json")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    text = err.decode()
    assert "kevolve: error: the judge failed: RuntimeError: reference bug." in text
    assert f"Every finished evaluation is kept in {state}: run the same command again" in text
    assert "Traceback" not in text and state.exists()
