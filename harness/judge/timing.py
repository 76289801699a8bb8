"""`Timer`: per-call CUDA event timing with the L2 flushed and the whole device synchronized."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

_L2_FLOOR_BYTES = 64 * 2**20


# About 100-150 us of GPU spin at H100/H200 clocks: longer than a Python launch of a Triton kernel.
# The least cover; after a call whose host side took longer, the next gets twice its launch time.
LAUNCH_COVER_CYCLES = 200_000
MAX_COVER_MS = 10.0  # a call that waits on the GPU itself (a sync inside) would ask for its run
_RATE_PROBE_CYCLES = 1_000_000


def cover_cycles(launch_ms: float, cycles_per_ms: float) -> int:
    """GPU spin cycles that outlast a host launch of `launch_ms` twice over: never fewer than
    `LAUNCH_COVER_CYCLES`, never more than `MAX_COVER_MS` of spin."""
    wanted = math.ceil(2 * launch_ms * cycles_per_ms)
    ceiling = math.ceil(MAX_COVER_MS * cycles_per_ms)
    return max(LAUNCH_COVER_CYCLES, min(wanted, ceiling))


class TimingUnavailable(RuntimeError):
    """Raised where nothing can be timed (no CUDA device)."""


@dataclass(frozen=True)
class TimingConfig:
    """How many calls to warm up and time; the caller alternates rounds between processes."""

    warmup_calls: int = 3
    rounds: int = 10
    calls_per_round: int = 10
    flush_bytes: int = 256 * 2**20  # L2 flush buffer size; must exceed L2 (50-60 MB on H100/H200)


@dataclass(frozen=True)
class CallTimes:
    """Per-call GPU event times and host wall times in milliseconds, and the last call's result.

    Wall time runs from just before the start event to after the device synchronize, so it also
    covers the tail of the L2 flush; a wall time far above the event time means work on another
    stream.
    """

    event_ms: list[float]
    wall_ms: list[float]
    last_result: object


def flush_l2_bytes(device: torch.device) -> int:
    """Bytes of a buffer that flushes the device's L2: twice its size, at least 64 MiB."""
    l2_bytes = int(torch.cuda.get_device_properties(device).L2_cache_size)
    return max(2 * l2_bytes, _L2_FLOOR_BYTES)


def _timing_event() -> torch.cuda.Event:
    """A CUDA event that records time."""
    return torch.cuda.Event(enable_timing=True)  # type: ignore[no-untyped-call]


class Timer:
    """Per-process timer: owns the L2 flush buffer and CUDA events."""

    def __init__(self, device: torch.device, config: TimingConfig) -> None:
        if device.type != "cuda" or not torch.cuda.is_available():
            raise TimingUnavailable("no CUDA device: correctness was checked, nothing was timed")
        l2_bytes = int(torch.cuda.get_device_properties(device).L2_cache_size)
        if config.flush_bytes <= l2_bytes:
            raise ValueError(f"flush_bytes {config.flush_bytes} does not exceed L2 ({l2_bytes})")
        self.device = device
        self.config = config
        self._flush = torch.empty(config.flush_bytes // 4, dtype=torch.int32, device=device)
        self._start = _timing_event()
        self._end = _timing_event()
        self.cover = LAUNCH_COVER_CYCLES  # follows the last call's host launch
        self.launch_ms = 0.0  # the last call's host launch
        self._cycles_per_ms: float | None = None

    def warm_up(self, fn: Callable[[], object], prepare: Callable[[int], None]) -> None:
        """Run `config.warmup_calls` calls exactly as timed calls run, discarding their times."""
        self.time_calls(fn, prepare, self.config.warmup_calls)

    def time_calls(
        self, fn: Callable[[], object], prepare: Callable[[int], None], n: int
    ) -> CallTimes:
        """Time n calls, each after `prepare(i)` and an L2 flush; per-call times and last result."""
        event_ms: list[float] = []
        wall_ms: list[float] = []
        result: object = None
        with torch.cuda.device(self.device):
            for i in range(n):
                prepare(i)
                event, wall, result = self._time_one(fn)
                event_ms.append(event)
                wall_ms.append(wall)
        return CallTimes(event_ms=event_ms, wall_ms=wall_ms, last_result=result)

    def _time_one(self, fn: Callable[[], object]) -> tuple[float, float, object]:
        """Flush L2, time one call, synchronize the whole device; (event ms, wall ms, result)."""
        self._flush.zero_()
        # Keep the GPU busy while the host launches the call, so the start event fires only once
        # the launch is queued. Without this cover, host launch latency (Triton's Python launcher,
        # slowed further by any other process on the CPU or GPU) leaks into short kernels' times.
        torch.cuda._sleep(self.cover)  # type: ignore[no-untyped-call]
        wall_start = time.perf_counter()
        self._start.record()
        result = fn()
        launched = time.perf_counter()
        self._end.record()
        torch.cuda.synchronize(self.device)
        wall = (time.perf_counter() - wall_start) * 1e3
        event = self._start.elapsed_time(self._end)
        self._size_cover((launched - wall_start) * 1e3)
        return event, wall, result

    def _size_cover(self, launch_ms: float) -> None:
        """Size the next call's cover from this call's host launch: a one-off slow launch (a
        first call's autotuning) costs the next call's spin only, not every later one's."""
        self.launch_ms = launch_ms
        self.cover = cover_cycles(launch_ms, self._spin_rate())

    def _spin_rate(self) -> float:
        """GPU spin cycles per millisecond on this device, measured once with the events."""
        if self._cycles_per_ms is None:
            self._start.record()
            torch.cuda._sleep(_RATE_PROBE_CYCLES)  # type: ignore[no-untyped-call]
            self._end.record()
            torch.cuda.synchronize(self.device)
            ms = max(self._start.elapsed_time(self._end), 1e-3)
            self._cycles_per_ms = _RATE_PROBE_CYCLES / ms
        return self._cycles_per_ms
