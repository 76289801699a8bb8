"""Tests for `harness.judge.client`: the worker's refusals, deaths and hangs become `Failure`s."""

from __future__ import annotations

import io
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.client import Preempted, WorkerClient
from kevolve.harness.judge.subject import Failure
from kevolve.harness.sandbox import channel
from kevolve.harness.sandbox.spawn import Limits, clean_env
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import problem_to_dict

ROOT = Path(__file__).resolve().parents[2]
SOFTMAX = ROOT / "examples" / "kernelbench" / "softmax.py"
GOOD = ROOT / "tests" / "corpus" / "kernelbench" / "softmax__good_online.py"
STARTUP = 120.0  # seconds a fresh worker may take to import torch and triton
# Adds the call count to x (so a repeat differs) and doubles x[0, 0] in place.
TRICKSTER = """
import torch
import torch.nn as nn
import triton
import triton.language as tl


@triton.jit
def _shift_kernel(x_ptr, y_ptr, n, shift, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n)
    tl.store(y_ptr + offs, x + shift, mask=offs < n)
    tl.store(x_ptr + offs, x * 2.0, mask=offs == 0)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        y, n = torch.empty_like(x), x.numel()
        _shift_kernel[(triton.cdiv(n, 1024),)](x, y, n, float(self.calls), BLOCK=1024)
        return y
"""


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerClient]:
    """A jailed worker on the CPU, stopped after the test."""
    env = clean_env({"TRITON_INTERPRET": "1"}, os.environ)
    client = WorkerClient(env, tmp_path, Limits())
    yield client
    client.close()


def load_request(candidate: Path) -> dict[str, Any]:
    """A `load` of `candidate` as the KernelBench softmax solution, on the CPU."""
    [problem] = load_problems(SOFTMAX)
    return {
        "op": "load",
        "problem": problem_to_dict(problem),
        "path": str(candidate),
        "device": "cpu",
        "init_seed": 0,
    }


def forger(directory: Path, payload: bytes) -> Path:
    """A candidate that writes `payload` straight onto the worker's reply descriptor at import."""
    path = directory / "forger.py"
    path.write_text(f"import os, sys\nos.write(int(sys.argv[1]), {payload!r})\n")
    return path


def forged_frame(header: dict[str, Any]) -> bytes:
    """A well-formed reply frame carrying `header`."""
    buffer = io.BytesIO()
    channel.send(buffer, header)
    return buffer.getvalue()


def failure(worker: WorkerClient, what: str, timeout: float) -> Failure:
    """The `Failure` that waiting for the next reply raises."""
    with pytest.raises(Failure) as info:
        worker.receive(what, timeout)
    return info.value


def test_loaded_worker_reports_its_sandbox(worker: WorkerClient) -> None:
    reply, blobs = worker.request(load_request(GOOD), "loading", STARTUP)
    assert reply["ok"] is True and blobs == []
    assert reply["sandbox"].startswith("network:")


def run_twice(worker: WorkerClient, candidate: Path) -> tuple[dict[str, Any], list[bytes]]:
    """The reply to a first trial's `run` (with its determinism repeat) of a loaded candidate."""
    worker.request(load_request(candidate), "loading", STARTUP)
    trial = {"seed": 3, "distribution": "normal"}
    run = {"op": "run", "shape": [], "dtype": "float32", "trial": trial, "repeat": 2}
    return worker.request(run, "running", STARTUP)


def test_run_sends_the_first_outputs_and_bitwise_reports(worker: WorkerClient) -> None:
    header, blobs = run_twice(worker, GOOD)
    assert header["outputs"] == [
        {"kind": "tensor", "dtype": "float32", "shape": [16, 4096], "device": "cpu"}
    ]
    assert [len(b) for b in blobs] == [16 * 4096 * 4]  # no inputs, no second run's outputs
    assert [r["inputs_changed"] for r in header["runs"]] == [None, None]
    assert all(r["launches"] and not r["forbidden"] for r in header["runs"])
    assert header["repeat_diff"] is None


def test_run_reports_modified_inputs_and_a_repeat_that_differs(
    worker: WorkerClient, tmp_path: Path
) -> None:
    trickster = tmp_path / "trickster.py"
    trickster.write_text(TRICKSTER)
    header, blobs = run_twice(worker, trickster)
    assert len(blobs) == 1
    for report in header["runs"]:
        assert report["inputs_changed"].startswith(
            "input 0 was modified in place: 1 of 65536 elements differ bitwise (first at [0, 0]: "
        )
    assert header["repeat_diff"].startswith(
        "output 0 differs between runs: 65536 of 65536 elements differ bitwise (first at [0, 0]: "
    )


def test_request_before_load_is_refused_and_the_worker_lives_on(worker: WorkerClient) -> None:
    run = {
        "op": "run",
        "shape": [],
        "dtype": "float32",
        "trial": {"seed": 0, "distribution": "normal"},
    }
    worker.send(run)
    refusal = failure(worker, "running", STARTUP)
    assert refusal.verdict is Verdict.CRASHED
    assert refusal.message == "worker received a request before 'load'"
    assert refusal.line is None
    assert worker.request({"op": "kernels"}, "reading kernels", STARTUP) == (
        {"ok": True, "kernels": [], "memory_peak": 0},  # no GPU memory on the CPU
        [],
    )


def test_outputs_of_a_case_never_timed_are_refused_and_the_worker_lives_on(
    worker: WorkerClient,
) -> None:
    worker.request(load_request(GOOD), "loading", STARTUP)
    worker.send({"op": "last", "shape": [16, 4096], "dtype": "float32"})
    refusal = failure(worker, "returning the last timed outputs", STARTUP)
    assert refusal.verdict is Verdict.CRASHED
    assert refusal.message == "no timed outputs were kept for shape [16, 4096] float32"
    reply, _ = worker.request({"op": "kernels"}, "reading kernels", STARTUP)
    assert reply["ok"] is True


def test_killed_worker_is_a_crash_that_says_how_it_died(worker: WorkerClient) -> None:
    killer = threading.Timer(0.5, os.killpg, (worker.child.proc.pid, signal.SIGKILL))
    killer.start()
    death = failure(worker, "the wait", STARTUP)
    killer.join()
    assert death.verdict is Verdict.CRASHED
    assert death.message.startswith(
        "the candidate's process died during the wait (killed by SIGKILL)"
    )


def test_missed_deadline_is_a_timeout_and_kills_the_worker(worker: WorkerClient) -> None:
    late = failure(worker, "the idle wait", 0.2)
    assert late.verdict is Verdict.TIMEOUT
    assert late.message.startswith("the idle wait did not finish within 0.2 s; the candidate was")
    assert worker.child.exit_description() == "killed by SIGKILL"


def test_garbage_on_the_reply_channel_is_a_crash(worker: WorkerClient, tmp_path: Path) -> None:
    worker.send(load_request(forger(tmp_path, (2**40).to_bytes(8, "little"))))
    worker.child.stdin.close()  # no further requests: the worker exits after its reply
    garbage = failure(worker, "loading", STARTUP)
    assert garbage.verdict is Verdict.CRASHED
    assert garbage.message.startswith(
        f"the worker sent garbage during loading (frame header of {2**40} bytes exceeds"
    )


@pytest.mark.parametrize("verdict", ["correct", "bogus"])
def test_worker_cannot_hand_itself_a_verdict(
    worker: WorkerClient, tmp_path: Path, verdict: str
) -> None:
    frame = forged_frame({"ok": False, "verdict": verdict, "message": "forged"})
    worker.send(load_request(forger(tmp_path, frame)))
    forged = failure(worker, "loading", STARTUP)
    assert forged.verdict is Verdict.CRASHED


def test_missed_budget_names_it(worker: WorkerClient) -> None:
    late = failure_with(worker, "the call", 0.2, "1 call x (0.2 s + 20 x 0.0 ms)")
    assert late.verdict is Verdict.TIMEOUT
    assert late.message == (
        "the call did not finish within 0.2 s, its budget (1 call x (0.2 s + 20 x 0.0 ms)); "
        "the candidate was killed (look for an endless loop or a hang)"
    )


def test_a_wait_that_should_yield_kills_the_worker_and_says_so(worker: WorkerClient) -> None:
    asked = threading.Event()

    def yield_now() -> bool:
        asked.set()
        return True

    with pytest.raises(Preempted) as info:  # nothing was asked: no reply can come first
        worker.receive("the call", STARTUP, yield_to=yield_now)
    assert asked.is_set()
    assert str(info.value).startswith("the call was stopped after ")
    assert str(info.value).endswith(" s so that a timer could go")
    assert worker.child.exit_description() == "killed by SIGKILL"


def test_a_wait_that_need_not_yield_gets_its_reply(worker: WorkerClient) -> None:
    asks: list[bool] = []

    def never() -> bool:
        asks.append(False)
        return False

    worker.send(load_request(GOOD))  # importing torch takes longer than one poll
    header, _ = worker.receive("loading", STARTUP, yield_to=never)
    assert header["ok"] and asks


def failure_with(worker: WorkerClient, what: str, timeout: float, why: str) -> Failure:
    """The `Failure` that waiting for the next reply raises, its budget explained by `why`."""
    with pytest.raises(Failure) as info:
        worker.receive(what, timeout, why)
    return info.value
