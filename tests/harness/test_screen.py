"""Tests for harness.screen: each rule on a small snippet, and real kernel modules that pass."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from kevolve.harness.screen import Finding, screen

ROW_SOFTMAX = """
import torch
import triton
import triton.language as tl


@triton.jit
def softmax_kernel(out_ptr, in_ptr, in_stride, out_stride, n_cols, BLOCK_SIZE: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK_SIZE)
    mask = offs < n_cols
    x = tl.load(in_ptr + row * in_stride + offs, mask=mask, other=-float("inf"))
    x = x - tl.max(x, axis=0)
    num = tl.exp(x)
    den = tl.sum(num, axis=0)
    tl.store(out_ptr + row * out_stride + offs, num / den, mask=mask)


def softmax(x: torch.Tensor) -> torch.Tensor:
    n_rows, n_cols = x.shape
    y = torch.empty_like(x)
    BLOCK_SIZE = triton.next_power_of_2(n_cols)
    num_warps = 8 if BLOCK_SIZE >= 2048 else 4
    softmax_kernel[(n_rows,)](
        y, x, x.stride(0), y.stride(0), n_cols, BLOCK_SIZE=BLOCK_SIZE, num_warps=num_warps
    )
    return y
"""

AUTOTUNED_MATMUL = """
from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.autotune(
    configs=[
        triton.Config({"BLOCK_M": 128, "BLOCK_N": 128, "BLOCK_K": 32}, num_warps=4, num_stages=3),
        triton.Config({"BLOCK_M": 64, "BLOCK_N": 64, "BLOCK_K": 32}, num_warps=4),
    ],
    key=["M", "N", "K"],
)
@triton.jit
def matmul_kernel(a_ptr, b_ptr, c_ptr, M, N, K, stride_am, stride_ak, stride_bk, stride_bn,
                  stride_cm, stride_cn, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
                  BLOCK_K: tl.constexpr):
    pid = tl.program_id(axis=0)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    pid_m = pid // num_pid_n
    pid_n = pid % num_pid_n
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    offs_k = tl.arange(0, BLOCK_K)
    a_ptrs = a_ptr + offs_m[:, None] * stride_am + offs_k[None, :] * stride_ak
    b_ptrs = b_ptr + offs_k[:, None] * stride_bk + offs_n[None, :] * stride_bn
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        a = tl.load(a_ptrs, mask=offs_k[None, :] < K - k * BLOCK_K, other=0.0)
        b = tl.load(b_ptrs, mask=offs_k[:, None] < K - k * BLOCK_K, other=0.0)
        if K > 4096:
            acc = tl.dot(a, b, acc)
        else:
            acc += a @ b
        a_ptrs += BLOCK_K * stride_ak
        b_ptrs += BLOCK_K * stride_bk
    c = acc.to(tl.float16)
    offs_cm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_cn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    c_mask = (offs_cm[:, None] < M) & (offs_cn[None, :] < N)
    tl.store(c_ptr + offs_cm[:, None] * stride_cm + offs_cn[None, :] * stride_cn, c, mask=c_mask)


def matmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    assert a.shape[1] == b.shape[0], "incompatible dimensions"
    assert a.is_contiguous()
    M, K = a.shape
    K, N = b.shape
    c = torch.empty((M, N), device=a.device, dtype=torch.float16)

    def grid(meta):
        return (triton.cdiv(M, meta["BLOCK_M"]) * triton.cdiv(N, meta["BLOCK_N"]),)

    matmul_kernel[grid](a, b, c, M, N, K, a.stride(0), a.stride(1), b.stride(0), b.stride(1),
                        c.stride(0), c.stride(1))
    return c
"""

KERNELBENCH_MODEL = """
import math

import torch
import torch.nn as nn
import triton
import triton.language as tl
from triton import jit


@jit
def scale_kernel(x_ptr, w_ptr, out_ptr, dim, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    offs = tl.arange(0, BLOCK)
    mask = offs < dim
    x = tl.load(x_ptr + row * dim + offs, mask=mask)
    w = tl.load(w_ptr + offs, mask=mask)
    tl.store(out_ptr + row * dim + offs, x * w, mask=mask)


class ModelNew(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.weight = nn.Parameter(torch.ones(dim, dtype=torch.float32) / math.sqrt(dim))
        self.proj = nn.Linear(dim, dim)

    @torch.no_grad()
    def forward(self, input: torch.Tensor) -> torch.Tensor:
        input = input.contiguous()
        out = torch.empty_like(input)
        n_rows = input.numel() // self.dim
        block = triton.next_power_of_2(self.dim)
        scale_kernel[(n_rows,)](input, self.weight, out, self.dim, BLOCK=block)
        return out.view(input.shape)
"""


def found(source: str, allowed_imports: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """(line, family) of each finding in the dedented snippet."""
    return [(f.line, f.family) for f in screen(textwrap.dedent(source), allowed_imports)]


@pytest.mark.parametrize("source", [ROW_SOFTMAX, AUTOTUNED_MATMUL, KERNELBENCH_MODEL])
def test_legitimate_kernel_modules_pass(source: str) -> None:
    assert screen(source) == []


DEMO_KERNELS = Path(__file__).parents[2] / "examples" / "demo" / "demo_kernels"


@pytest.mark.parametrize("name", ["rmsnorm", "softmax", "bias_gelu", "matmul_bias_relu"])
def test_the_demo_kernels_pass(name: str) -> None:
    assert screen((DEMO_KERNELS / f"{name}.py").read_text()) == []


def test_the_pytorch_reference_is_rejected() -> None:
    families = {f.family for f in screen((DEMO_KERNELS / "reference.py").read_text())}
    assert families == {"torch-compute"}


def test_syntax_error_is_left_to_the_loader() -> None:
    assert screen("def f(:\n    pass\n") == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import os", [(1, "filesystem")]),
        ("from pathlib import Path", [(1, "filesystem")]),
        ("import subprocess", [(1, "process")]),
        ("import urllib.request", [(1, "network")]),
        ("from concurrent.futures import ThreadPoolExecutor", [(1, "concurrency")]),
        ("import ctypes", [(1, "ctypes")]),
        ("import importlib", [(1, "dynamic-import")]),
        ("import gc", [(1, "gc")]),
        ("import sys", [(1, "introspection")]),
        ("import torch.nn.functional as F", [(1, "torch-compute")]),
        ("import torch._dynamo", [(1, "torch-compute")]),
        ("import numpy as np", [(1, "import")]),
        ("import triton.testing", [(1, "import")]),
        ("from . import helpers", [(1, "import")]),
        ("from torch import softmax", [(1, "torch-compute")]),
        ("from torch import *", [(1, "torch-compute")]),
        ("from torch.nn import functional as F", [(1, "torch-compute")]),
        ("from torch.cuda import synchronize", [(1, "torch-compute")]),
        ("from torch import nn, float16, Tensor", []),
        ("from torch.nn import Module, Parameter", []),
        ("import collections.abc\nfrom typing import Any\nimport triton.language as tl", []),
    ],
)
def test_imports(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


def test_allowed_imports_extend_the_list_with_submodules() -> None:
    assert found("import numpy.linalg", allowed_imports=("numpy",)) == []
    assert found("import numpyx", allowed_imports=("numpy",)) == [(1, "import")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x = eval('1')", [(1, "dynamic-import")]),
        ("run = exec", [(1, "dynamic-import")]),
        ("m = __import__('os')", [(1, "dynamic-import")]),
        ("f = open('/tmp/x')", [(1, "filesystem")]),
        ("g = globals()", [(1, "introspection")]),
        ("v = vars(obj)", [(1, "introspection")]),
        ("breakpoint()", [(1, "process")]),
        ("exit(0)", [(1, "process")]),
        ("a = getattr(obj, name)", [(1, "introspection")]),
        ("setattr(obj, name, 1)", [(1, "introspection")]),
        ("ga = getattr", [(1, "introspection")]),
        ("a = getattr(obj, 'shape')\nb = hasattr(obj, 'stride')", []),
        ("import torch\nf = getattr(torch, 'softmax')", [(2, "torch-compute")]),
        ("import torch\nf = getattr(torch, '_C')", [(2, "introspection")]),
        ("import torch\nsetattr(torch, 'allclose', f)", [(2, "monkeypatch")]),
        ("k = getattr(x, '__class__')", [(1, "introspection")]),
    ],
)
def test_escape_builtins(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


def test_a_parameter_named_like_a_builtin_is_not_the_builtin() -> None:
    source = """
    def launch(input, open=None):
        return input.view(-1), open
    x = input
    """
    assert found(source) == [(4, "process")]


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("c = x.__class__", [(1, "introspection")]),
        ("s = type(x).__subclasses__()", [(1, "introspection")]),
        ("g = fn.__globals__['torch']", [(1, "introspection")]),
        ("c = fn.__code__", [(1, "introspection")]),
        ("f = frame.f_back.f_locals", [(1, "introspection")]),
        ("b = __builtins__", [(1, "introspection")]),
        ("s = __spec__", [(1, "introspection")]),
        ("super().__init__()\nname = fn.__name__", []),
    ],
)
def test_dunders_and_frames(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\nc = torch._C", [(2, "introspection")]),
        ("import triton.language as tl\nf = tl._foo", [(2, "introspection")]),
        ("import triton\nr = triton.runtime._x.y", [(2, "introspection")]),
        ("import triton\ntriton.runtime._cache = {}", [(2, "monkeypatch")]),
        ("from triton import _private", [(1, "introspection")]),
        ("self._cache = {}\nx = self._cache", []),
    ],
)
def test_private_module_attributes(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\ny = torch.softmax(x, -1)", [(2, "torch-compute")]),
        ("import torch as T\ny = T.matmul(a, b)", [(2, "torch-compute")]),
        ("import torch.nn as nn\ny = nn.functional.gelu(x)", [(2, "torch-compute")]),
        ("from torch import nn\nnn.init.zeros_(w)", [(2, "torch-compute")]),
        ("import torch\nf = torch.compile(f)", [(2, "torch-compute")]),
        ("import torch\ntorch.manual_seed(0)", [(2, "torch-compute")]),
        ("import torch\ntorch.backends.cuda.matmul.allow_tf32 = True", [(2, "monkeypatch")]),
        ("import torch\nt = torch.Tensor.add(a, b)", [(2, "torch-compute")]),
        ("import torch\ns = torch.cuda.Stream()", [(2, "concurrency")]),
        ("import torch\ntorch.cuda.synchronize()", [(2, "concurrency")]),
        ("import torch\nwith torch.cuda.stream(s):\n    pass", [(2, "concurrency")]),
        ("import torch\ne = torch.cuda.Event(enable_timing=True)", [(2, "concurrency")]),
        ("import torch\ng = torch.cuda.CUDAGraph()", [(2, "concurrency")]),
        ("import torch\nt = torch\ny = t.fft.fft(x)", [(2, "torch-compute")]),
        ("from torch import nn\nm = nn", [(2, "torch-compute")]),
        (
            "from torch import softmax as sm\ny = sm(x)",
            [(1, "torch-compute"), (2, "torch-compute")],
        ),
        ("import torch\nn = torch.float16.itemsize * torch.int8.is_signed", []),
    ],
)
def test_torch_host_api(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


def test_torch_allow_list_passes_allocation_and_metadata() -> None:
    source = """
    import torch
    from torch import nn
    y = torch.empty((4, 4), device=torch.device("cuda"), dtype=torch.bfloat16)
    z = torch.zeros_like(y, dtype=torch.float8_e4m3fn)
    i = torch.arange(4, dtype=torch.int64)
    ok = torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8
    info = torch.finfo(torch.float16).max
    layer = nn.Linear(4, 4)
    nn.Module.__init__(layer)
    """
    assert found(source) == []


@pytest.mark.parametrize(
    "decorator",
    [
        "@triton.jit", "@triton.jit(noinline=True)", "@tr.jit", "@jit", "@tjit",
        "@triton.autotune(configs=[], key=[])", "@autotune(configs=[], key=[])",
        "@triton.heuristics({})", "@heuristics({})",
    ],
)  # fmt: skip
def test_kernels_are_recognised_by_their_decorator(decorator: str) -> None:
    source = f"""
    import triton
    import triton as tr
    from triton import jit as tjit
    from triton import jit, autotune, heuristics

    {decorator}
    def k(x):
        return x.sum() @ x
    """
    assert found(source) == []


# Each way a module can bind a Triton decorator's name to something of its own; the decorated
# function then computes with torch on the host. (line of the decoy decorator, then host findings)
DECOYS = {
    "def": ("import torch\ndef jit(f):\n    return f\n", "rebound by def at line 2"),
    "assignment": ("import torch\njit = lambda f: f\n", "rebound by assignment at line 2"),
    "class": ("import torch\nclass jit:\n    pass\n", "rebound by class at line 2"),
    "import from elsewhere": (
        "import torch\nfrom functools import cache as jit\n",
        "`jit` refers to functools.cache",
    ),
    "star import": (
        "import torch\nfrom math import *\n",
        "may come from `from math import *` (line 2)",
    ),
    "reassigned after import": (
        "import torch\nfrom triton import jit\njit = lambda f: f\n",
        "rebound by assignment at line 3",
    ),
    "imported twice": (
        "import torch\nfrom triton import jit\nfrom functools import cache as jit\n",
        "imported twice, again at line 3",
    ),
    "never imported": ("import torch\n", "`jit` is never imported"),
    "rebound in a loop": (
        "import torch\nfor jit in [lambda f: f]:\n    pass\n",
        "rebound by assignment at line 2",
    ),
    "rebound by with": (
        "import torch\nimport contextlib\nwith contextlib.nullcontext(print) as jit:\n    pass\n",
        "rebound by assignment at line 3",
    ),
}


@pytest.mark.parametrize("trick", list(DECOYS))
def test_a_decoy_jit_is_reported_and_its_function_screened_as_host_code(trick: str) -> None:
    head, why = DECOYS[trick]
    source = head + "@jit\ndef k(x):\n    return torch.softmax(x, -1)\n"
    decorator = head.count("\n") + 1
    findings = [f for f in screen(source) if f.family != "import"]
    assert [(f.line, f.family) for f in findings] == [
        (decorator, "decoy"), (decorator + 2, "torch-compute")
    ]  # fmt: skip
    assert findings[0].construct == "@jit"
    assert why in findings[0].message
    assert findings[0].message.startswith("@jit is not Triton's decorator: ")
    assert findings[0].message.endswith(
        "so the function would pass as a kernel; import it with `import triton` or "
        "`from triton import jit` and bind no other name `jit`."
    )


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("import triton\ntriton = None\n@triton.jit", "`triton` is rebound by assignment"),
        ("import triton\nclass triton:\n    jit = None\n@triton.jit", "rebound by class at line 2"),
        ("import triton as tl2\ndef tl2():\n    pass\n@tl2.jit", "`tl2` is rebound by def"),
        ("import triton.language as tl\n@tl.jit", "`tl` refers to triton.language"),
        ("import triton\nfrom triton import *\n@triton.autotune(configs=[], key=[])", None),
        ("import math as triton\n@triton.heuristics({})", "`triton` refers to math"),
    ],
)
def test_a_rebound_triton_module_is_not_triton(source: str, why: str | None) -> None:
    findings = screen(source + "\ndef k(x):\n    return x.sum()\n")
    line = source.count("\n") + 1
    if why is None:  # a star import after `import triton` leaves `triton` itself alone
        assert findings == []
        return
    assert [(f.line, f.family) for f in findings] == [(line, "decoy"), (line + 2, "torch-compute")]
    assert why in findings[0].message


def test_a_decorator_shadowed_inside_a_function_is_not_triton() -> None:
    source = """
    import triton

    def launch(jit, x):
        @jit
        def k(y):
            return y.sum()
        return k(x)
    """
    findings = screen(textwrap.dedent(source))
    assert [(f.line, f.family) for f in findings] == [(5, "decoy"), (7, "torch-compute")]
    assert "`jit` is bound inside the enclosing function" in findings[0].message


def test_unrelated_decorators_and_names_are_left_alone() -> None:
    source = """
    import functools
    import triton
    from triton import jit

    autotune_configs = []
    jitter = 1

    @functools.cache
    def block(n):
        return triton.next_power_of_2(n)

    @jit
    def k(x):
        return x.sum()

    @(lambda f: f)
    def h():
        pass
    """
    assert found(source) == []


CORPUS = Path(__file__).parents[1] / "corpus"
# The families the static screen finds in each corpus candidate; every other candidate passes it
# (and is left to the run-time trace, the comparison or the loader).
CORPUS_SCREENED = {
    "bias_gelu/ctypes_poke": {"ctypes"},
    "bias_gelu/decoy_import_alias": {"decoy", "torch-compute"},
    "bias_gelu/dynamic_import": {"dynamic-import", "torch-compute"},
    "bias_gelu/functional_alias": {"torch-compute"},
    "kernelbench/linear_relu__module_call": {"torch-compute"},
    "matmul_bias_relu/decoy_star_import": {"decoy", "torch-compute"},
    "matmul_bias_relu/socket_exfil": {"import", "network"},
    "matmul_bias_relu/subprocess_spawn": {"process"},
    "rmsnorm/decoy_class_autotune": {"decoy", "torch-compute"},
    "rmsnorm/file_read": {"filesystem", "import"},
    "rmsnorm/gc_scan": {"gc"},
    "rmsnorm/global_cache": {"monkeypatch"},
    "softmax/decoy_def_jit": {"decoy", "torch-compute"},
    "softmax/decoy_reassigned_jit": {"decoy", "torch-compute"},
    "softmax/decoy_shadowed_triton": {"decoy", "torch-compute"},
    "softmax/frame_walk": {"introspection"},
    "softmax/getattr_smuggle": {"introspection", "torch-compute"},
    "softmax/monkeypatch_allclose": {"monkeypatch"},
    "softmax/side_stream": {"concurrency"},
    "softmax/tensor_method_compute": {"torch-compute"},
    "softmax/thread_pool": {"concurrency"},
    "softmax/torch_softmax_fallback": {"torch-compute"},
    "softmax/try_except_fallback": {"fallback"},
}


@pytest.mark.parametrize(
    "path", sorted(CORPUS.glob("*/*.py")), ids=lambda p: f"{p.parent.name}/{p.stem}"
)
def test_the_corpus_meets_the_static_screen_as_pinned(path: Path) -> None:
    families = {f.family for f in screen(path.read_text())}
    assert families == CORPUS_SCREENED.get(f"{path.parent.name}/{path.stem}", set())


def test_a_helper_without_jit_is_host_code() -> None:
    source = """
    import functools

    @functools.cache
    def k(x):
        return x.sum()
    """
    assert found(source) == [(6, "torch-compute")]


def test_torch_rules_do_not_apply_inside_kernels() -> None:
    source = """
    import torch
    import triton

    @triton.heuristics({"EVEN": lambda args: args["n"] % 2 == 0})
    @triton.jit
    def k(x):
        y = x.sum(axis=0) @ x
        return torch.softmax(y)
    """
    assert found(source) == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("y = x.sum()", [(1, "torch-compute")]),
        ("y = x.float().softmax(-1)", [(1, "torch-compute")]),
        ("y = self.weight.mul_(2)", [(1, "torch-compute")]),
        ("y = x.clamp_(0, 1)", [(1, "torch-compute")]),
        ("y = x.tolist()", [(1, "torch-compute")]),
        ("y = a @ b", [(1, "torch-compute")]),
        ("a @= b", [(1, "torch-compute")]),
        ("y = x.view(-1).contiguous().to(torch_dtype).t()", []),
        ("import math\ns = math.sqrt(d) * math.prod(shape)", []),
        ("y.zero_()\ny.fill_(0)\ny.copy_(x)", []),
    ],
)
def test_tensor_compute_methods_on_the_host(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("try:\n    y = launch(x)\nexcept Exception:\n    y = ref(x)", [(1, "fallback")]),
        ("try:\n    pass\nfinally:\n    pass", [(1, "fallback")]),
        ("try:\n    pass\nexcept* ValueError:\n    pass", [(1, "fallback")]),
    ],
)
def test_fallbacks(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import torch\ntorch.allclose = lambda *a, **k: True", [(2, "monkeypatch")]),
        ("import triton\ntriton.testing.do_bench = fake", [(2, "monkeypatch")]),
        ("import triton.language as tl\ntl.sum = my_sum", [(2, "monkeypatch")]),
        ("import math\nmath.pi = 3", [(2, "monkeypatch")]),
        ("import math\nmath.pi += 1", [(2, "monkeypatch")]),
        ("import math\nmath.tau: float = 3.0", [(2, "monkeypatch")]),
        ("import torch\ndel torch.allclose", [(2, "monkeypatch")]),
        ("print.cache = {}", [(1, "monkeypatch")]),
        ("import os\nos.environ['X'] = '1'", [(1, "filesystem"), (2, "monkeypatch")]),
        ("def f():\n    global CACHE\n    CACHE = 1", [(2, "monkeypatch")]),
        ("def f():\n    n = 0\n    def g():\n        nonlocal n", [(4, "monkeypatch")]),
        ("self.out = y\nobj.attr = 1", []),
    ],
)
def test_monkeypatching(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("async def launch(x):\n    return x", [(1, "concurrency")]),
        ("async def launch(x):\n    await work(x)", [(1, "concurrency"), (2, "concurrency")]),
        (
            "async def f():\n    async for a in b:\n        pass",
            [(1, "concurrency"), (2, "concurrency")],
        ),
        (
            "async def f():\n    async with b:\n        pass",
            [(1, "concurrency"), (2, "concurrency")],
        ),
    ],
)
def test_async_is_concurrency(source: str, expected: list[tuple[int, str]]) -> None:
    assert found(source) == expected


def test_every_finding_is_reported_in_line_order_without_duplicates() -> None:
    source = """
    import os
    import torch

    def launch(x):
        try:
            return x.sum() + x.sum()
        except Exception:
            return torch.softmax(x, -1)
    """
    findings = screen(textwrap.dedent(source))
    assert [(f.line, f.construct) for f in findings] == [
        (2, "import os"),
        (6, "try/except"),
        (7, "x.sum()"),
        (9, "torch.softmax"),
    ]


def test_messages_say_what_is_wrong_and_what_to_do() -> None:
    assert screen("import torch\ny = torch.softmax(x, dim=-1)\n") == [
        Finding(
            line=2,
            construct="torch.softmax",
            family="torch-compute",
            message=(
                "torch.softmax computes with PyTorch instead of a Triton kernel; compute it "
                "inside a @triton.jit kernel and use torch only to allocate tensors."
            ),
        )
    ]
    assert screen("import numpy\n")[0].message == (
        "imports numpy, which a kernel module does not need; "
        "only torch, triton and the standard math/typing helpers are allowed."
    )
