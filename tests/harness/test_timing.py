"""Tests for `harness.judge.timing` and `harness.judge.hardware` (GPU-only tests: marked `gpu`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import triton.testing
from kevolve.harness.judge.hardware import Ceilings, cached_ceilings, fingerprint, measure_ceilings
from kevolve.harness.judge.stats import median
from kevolve.harness.judge.timing import (
    LAUNCH_COVER_CYCLES,
    MAX_COVER_MS,
    Timer,
    TimingConfig,
    TimingUnavailable,
    cover_cycles,
    flush_l2_bytes,
)

CPU = torch.device("cpu")


class FakeMeasure:
    """Stands in for `measure_ceilings`: returns fixed ceilings and counts its calls."""

    def __init__(self, ceilings: Ceilings) -> None:
        self.ceilings = ceilings
        self.calls = 0

    def __call__(self, device: torch.device) -> Ceilings:
        self.calls += 1
        return self.ceilings


def _cuda() -> torch.device:
    """The current CUDA device."""
    return torch.device("cuda", torch.cuda.current_device())


# --- timing -------------------------------------------------------------------------------------


def test_timer_refuses_a_cpu_device() -> None:
    with pytest.raises(TimingUnavailable, match=r"no CUDA device: .*nothing was timed"):
        Timer(CPU, TimingConfig())


@pytest.mark.gpu
def test_timer_median_agrees_with_do_bench() -> None:
    generator = torch.Generator(device=_cuda()).manual_seed(0)
    a, b = (
        torch.randn(4096, 4096, generator=generator, device=_cuda(), dtype=torch.bfloat16)
        for _ in range(2)
    )

    def fn() -> torch.Tensor:
        return torch.mm(a, b)

    timer = Timer(_cuda(), TimingConfig())
    timer.warm_up(fn, lambda i: None)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(5):  # interleaved, so clock drift hits both alike
        ours.append(median(timer.time_calls(fn, lambda i: None, 50).event_ms))
        theirs.append(float(triton.testing.do_bench(fn, warmup=10, rep=50, return_mode="median")))
    assert median(ours) == pytest.approx(median(theirs), rel=0.05)


@pytest.mark.parametrize(
    ("launch_ms", "cycles"),
    [
        (0.0, LAUNCH_COVER_CYCLES),  # a fast launch keeps the least cover
        (0.05, LAUNCH_COVER_CYCLES),  # 2 x 0.05 ms x 1.5e6 = 150000: still under the least
        (0.2, 600_000),  # twice the launch, at 1.5e6 cycles a millisecond
        (1000.0, int(MAX_COVER_MS * 1.5e6)),  # a call that waited on the GPU: capped
    ],
)
def test_the_launch_cover_is_twice_the_longest_launch_within_its_bounds(
    launch_ms: float, cycles: int
) -> None:
    assert cover_cycles(launch_ms, 1.5e6) == cycles


@pytest.mark.gpu
def test_the_cover_grows_with_a_slow_host_launch() -> None:
    timer = Timer(_cuda(), TimingConfig())
    x = torch.ones(1024, device=_cuda())

    def slow_launch() -> object:
        time.sleep(0.002)  # host work before the launch, as a heavy Python wrapper would do
        return x + 1

    timer.time_calls(slow_launch, lambda i: None, 2)
    assert timer.launch_ms >= 2.0 and timer.cover > LAUNCH_COVER_CYCLES
    times = timer.time_calls(slow_launch, lambda i: None, 5)
    # With the cover grown past the launch, the events see the add only, not the host's sleep.
    assert median(times.event_ms) < 1.0


@pytest.mark.gpu
def test_prepare_runs_once_before_each_call() -> None:
    events: list[str] = []
    x = torch.ones(1024, device=_cuda())

    def fn() -> torch.Tensor:
        events.append("call")
        return x * 2

    times = Timer(_cuda(), TimingConfig()).time_calls(
        fn, lambda i: events.append(f"prepare {i}"), 3
    )
    assert events == ["prepare 0", "call", "prepare 1", "call", "prepare 2", "call"]
    assert len(times.event_ms) == len(times.wall_ms) == 3
    assert torch.equal(times.last_result, x * 2)  # type: ignore[arg-type]


@pytest.mark.gpu
def test_flush_buffer_exceeds_l2() -> None:
    l2_bytes = torch.cuda.get_device_properties(_cuda()).L2_cache_size
    assert flush_l2_bytes(_cuda()) >= 2 * l2_bytes
    assert TimingConfig().flush_bytes > l2_bytes


# --- hardware -----------------------------------------------------------------------------------


def test_fingerprint_on_cpu_has_the_keys() -> None:
    identity = fingerprint(CPU)
    assert set(identity) == {"device", "cpu", "torch", "triton", "python"}
    assert identity["device"] == "cpu"
    assert identity["torch"] == torch.__version__
    json.dumps(identity)


def test_cached_ceilings_measure_once_then_read_the_cache(tmp_path: Path) -> None:
    measure = FakeMeasure(Ceilings(copy_gbps=3000.0, matmul_tflops=700.0))
    first = cached_ceilings(CPU, tmp_path, measure=measure)
    second = cached_ceilings(CPU, tmp_path, measure=measure)
    assert first == second == measure.ceilings
    assert measure.calls == 1
    (stored,) = tmp_path.glob("*.json")
    assert json.loads(stored.read_text())["fingerprint"] == fingerprint(CPU)


@pytest.mark.parametrize("text", ["{not json", "[]", '{"ceilings": {"copy_gbps": "fast"}}'])
def test_corrupt_cache_is_measured_again_and_overwritten(tmp_path: Path, text: str) -> None:
    cached_ceilings(CPU, tmp_path, measure=FakeMeasure(Ceilings(1.0, 1.0)))
    (stored,) = tmp_path.glob("*.json")
    stored.write_text(text)
    measure = FakeMeasure(Ceilings(copy_gbps=2500.0, matmul_tflops=650.0))
    assert cached_ceilings(CPU, tmp_path, measure=measure) == measure.ceilings
    assert measure.calls == 1
    assert (
        cached_ceilings(CPU, tmp_path, measure=FakeMeasure(Ceilings(9.0, 9.0))) == measure.ceilings
    )


def test_measure_ceilings_refuses_a_cpu_device() -> None:
    with pytest.raises(TimingUnavailable):
        measure_ceilings(CPU)


@pytest.mark.gpu
def test_fingerprint_on_gpu_has_the_keys() -> None:
    identity = fingerprint(_cuda())
    assert identity["device"] == "cuda"
    assert {"name", "capability", "memory_gib", "sm_count", "l2_bytes", "driver", "cuda"} <= set(
        identity
    )
    assert isinstance(identity["l2_bytes"], int) and identity["l2_bytes"] > 0


@pytest.mark.gpu
def test_ceilings_are_plausible() -> None:
    ceilings = measure_ceilings(_cuda())
    assert 1000.0 <= ceilings.copy_gbps <= 6000.0
    assert 200.0 <= ceilings.matmul_tflops <= 2000.0
