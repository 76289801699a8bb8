"""`Footprint`: the memory one case needs at once, the judge and the worker together, estimated
from its inputs' and outputs' sizes before anything is allocated.

A case that cannot fit the device at all gets a verdict that names the GiB it needs and the
largest size of its leading dimension that fits, instead of failing wherever the first large
allocation happens to be (as `crashed`, or as an out-of-memory error blamed on the candidate).
The estimate follows what the judge and the worker hold at their peaks:

- the judge: the inputs, the float32 working reference (made from float32 clones of the inputs),
  the reference's outputs at the problem's dtype (once per case, from clones), the candidate's
  outputs copied back, and a float64 chunk of the reference with the comparison's pieces;
- the worker: the inputs and the candidate's outputs (inputs are checked by digest, not clones);
- when timed, each side's timing inputs (`harness.judge.rotation`) and two calls' outputs, and
  the judge's recheck of the last timed outputs.

Each process keeps what it reserved at its peak (PyTorch's caching allocator), so the two peaks
add up. The candidate's own temporaries are not counted: they are its business.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

GIB = 2**30
WORKER_SHARE = 0.45  # of the device's memory, the most the worker may allocate
# The judge's and the worker's CUDA contexts, their L2 flush buffers, the worker's poisoned cache.
DEVICE_RESERVE = 2 * 640 * 2**20 + 2 * 256 * 2**20 + GIB
HEADROOM = 0.95  # of what is left, the share the allocators can fill (fragmentation)
COMPARE_WORK = 12 * 8 * 2**24  # float64 temporaries of one comparison piece (pieces.py)
DIGEST_WORK = 3 * 8 * 4 * 2**24  # int64 temporaries of one digest piece (bitwise.py)


@dataclass(frozen=True)
class Part:
    """Bytes of some of a case's tensors: those that grow with its leading dimension (per row
    of it) and those that do not."""

    fixed: int = 0
    per_row: int = 0

    def at(self, rows: int) -> int:
        return self.fixed + self.per_row * rows

    def plus(self, t: torch.Tensor, rows: int, itemsize: int | None = None) -> Part:
        """This part with tensor `t` added, at its own itemsize or at `itemsize`."""
        size = math.prod(t.shape) * (itemsize or t.element_size())
        if t.dim() > 0 and t.shape[0] == rows:
            return Part(self.fixed, self.per_row + size // max(rows, 1))
        return Part(self.fixed + size, self.per_row)


@dataclass(frozen=True)
class Footprint:
    """A case's tensors by kind, and how the judge times (which decides what it holds)."""

    rows: int  # the leading dimension that the case's sizes grow with (0: none)
    inputs: Part
    inputs32: Part  # float32 clones the working reference runs on
    outputs: Part  # at the outputs' own dtypes
    outputs32: Part  # the working reference's outputs
    timed: bool
    chunk_bytes: int  # float64 bytes of one reference chunk (chunked.py)
    timing_bytes: int  # what the timing inputs may hold at once (rotation.py)

    def judge(self, rows: int) -> int:
        """Bytes the judge holds at its peak with `rows` rows."""
        i, i32, o, o32 = (p.at(rows) for p in self._parts())
        chunk = 2 * min(self.chunk_bytes, 8 * (i + o)) + COMPARE_WORK
        check = i + o32 + max(i32, i + o, o + chunk)
        if not self.timed:
            return check
        timing = self._timing_inputs(i) + 2 * o
        recheck = i + o32 + max(i32, 2 * o + chunk)
        return max(check, timing, recheck)

    def worker(self, rows: int) -> int:
        """Bytes the worker holds at its peak with `rows` rows."""
        i, o = self.inputs.at(rows), self.outputs.at(rows)
        check = i + o + DIGEST_WORK
        return max(check, self._timing_inputs(i) + 2 * o) if self.timed else check

    def _parts(self) -> tuple[Part, Part, Part, Part]:
        return self.inputs, self.inputs32, self.outputs, self.outputs32

    def _timing_inputs(self, i: int) -> int:
        """Timing holds as many input sets as fit its budget, and one set at least."""
        return max(i, min(self.timing_bytes, 10 * i))


def footprint(
    inputs: Sequence[object],
    outputs: Sequence[torch.Tensor] | None,
    timed: bool,
    chunk_bytes: int,
    timing_bytes: int,
) -> Footprint:
    """The footprint of a case from its inputs and outputs (meta tensors do: only sizes count);
    outputs None where the reference could not say, taken as large as the largest input."""
    tensors = [v for v in inputs if isinstance(v, torch.Tensor)]
    if outputs is None:
        outputs = sorted(tensors, key=lambda t: t.numel() * t.element_size())[-1:]
    rows = _rows(tensors, outputs)
    fp = Footprint(rows, Part(), Part(), Part(), Part(), timed, chunk_bytes, timing_bytes)
    for t in tensors:
        wide = 4 if t.is_floating_point() else None
        fp = replace(fp, inputs=fp.inputs.plus(t, rows), inputs32=fp.inputs32.plus(t, rows, wide))
    for t in outputs:
        wide = 4 if t.is_floating_point() else None
        fp = replace(
            fp, outputs=fp.outputs.plus(t, rows), outputs32=fp.outputs32.plus(t, rows, wide)
        )
    return fp


def _rows(inputs: Sequence[torch.Tensor], outputs: Sequence[torch.Tensor]) -> int:
    """The leading dimension of the outputs (or else of the first input); 0 where there is none."""
    for t in [*outputs, *inputs]:
        if t.dim() > 0:
            return int(t.shape[0])
    return 0


@dataclass(frozen=True)
class Capacity:
    """The memory a case may use: the device's, and the worker's share of it (None: no cap)."""

    total: int
    worker: int | None
    where: str  # e.g. "the 79.1 GiB of NVIDIA H100 80GB HBM3"


def capacity(device: torch.device) -> Capacity:
    """What the device holds: a GPU's memory less the processes' fixed costs, or the host's
    available memory for the CPU."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        usable = int((props.total_memory - DEVICE_RESERVE) * HEADROOM)
        where = f"the {props.total_memory / GIB:.1f} GiB of this {props.name}"
        return Capacity(usable, int(props.total_memory * WORKER_SHARE), where)
    available = host_available()
    return Capacity(available, None, f"the {available / GIB:.1f} GiB this host has available")


def host_available(meminfo: Path = Path("/proc/meminfo")) -> int:
    """The host's available memory in bytes (Linux's MemAvailable, else free pages)."""
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def misfit(fp: Footprint, cap: Capacity) -> str | None:
    """Why the case cannot fit (the GiB it needs, the largest size that fits), or None."""
    need, worker = fp.judge(fp.rows) + fp.worker(fp.rows), fp.worker(fp.rows)
    if _fits(fp, cap, fp.rows):
        return None
    if cap.worker is not None and worker > cap.worker and need <= cap.total:
        what = (
            f"the worker alone needs about {worker / GIB:.1f} GiB, more than its share "
            f"({cap.worker / GIB:.1f} GiB)"
        )
    else:
        what = f"more than {cap.where}"
    tensors = (
        f"inputs {fp.inputs.at(fp.rows) / GIB:.1f} GiB, outputs {fp.outputs.at(fp.rows) / GIB:.1f}"
        f" GiB"
    )
    return (
        f"does not fit: judging it needs about {need / GIB:.1f} GiB at once ({tensors}, with the "
        f"judge's float32 reference, the outputs copied back and the worker's own), {what}; "
        f"{_largest(fp, cap)}"
    )


def _fits(fp: Footprint, cap: Capacity, rows: int) -> bool:
    worker = fp.worker(rows)
    if cap.worker is not None and worker > cap.worker:
        return False
    return fp.judge(rows) + worker <= cap.total


def _largest(fp: Footprint, cap: Capacity) -> str:
    """Words for the largest leading dimension that fits, found by bisection."""
    if fp.rows < 2 or not _fits(fp, cap, 1):
        return "no size of it fits: even one row of its leading dimension is too much"
    low, high = 1, fp.rows  # fits(low), not fits(high)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if _fits(fp, cap, middle) else (low, middle)
    need = (fp.judge(low) + fp.worker(low)) / GIB
    return (
        f"the largest size that fits has {low} of its {fp.rows} rows along the leading "
        f"dimension (about {need:.1f} GiB): make the leading dimension at most {low}"
    )
