"""`Profile`: what Nsight Compute saw of a candidate's kernels, reduced to what changes a design.

A correct candidate's timings say how fast it is; a profile says why. `profile` runs one call of
the candidate on one production case under `ncu` (in the same jail the judge uses) and keeps a
small curated set per kernel: DRAM and SM throughput as a share of peak, achieved occupancy, L2
hit rate and the top warp-stall reasons, with a bound classification (memory, compute or
latency) and the lever it suggests. Torch-free: the program that runs the candidate is
`kevolve.harness.judge.replay`, in its own process.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kevolve.harness.evaluate import EvalOptions, judge_launch, judge_limits
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.sandbox.spawn import clean_env, scratch_dir, spawn
from kevolve.harness.spec.problem import Problem, problem_to_dict

# ncu's sections that hold the curated metrics: speed of light (throughputs), occupancy, warp
# state (stall reasons) and the memory workload (L2 hit rate).
SECTIONS = ("SpeedOfLight", "Occupancy", "WarpStateStats", "MemoryWorkloadAnalysis")
DURATION = "gpu__time_duration.sum"
# DRAM throughput's name moved between ncu versions; the first one present is taken.
DRAM = (
    "gpu__dram_throughput.avg.pct_of_peak_sustained_elapsed",
    "dram__throughput.avg.pct_of_peak_sustained_elapsed",
)
# The tensor-core pipes' busy share: every matrix instruction type on Hopper, else Ampere's hmma.
TENSOR = (
    "sm__pipe_tensor_type_hmma_hgmma_qgmma_imma_igmma_bmma_bgmma_cycles_active"
    ".avg.pct_of_peak_sustained_elapsed",
    "sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_elapsed",
)
HEALTHY = ("selected", "not_selected")  # issuing, or ready with another warp issuing: no stall
MEMORY = "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed"
SM = "sm__throughput.avg.pct_of_peak_sustained_elapsed"
OCCUPANCY = "sm__warps_active.avg.pct_of_peak_sustained_active"
THEORETICAL = "sm__maximum_warps_per_active_cycle_pct"
L2_HIT = "lts__t_sector_hit_rate.pct"
REGISTERS = "launch__registers_per_thread"
# Warp-state sampling names differ across ncu versions ("..._warp_latency_issue_stalled_X.ratio",
# "..._warps_issue_stalled_X_per_issue_active.ratio"): the reason X is what both share.
STALL = re.compile(
    r"^smsp__average_warps?_(?:latency_)?issue_stalled_(\w+?)(?:_per_issue_active)?\.ratio$"
)
BUSY = 60.0  # % of peak from which a unit counts as the bound
TOP_STALLS = 3

# What a stall reason usually means for a Triton kernel, in the words a kernel author acts on.
STALL_MEANING = {
    "long_scoreboard": "waiting on global memory loads",
    "short_scoreboard": "waiting on shared memory or special math",
    "barrier": "waiting at a barrier",
    "membar": "waiting at a memory fence",
    "math_pipe_throttle": "a math pipe is saturated",
    "mio_throttle": "the memory input/output queue is full",
    "lg_throttle": "the local/global memory queue is full",
    "wait": "fixed-latency dependencies",
    "not_selected": "eligible but another warp was picked (enough parallelism)",
    "selected": "issuing",
    "no_instruction": "instruction cache misses",
    "dispatch_stall": "dispatch stalls",
    "branch_resolving": "resolving branches",
    "drain": "draining memory stores at exit",
    "sleeping": "sleeping",
    "tex_throttle": "the texture pipe is full",
    "imc_miss": "constant cache misses",
    "misc": "miscellaneous",
    "gmma": "waiting on warpgroup matrix multiply-accumulate (wgmma) results",
}


class ProfileError(Exception):
    """Profiling could not run or its report could not be read (never the candidate's verdict)."""


@dataclass(frozen=True)
class Stall:
    """One warp-stall reason: cycles a warp spent stalled for it per issued instruction."""

    reason: str
    cycles: float

    @property
    def meaning(self) -> str:
        """The reason in a kernel author's words."""
        return STALL_MEANING.get(self.reason, self.reason.replace("_", " "))


@dataclass(frozen=True)
class KernelProfile:
    """The curated figures of one kernel launch."""

    name: str
    duration_us: float
    dram_pct: float | None = None
    memory_pct: float | None = None  # the busiest memory unit (DRAM, L1 or L2), % of its peak
    sm_pct: float | None = None
    tensor_pct: float | None = None  # tensor-core pipes busy, % of peak
    occupancy_pct: float | None = None  # achieved, % of the SM's warp slots
    theoretical_occupancy_pct: float | None = None
    l2_hit_pct: float | None = None
    registers: int | None = None
    stalls: tuple[Stall, ...] = ()

    @property
    def bound(self) -> str:
        """memory, compute or latency: which limit this launch is up against."""
        memory = max(self.memory_pct or 0.0, self.dram_pct or 0.0)
        compute = self.sm_pct or 0.0
        if memory >= BUSY and memory >= compute:
            return "memory"
        if compute >= BUSY:
            return "compute"
        return "latency"

    @property
    def lever(self) -> str:
        """What usually moves a kernel with this bound."""
        if self.bound == "memory":
            if (self.dram_pct or 0.0) >= 85:
                return (
                    "DRAM is near its peak: only moving fewer bytes helps (fuse passes, keep "
                    "reused data on chip, narrower loads and stores)"
                )
            return (
                "a memory unit is busy but DRAM is not at peak: coalesce accesses, raise reuse "
                "in L2/shared memory, avoid re-reading the same bytes"
            )
        if self.bound == "compute":
            return (
                "the SMs are busy: fewer instructions per output (tensor cores through tl.dot, "
                "cheaper math such as exp2, less index arithmetic)"
            )
        stall = self.stalls[0].meaning if self.stalls else "latency"
        return (
            f"neither memory nor compute is near peak (top stall: {stall}): more work in flight "
            "(more programs or warps, software pipelining with num_stages, larger tiles per "
            "program, fewer serial steps)"
        )


@dataclass(frozen=True)
class Profile:
    """A candidate's kernels on one case, as `ncu` measured one call."""

    shape: tuple[int, ...]
    dtype: str
    kernels: tuple[KernelProfile, ...]
    tool: str = ""  # ncu's version line

    @property
    def main(self) -> KernelProfile:
        """The launch that took longest: where a change pays."""
        return max(self.kernels, key=lambda k: k.duration_us)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """Rebuild a `Profile` from `Profile.to_dict` output."""
    kernels = tuple(
        KernelProfile(**{**k, "stalls": tuple(Stall(**s) for s in k.get("stalls", ()))})
        for k in data["kernels"]
    )
    return Profile(tuple(data["shape"]), data["dtype"], kernels, data.get("tool", ""))


@dataclass(frozen=True)
class Profiling:
    """How to take profiles: the `ncu` to run and how long one may take."""

    ncu: str = "ncu"
    timeout: float = 300.0
    extra_args: tuple[str, ...] = field(default=())


def available(profiling: Profiling) -> bool:
    """True when `ncu` can be found on PATH (or at the configured path)."""
    return shutil.which(profiling.ncu) is not None


def case_to_profile(ev: Evaluation) -> tuple[tuple[int, ...], str] | None:
    """The timed case furthest from its roofline (where a lever matters most), else the first."""
    if not ev.timings:
        return None
    ranked = sorted(
        ev.timings,
        key=lambda t: t.roofline_fraction if t.roofline_fraction is not None else 1.0,
    )
    return tuple(ranked[0].shape), ranked[0].dtype


def profile(
    problem: Problem,
    source: str,
    case: tuple[tuple[int, ...], str],
    options: EvalOptions,
    profiling: Profiling,
) -> Profile:
    """Profile one call of `source` on `case` under ncu, in the judge's jail; `ProfileError`
    with ncu's own words if it cannot."""
    work = scratch_dir("kevolve-profile-")
    try:
        return _profile_in(work, problem, source, case, options, profiling)
    except OSError as exc:  # ncu missing or not runnable, a full disk
        raise ProfileError(f"could not run {profiling.ncu}: {exc}") from exc
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _profile_in(
    work: Path,
    problem: Problem,
    source: str,
    case: tuple[tuple[int, ...], str],
    options: EvalOptions,
    profiling: Profiling,
) -> Profile:
    (work / "candidate").mkdir()
    candidate = work / "candidate" / "candidate.py"
    candidate.write_text(source)
    request = work / "request.json"
    shape, dtype = case
    request.write_text(
        json.dumps(
            {
                "problem": problem_to_dict(problem),
                "candidate": str(candidate),
                "shape": list(shape),
                "dtype": dtype,
                "device": "cuda" if options.device == "auto" else options.device,
            }
        )
    )
    report = work / "report"
    extra = {"PYTHONPATH": str(problem.root), "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(work)}
    if options.device == "cpu":
        extra["TRITON_INTERPRET"] = "1"  # a replay on the CPU (tests) runs Triton interpreted
    env = clean_env(extra, os.environ)
    read_fd, write_fd = os.pipe()  # the jail wants a descriptor to keep; nothing is sent on it
    os.close(read_fd)
    how = judge_launch(problem, options, env, work, write_fd)
    ncu = [
        profiling.ncu,
        "--profile-from-start",
        "off",
        "--clock-control",
        "none",  # the machine's clocks are left as they are
        "--target-processes",
        "all",
        *[arg for s in SECTIONS for arg in ("--section", s)],
        "--export",
        str(report),
        "--force-overwrite",
        *profiling.extra_args,
    ]
    child = spawn(
        "kevolve.harness.judge.replay",
        [str(request)],
        env=env,
        cwd=work,
        limits=judge_limits(options, how),
        pass_fds=[write_fd],
        prefix=(*how.prefix, *ncu),
        user=how.user,
    )
    os.close(write_fd)
    try:
        child.stdin.close()
        child.proc.wait(timeout=profiling.timeout)
    except subprocess.TimeoutExpired as exc:
        raise ProfileError(f"ncu took longer than {profiling.timeout:g} s") from exc
    finally:
        child.kill()
    rep = report.with_suffix(".ncu-rep")
    if child.proc.returncode != 0 or not rep.exists():
        raise ProfileError(f"ncu failed ({child.exit_description()}): {_last_lines(child)}")
    raw = subprocess.run(
        [profiling.ncu, "--import", str(rep), "--csv", "--page", "raw"],
        capture_output=True,
        text=True,
        timeout=profiling.timeout,
        check=False,
    )
    if raw.returncode != 0:
        raise ProfileError(f"ncu could not read its report: {raw.stderr.strip()[-500:]}")
    version = subprocess.run(
        [profiling.ncu, "--version"], capture_output=True, text=True, check=False
    ).stdout
    kernels = parse_raw(raw.stdout)
    if not kernels:
        raise ProfileError(f"ncu saw no kernel launch of the candidate: {_last_lines(child)}")
    tool = version.strip().splitlines()[-1] if version.strip() else ""
    return Profile(tuple(shape), dtype, kernels, tool)


def parse_raw(text: str) -> tuple[KernelProfile, ...]:
    """Kernel launches from `ncu --csv --page raw` output (a header row, a units row, data)."""
    lines = [line for line in text.splitlines() if line.startswith('"')]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if len(rows) < 3:
        return ()
    header, units = rows[0], rows[1]
    kernels = []
    for row in rows[2:]:
        values = dict(zip(header, row, strict=False))
        unit = dict(zip(header, units, strict=False))
        kernels.append(_kernel(values, unit))
    return tuple(kernels)


def _kernel(values: dict[str, str], units: dict[str, str]) -> KernelProfile:
    """One launch's curated figures from its raw metric row."""
    stalls = sorted(
        (
            Stall(match.group(1), cycles)
            for name in values
            if (match := STALL.match(name))
            and not match.group(1).endswith("not_issued")
            and (cycles := _number(values[name])) is not None
            and cycles > 0
        ),
        key=lambda s: -s.cycles,
    )
    stalls = [s for s in stalls if s.reason not in HEALTHY][:TOP_STALLS]
    registers = _number(values.get(REGISTERS, ""))
    return KernelProfile(
        name=values.get("Kernel Name", values.get("Function Name", "?")),
        duration_us=_microseconds(values.get(DURATION, ""), units.get(DURATION, "")),
        dram_pct=_first(values, DRAM),
        memory_pct=_number(values.get(MEMORY, "")),
        sm_pct=_number(values.get(SM, "")),
        tensor_pct=_first(values, TENSOR),
        occupancy_pct=_number(values.get(OCCUPANCY, "")),
        theoretical_occupancy_pct=_number(values.get(THEORETICAL, "")),
        l2_hit_pct=_number(values.get(L2_HIT, "")),
        registers=int(registers) if registers is not None else None,
        stalls=tuple(stalls),
    )


def _first(values: dict[str, str], names: tuple[str, ...]) -> float | None:
    """The value of the first of `names` the report has."""
    return next((v for n in names if (v := _number(values.get(n, ""))) is not None), None)


def _number(text: str) -> float | None:
    """A metric's value ("1,234.5", "n/a" -> None)."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def _microseconds(text: str, unit: str) -> float:
    """A duration in microseconds, whatever unit ncu printed it in."""
    value = _number(text) or 0.0
    scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
    return value * scale.get(unit.strip(), 1.0)


def _last_lines(child: Any) -> str:
    """The end of what ncu and the program printed, for an error message."""
    tail = str(child.log_tail(1500)).strip().splitlines()
    return " | ".join(tail[-6:])
