"""Does the judge fit KernelBench problems at their published sizes, and judge them right?

Writes KernelBench-format problems at KernelBench's level-1 sizes (log-softmax over 393216
columns, group norm over 112x64x512x512, attention over 32x32x512x1024, GELU over 4096x393216,
a 4096 square matmul, all float32), a correct Triton candidate for each and a shortcut candidate
for the first three, judges every candidate with the real judge (`evaluate`, as `kevolve check
PROBLEM --candidate FILE --device cuda --no-compile --json` does) and records each verdict
against the one expected, the GPU memory the judge and the worker reserved at their peak (the
judge's own figures), the whole device's peak use (sampled while it ran) and the phase times.
For a correct candidate on a GPU it then times the candidate and the problem's Model with a
plain `triton.testing.do_bench` in this process and records the judge's median over do_bench's.
One JSON file, rewritten after every candidate, so that a run cut short keeps what it did.

    python3 bench/scale/memory.py --out memory.json [--sizes published|mid|small]
        [--only log_softmax,group_norm,attention,gelu,matmul] [--candidates correct,shortcut]
        [--budget-s 280] [--device cuda]

Runs with the python3 of a GPU host where kevolve is installed (about 6 minutes on an H100 at
the published sizes; cases left when the budget runs out are recorded as skipped).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 2**30
FIRST_GUESS_S = 45.0  # seconds a problem's first case may take at the published sizes

# The problems' sizes: "published" as KernelBench levels 1 lists them, smaller ones to try the
# script (and for the tests, on the CPU through Triton's interpreter).
SIZES: dict[str, dict[str, dict[str, int]]] = {
    "published": {
        "log_softmax": {"batch_size": 4096, "dim": 393216},
        "group_norm": {
            "batch_size": 112,
            "features": 64,
            "num_groups": 8,
            "dim1": 512,
            "dim2": 512,
        },
        "attention": {"batch_size": 32, "num_heads": 32, "sequence_length": 512, "dim": 1024},
        "gelu": {"batch_size": 4096, "dim": 393216},
        "matmul": {"N": 4096},
    },
    "mid": {
        "log_softmax": {"batch_size": 512, "dim": 393216},
        "group_norm": {"batch_size": 48, "features": 64, "num_groups": 8, "dim1": 256, "dim2": 256},
        "attention": {"batch_size": 8, "num_heads": 16, "sequence_length": 512, "dim": 1024},
        "gelu": {"batch_size": 512, "dim": 393216},
        "matmul": {"N": 2048},
    },
    "small": {
        "log_softmax": {"batch_size": 24, "dim": 1000},
        "group_norm": {"batch_size": 6, "features": 8, "num_groups": 4, "dim1": 10, "dim2": 12},
        "attention": {"batch_size": 3, "num_heads": 2, "sequence_length": 20, "dim": 24},
        "gelu": {"batch_size": 24, "dim": 1000},
        "matmul": {"N": 40},
    },
}

PROBLEMS: dict[str, str] = {
    "log_softmax": '''"""KernelBench-format problem (level 1): log-softmax over dim 1."""

import torch
import torch.nn as nn

batch_size = @batch_size@
dim = @dim@


class Model(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(x, dim=self.dim)


def get_inputs() -> list[torch.Tensor]:
    return [torch.rand(batch_size, dim)]


def get_init_inputs() -> list[object]:
    return []
''',
    "group_norm": '''"""KernelBench-format problem (level 1): group norm over 4-d inputs."""

import torch
import torch.nn as nn

batch_size = @batch_size@
features = @features@
num_groups = @num_groups@
dim1 = @dim1@
dim2 = @dim2@


class Model(nn.Module):
    def __init__(self, num_features: int, num_groups: int) -> None:
        super().__init__()
        self.gn = nn.GroupNorm(num_groups=num_groups, num_channels=num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gn(x)


def get_inputs() -> list[torch.Tensor]:
    return [torch.rand(batch_size, features, dim1, dim2)]


def get_init_inputs() -> list[object]:
    return [features, num_groups]
''',
    "attention": '''"""KernelBench-format problem (level 1): scaled dot-product attention."""

import torch
import torch.nn as nn

batch_size = @batch_size@
num_heads = @num_heads@
sequence_length = @sequence_length@
dim = @dim@


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, k, v)


def get_inputs() -> list[torch.Tensor]:
    shape = (batch_size, num_heads, sequence_length, dim)
    return [torch.rand(shape), torch.rand(shape), torch.rand(shape)]


def get_init_inputs() -> list[object]:
    return []
''',
    "gelu": '''"""KernelBench-format problem (level 1): GELU, elementwise."""

import torch
import torch.nn as nn

batch_size = @batch_size@
dim = @dim@


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.gelu(x)


def get_inputs() -> list[torch.Tensor]:
    return [torch.rand(batch_size, dim)]


def get_init_inputs() -> list[object]:
    return []
''',
    "matmul": '''"""KernelBench-format problem (level 1): square matrix multiplication."""

import torch
import torch.nn as nn

N = @N@


class Model(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        return torch.matmul(A, B)


def get_inputs() -> list[torch.Tensor]:
    return [torch.rand(N, N), torch.rand(N, N)]


def get_init_inputs() -> list[object]:
    return []
''',
}

_ROWS_LSE = '''
@triton.jit
def _row_lse(x_row, n_cols, BLOCK: tl.constexpr):
    """log(sum(exp(x))) of one row, by an online max over blocks of it."""
    offs = tl.arange(0, BLOCK)
    m = -float("inf")
    d = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        x = tl.load(x_row + cols, mask=cols < n_cols, other=-float("inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        m = m_new
    return m + tl.log(d)
'''

_HEADER = """import math

import torch
import torch.nn as nn
import triton
import triton.language as tl
"""

CANDIDATES: dict[tuple[str, str], str] = {
    ("log_softmax", "correct"): _HEADER
    + _ROWS_LSE
    + """

@triton.jit
def _log_softmax(x_ptr, y_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    lse = _row_lse(x_ptr + row * n_cols, n_cols, BLOCK)
    offs = tl.arange(0, BLOCK)
    for start in range(0, n_cols, BLOCK):
        cols = start + offs
        mask = cols < n_cols
        x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
        tl.store(y_ptr + row * n_cols + cols, (x - lse).to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        block = min(4096, triton.next_power_of_2(x.shape[1]))
        _log_softmax[(x.shape[0],)](x, y, x.shape[1], BLOCK=block, num_warps=8)
        return y
""",
    # Every row has nearly the same statistics on U[0,1) inputs: row 0's logsumexp is used for
    # all of them (off by about 5e-4 at 393216 columns, far more on shifted or scaled rows).
    ("log_softmax", "shortcut"): _HEADER
    + _ROWS_LSE
    + """

@triton.jit
def _first_row_lse(x_ptr, lse_ptr, n_cols, BLOCK: tl.constexpr):
    tl.store(lse_ptr, _row_lse(x_ptr, n_cols, BLOCK))


@triton.jit
def _subtract(x_ptr, y_ptr, lse_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    x = tl.load(x_ptr + offs, mask=offs < n, other=0.0)
    tl.store(y_ptr + offs, x - tl.load(lse_ptr), mask=offs < n)


class ModelNew(nn.Module):
    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        lse = torch.empty(1, device=x.device, dtype=torch.float32)
        block = min(4096, triton.next_power_of_2(x.shape[1]))
        _first_row_lse[(1,)](x, lse, x.shape[1], BLOCK=block, num_warps=8)
        n = x.numel()
        _subtract[(triton.cdiv(n, 4096),)](x, y, lse, n, BLOCK=4096)
        return y
""",
    ("group_norm", "correct"): _HEADER
    + """

@triton.jit
def _group_norm(x_ptr, y_ptr, w_ptr, b_ptr, group_size, hw, per_group, groups, eps,
                BLOCK: tl.constexpr):
    pid = tl.program_id(0).to(tl.int64)  # sample * groups + group: one contiguous span
    base = pid * group_size
    offs = tl.arange(0, BLOCK)
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, group_size, BLOCK):
        idx = start + offs
        acc += tl.load(x_ptr + base + idx, mask=idx < group_size, other=0.0).to(tl.float32)
    mean = tl.sum(acc, axis=0) / group_size
    acc = tl.zeros([BLOCK], dtype=tl.float32)
    for start in range(0, group_size, BLOCK):
        idx = start + offs
        mask = idx < group_size
        x = tl.load(x_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
        centered = tl.where(mask, x - mean, 0.0)
        acc += centered * centered
    rstd = 1.0 / tl.sqrt(tl.sum(acc, axis=0) / group_size + eps)
    channel0 = (pid % groups) * per_group
    for start in range(0, group_size, BLOCK):
        idx = start + offs
        mask = idx < group_size
        x = tl.load(x_ptr + base + idx, mask=mask, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + channel0 + idx // hw, mask=mask, other=1.0)
        b = tl.load(b_ptr + channel0 + idx // hw, mask=mask, other=0.0)
        y = (x - mean) * rstd * w + b
        tl.store(y_ptr + base + idx, y.to(y_ptr.dtype.element_ty), mask=mask)


class ModelNew(nn.Module):
    def __init__(self, num_features: int, num_groups: int) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        hw = math.prod(x.shape[2:])
        per_group = x.shape[1] // self.num_groups
        grid = (x.shape[0] * self.num_groups,)
        block = min(4096, triton.next_power_of_2(per_group * hw))
        _group_norm[grid](x, y, self.weight, self.bias, per_group * hw, hw, per_group,
                          self.num_groups, 1e-5, BLOCK=block, num_warps=8)
        return y
""",
    # The inputs are U[0,1): mean 1/2 and variance 1/12 taken as known instead of measured.
    ("group_norm", "shortcut"): _HEADER
    + """

@triton.jit
def _normalize(x_ptr, y_ptr, w_ptr, b_ptr, n, hw, channels, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    channel = (offs // hw) % channels
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    w = tl.load(w_ptr + channel, mask=mask, other=1.0)
    b = tl.load(b_ptr + channel, mask=mask, other=0.0)
    tl.store(y_ptr + offs, (x - 0.5) * 3.4641016151377544 * w + b, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, num_features: int, num_groups: int) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        hw = math.prod(x.shape[2:])
        _normalize[(triton.cdiv(n, 4096),)](x, y, self.weight, self.bias, n, hw, x.shape[1],
                                           BLOCK=4096)
        return y
""",
}

_BMM = '''
@triton.jit
def _bmm(a_ptr, b_ptr, c_ptr, M, N, K, sa_b, sa_m, sa_k, sb_b, sb_k, sb_n, sc_b, sc_m, sc_n,
         scale, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """c[z] = scale * a[z] @ b[z] in float32 (IEEE products, no TF32), one tile per program."""
    z = tl.program_id(2).to(tl.int64)
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rn = tl.program_id(1) * BN + tl.arange(0, BN)
    rk = tl.arange(0, BK)
    acc = tl.zeros([BM, BN], dtype=tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        a = tl.load(a_ptr + z * sa_b + rm[:, None] * sa_m + kk[None, :] * sa_k,
                    mask=(rm[:, None] < M) & (kk[None, :] < K), other=0.0)
        b = tl.load(b_ptr + z * sb_b + kk[:, None] * sb_k + rn[None, :] * sb_n,
                    mask=(kk[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc = tl.dot(a, b, acc, input_precision="ieee")
    tl.store(c_ptr + z * sc_b + rm[:, None] * sc_m + rn[None, :] * sc_n, acc * scale,
             mask=(rm[:, None] < M) & (rn[None, :] < N))


def _matmul(a, b, c, scale):
    """c = scale * a @ b over the leading (batch) dimension of 3-d tensors."""
    z, m, k = a.shape
    n = b.shape[2]
    grid = (triton.cdiv(m, 64), triton.cdiv(n, 64), z)
    _bmm[grid](a, b, c, m, n, k, a.stride(0), a.stride(1), a.stride(2), b.stride(0), b.stride(1),
               b.stride(2), c.stride(0), c.stride(1), c.stride(2), scale, BM=64, BN=64, BK=16,
               num_warps=4)
'''

_ATTENTION_FORWARD = """

class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        batch, heads, seq, dim = q.shape
        q3 = q.contiguous().view(batch * heads, seq, dim)
        k3 = k.contiguous().view(batch * heads, seq, dim)
        v3 = v.contiguous().view(batch * heads, seq, dim)
        scores = torch.empty(batch * heads, seq, seq, device=q.device, dtype=torch.float32)
        _matmul(q3, k3.transpose(1, 2), scores, 1.0 / math.sqrt(dim))
        probs = torch.empty_like(scores)
        _softmax[(batch * heads * seq,)](scores, probs, seq, BLOCK=triton.next_power_of_2(seq))
        out = torch.empty(batch * heads, seq, dim, device=q.device, dtype=q.dtype)
        _matmul(probs, v3, out, 1.0)
        return out.view(batch, heads, seq, dim)
"""

CANDIDATES[("attention", "correct")] = (
    _HEADER
    + _BMM
    + """

@triton.jit
def _softmax(s_ptr, p_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    s = tl.load(s_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    e = tl.exp(s - tl.max(s, axis=0))
    tl.store(p_ptr + row * n_cols + cols, e / tl.sum(e, axis=0), mask=mask)

"""
    + _ATTENTION_FORWARD
)
# Each head's first query row gives the max and the sum for every row of the head.
CANDIDATES[("attention", "shortcut")] = (
    _HEADER
    + _BMM
    + """

@triton.jit
def _softmax(s_ptr, p_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    first = (row // n_cols) * n_cols
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    s0 = tl.load(s_ptr + first * n_cols + cols, mask=mask, other=-float("inf"))
    m0 = tl.max(s0, axis=0)
    d0 = tl.sum(tl.exp(s0 - m0), axis=0)
    s = tl.load(s_ptr + row * n_cols + cols, mask=mask, other=-float("inf"))
    tl.store(p_ptr + row * n_cols + cols, tl.exp(s - m0) / d0, mask=mask)

"""
    + _ATTENTION_FORWARD
)

CANDIDATES[("gelu", "correct")] = (
    _HEADER
    + """

@triton.jit
def _gelu(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    x = tl.load(x_ptr + offs, mask=mask, other=0.0)
    tl.store(y_ptr + offs, 0.5 * x * (1.0 + tl.math.erf(x * 0.7071067811865476)), mask=mask)


class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous()
        y = torch.empty_like(x)
        n = x.numel()
        _gelu[(triton.cdiv(n, 4096),)](x, y, n, BLOCK=4096, num_warps=8)
        return y
"""
)
CANDIDATES[("matmul", "correct")] = (
    _HEADER
    + _BMM
    + """

class ModelNew(nn.Module):
    def __init__(self) -> None:
        super().__init__()

    def forward(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        c = torch.empty(1, A.shape[0], B.shape[1], device=A.device, dtype=torch.float32)
        _matmul(A.unsqueeze(0), B.unsqueeze(0), c, 1.0)
        return c[0]
"""
)

# (problem, candidate kind, the verdict it must get)
CASES = [
    ("log_softmax", "correct", "correct"),
    ("log_softmax", "shortcut", "incorrect"),
    ("group_norm", "correct", "correct"),
    ("group_norm", "shortcut", "incorrect"),
    ("attention", "correct", "correct"),
    ("attention", "shortcut", "incorrect"),
    ("gelu", "correct", "correct"),
    ("matmul", "correct", "correct"),
]
# Problems whose inputs are each larger than a GiB at the published sizes (the memory plan's
# cases); the others are there for the timing cross-check at KernelBench's sizes.
LARGE = ("log_softmax", "group_norm", "attention", "gelu")


def problem_source(name: str, sizes: dict[str, int]) -> str:
    """The KernelBench file of problem `name` at `sizes`."""
    text = PROBLEMS[name]
    for key, value in sizes.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def write_case(folder: Path, name: str, kind: str, sizes: dict[str, int]) -> tuple[Path, Path]:
    """Write problem `name` and its `kind` candidate under `folder`; their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    problem = folder / f"{name}.py"
    problem.write_text(problem_source(name, sizes))
    candidate = folder / f"{name}__{kind}.py"
    candidate.write_text(CANDIDATES[(name, kind)])
    return problem, candidate


def tensor_gib(name: str, sizes: dict[str, int]) -> float:
    """GiB of one float32 input tensor of the problem."""
    if "N" in sizes:
        return sizes["N"] ** 2 * 4 / GIB
    numel = 1
    for key, value in sizes.items():
        if key != "num_groups":
            numel *= value
    return numel * 4 / GIB


@dataclass
class DevicePeak:
    """The most memory in use on the GPU while it watched, from nvidia-smi (every process's)."""

    index: int
    peak_mib: int = 0
    error: str = ""

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> DevicePeak:
        self.peak_mib = 0
        self._stop.clear()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        query = ["nvidia-smi", f"--id={self.index}", "--query-gpu=memory.used"]
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    [*query, "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=10,
                    check=True,
                ).stdout
                self.peak_mib = max(self.peak_mib, int(out.strip().splitlines()[0]))
            except (OSError, ValueError, IndexError, subprocess.SubprocessError) as exc:
                self.error = f"nvidia-smi could not be read: {exc}"[:200]
                return
            self._stop.wait(0.25)


def _summary(ev: Any) -> dict[str, Any]:
    """What the JSON keeps of one evaluation."""
    timing = ev.timings[0] if ev.timings else None
    return {
        "verdict": ev.verdict.value,
        "reason": ev.reason[:600],
        "phases_s": ev.phases,
        "memory_gib": {k: round(v / GIB, 2) for k, v in ev.memory.items()},
        "checks": [
            {"trials": c.trials, "passed": c.passed, "max_rel": c.max_rel, "rel_norm": c.rel_norm}
            for c in ev.checks
        ],
        "candidate_ms": timing.candidate.median_ms if timing else None,
        "baseline_ms": timing.baseline.median_ms if timing and timing.baseline else None,
        "speedup": timing.speedup if timing else None,
        "notes": ev.notes[:5],
        "flags": ev.flags[:5],
    }


def _judge(problem_path: Path, candidate: Path, args: argparse.Namespace, cache: Path) -> Any:
    """The real judge on one candidate, as `kevolve check --no-compile` runs it."""
    from kevolve.harness.evaluate import CompileArm, EvalOptions, evaluate
    from kevolve.harness.spec.load import load_problems

    [problem] = load_problems(problem_path)
    options = EvalOptions(
        device=args.device,
        timeout=args.timeout,
        trials=5,
        time=not args.no_time,
        cache_dir=cache,
        compile_arm=CompileArm.OFF,
    )
    return evaluate(problem, candidate.read_text(), options)


def _do_bench(problem: Path, candidate: Path, device: str) -> dict[str, float]:
    """Medians by a plain `triton.testing.do_bench` in this process, of the candidate and of the
    problem's own Model on one set of inputs made on the device: what the judge's medians are
    checked against."""
    import torch
    import triton.testing
    from kevolve.harness.judge.inputs import load_module

    spec = load_module(problem, "scale_problem")
    new = load_module(candidate, "scale_candidate")
    with torch.device(device):
        init = spec.get_init_inputs()
        inputs = spec.get_inputs()
        arms = {"candidate": new.ModelNew(*init), "baseline": spec.Model(*init)}
    medians: dict[str, float] = {}
    try:
        with torch.no_grad():
            for arm, model in arms.items():
                ms = triton.testing.do_bench(lambda m=model: m(*inputs), return_mode="median")
                medians[f"do_bench_{arm}_ms"] = float(ms)
    finally:
        inputs.clear()  # drop the tensors before the next case's judge needs the memory
        arms.clear()
        torch.cuda.empty_cache()
    return medians


def _agreement(case: dict[str, Any], problem: Path, candidate: Path, device: str) -> None:
    """Add the do_bench medians and the judge's median over them to a timed, correct case."""
    timed = case.get("verdict") == "correct" and case["candidate_ms"]
    if not device.startswith("cuda") or not timed:
        return
    try:
        case.update(_do_bench(problem, candidate, device))
    except Exception as exc:  # noqa: BLE001 - the verdict stands; the cross-check says it failed
        case["do_bench_error"] = f"{type(exc).__name__}: {exc}"[:600]
        return
    case["check_over_do_bench"] = round(case["candidate_ms"] / case["do_bench_candidate_ms"], 3)
    if case["baseline_ms"]:
        ratio = case["baseline_ms"] / case["do_bench_baseline_ms"]
        case["baseline_check_over_do_bench"] = round(ratio, 3)


def _write(out: Path, record: dict[str, Any]) -> None:
    """Replace the output file with `record`, atomically."""
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(partial, out)


def _device_record(device: str) -> dict[str, Any]:
    """The GPU, torch and Triton this ran on, or why it cannot run."""
    import torch
    import triton

    record: dict[str, Any] = {"torch": torch.__version__, "triton": triton.__version__}
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SystemExit(
                "error: --device cuda but no CUDA GPU is visible to torch; run on a GPU host "
                "(or --device cpu --sizes small to try the script through Triton's interpreter)"
            )
        props = torch.cuda.get_device_properties(0)
        record.update(gpu=props.name, memory_gib=round(props.total_memory / GIB, 1))
    return record


def run_cases(args: argparse.Namespace) -> dict[str, Any]:
    """Judge every case in turn, writing the record after each; the record.

    A case starts only where the time it should take (its problem's last case, else a guess)
    still fits the budget, so that the whole run ends within it.
    """
    sizes = SIZES[args.sizes]
    started = time.perf_counter()
    record: dict[str, Any] = {
        "sizes": args.sizes,
        "device": _device_record(args.device),
        "budget_s": args.budget_s,
        "cases": [],
    }
    _write(args.out, record)
    work = Path(tempfile.mkdtemp(prefix="kevolve-scale-"))
    gpu_index = int(args.device.split(":")[1]) if ":" in args.device else 0
    took: dict[str, float] = {}  # seconds each problem's last case took
    try:
        for name, kind, expected in CASES:
            if args.only and name not in args.only:
                continue
            if args.candidates and kind not in args.candidates:
                continue
            case: dict[str, Any] = {"problem": name, "candidate": kind, "expected": expected}
            case.update(sizes=sizes[name], input_gib=round(tensor_gib(name, sizes[name]), 2))
            elapsed = time.perf_counter() - started
            expect = took.get(name, FIRST_GUESS_S)
            if elapsed + expect > args.budget_s:
                case["skipped"] = (
                    f"{elapsed:.0f} s gone and about {expect:.0f} s more for this case would pass "
                    f"the budget of {args.budget_s:g} s"
                )
            else:
                _judge_case(case, work / name, args, work / "cache", gpu_index)
                took[name] = case["wall_s"]
            record["cases"].append(case)
            record["wall_s"] = round(time.perf_counter() - started, 1)
            _write(args.out, record)
            keys = ("problem", "candidate", "verdict", "wall_s", "skipped", "error")
            print(json.dumps({k: case[k] for k in keys if k in case}))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["all_as_expected"] = all(c.get("as_expected") for c in record["cases"])
    _write(args.out, record)
    return record


def _judge_case(
    case: dict[str, Any], folder: Path, args: argparse.Namespace, cache: Path, gpu: int
) -> None:
    """Judge one case into `case`; a failure of the harness itself is recorded, not raised."""
    problem, candidate = write_case(folder, case["problem"], case["candidate"], case["sizes"])
    watch = DevicePeak(gpu) if args.device.startswith("cuda") else None
    began = time.perf_counter()
    try:
        if watch is not None:
            with watch:
                ev = _judge(problem, candidate, args, cache)
        else:
            ev = _judge(problem, candidate, args, cache)
        case.update(_summary(ev))
        case["as_expected"] = ev.verdict.value == case["expected"]
        _agreement(case, problem, candidate, args.device)
    except Exception as exc:  # noqa: BLE001 - recorded: the next case still runs
        case["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        case["traceback"] = traceback.format_exc()[-4000:]
        case["as_expected"] = False
    case["wall_s"] = round(time.perf_counter() - began, 1)
    if watch is not None:
        case["device_peak_gib"] = round(watch.peak_mib / 1024, 2)
        if watch.error:
            case["device_peak_error"] = watch.error


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    parser.add_argument("--sizes", choices=sorted(SIZES), default="published")
    parser.add_argument("--only", default="", help="problems to run, comma-separated")
    parser.add_argument(
        "--candidates", default="", help="correct, shortcut or both (the default), comma-separated"
    )
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (small sizes)")
    parser.add_argument(
        "--budget-s", type=float, default=285.0, help="seconds the whole run may take"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a step may take")
    parser.add_argument("--no-time", action="store_true", help="check correctness only")
    args = parser.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(args.only) - set(PROBLEMS))
    if unknown:
        parser.error(f"unknown problem(s) {', '.join(unknown)}; known: {', '.join(PROBLEMS)}")
    args.candidates = [k for k in args.candidates.split(",") if k]
    kinds = sorted({kind for _, kind, _ in CASES})
    if set(args.candidates) - set(kinds):
        parser.error(f"--candidates {','.join(args.candidates)}: known kinds {', '.join(kinds)}")
    if not args.out.parent.is_dir():
        parser.error(f"--out {args.out}: folder {args.out.parent} does not exist")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        record = run_cases(args)
    except SystemExit as stop:
        _write(args.out, {"error": str(stop)})
        print(stop, file=sys.stderr)
        return 2
    return 0 if record["all_as_expected"] else 1


if __name__ == "__main__":
    sys.exit(main())
