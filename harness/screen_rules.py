"""Rule tables of the static screen: allowed imports and torch API, escape builtins, families."""

from __future__ import annotations

import ast

ALLOWED_MODULES = frozenset({
    "__future__", "math", "typing", "functools", "dataclasses", "enum", "collections",
    "collections.abc", "torch", "torch.nn", "triton", "triton.language", "triton.language.extra",
    "triton.language.extra.cuda", "triton.language.extra.libdevice",
})  # fmt: skip

# A rejected import's family, by its top-level package; anything else is plain "import".
IMPORT_FAMILIES: dict[str, str] = {
    **dict.fromkeys(("os", "pathlib", "shutil", "io", "tempfile", "glob"), "filesystem"),
    **dict.fromkeys(("subprocess", "multiprocessing", "signal", "pty"), "process"),
    **dict.fromkeys(("socket", "http", "urllib", "requests", "ssl", "asyncio"), "network"),
    **dict.fromkeys(("threading", "concurrent", "_thread", "queue"), "concurrency"),
    **dict.fromkeys(("ctypes", "cffi", "mmap"), "ctypes"),
    **dict.fromkeys(("importlib", "imp", "pkgutil", "runpy"), "dynamic-import"),
    **dict.fromkeys(("gc", "weakref"), "gc"),
    **dict.fromkeys(("sys", "inspect", "traceback", "builtins", "types", "code", "dis"),
                    "introspection"),
    "torch": "torch-compute",
}  # fmt: skip

# Builtins that escape the sandbox however they are used (called, aliased or passed along).
ESCAPE_BUILTINS: dict[str, str] = {
    **dict.fromkeys(("eval", "exec", "compile", "__import__"), "dynamic-import"),
    "open": "filesystem",
    **dict.fromkeys(("globals", "locals", "vars"), "introspection"),
    **dict.fromkeys(("getattr", "setattr", "delattr", "hasattr"), "introspection"),
    **dict.fromkeys(("breakpoint", "input", "exit", "quit"), "process"),
}  # fmt: skip

# With a constant name these act like `obj.name` in the given context, and are checked as such.
ATTR_BUILTINS: dict[str, type[ast.expr_context]] = {
    "getattr": ast.Load, "hasattr": ast.Load, "setattr": ast.Store, "delattr": ast.Del,
}  # fmt: skip
ALLOWED_DUNDERS = frozenset({"__init__", "__name__"})  # super().__init__(), fn.__name__
FRAME_ATTRS = frozenset({
    "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "tb_frame", "tb_next", "gi_frame",
    "cr_frame", "__code__",
})  # fmt: skip
FORBIDDEN_NAMES = frozenset({"__builtins__", "__loader__", "__spec__"})

TORCH_DTYPES = frozenset({
    "float16", "bfloat16", "float32", "float64", "half", "float", "double", "int8", "int16",
    "int32", "int64", "uint8", "bool", "float8_e4m3fn", "float8_e5m2", "long", "int",
})  # fmt: skip
# Host-side torch API a launcher may use, relative to `torch.`: dtypes, allocation, metadata.
TORCH_HOST_API = TORCH_DTYPES | {
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "arange", "tensor", "device", "dtype", "Size", "Tensor", "finfo", "iinfo",
    "is_tensor", "no_grad", "inference_mode", "get_default_dtype", "cuda.is_available",
    "cuda.current_device", "cuda.device_count", "cuda.get_device_properties",
    "cuda.get_device_capability", "cuda.get_device_name",
}  # fmt: skip
# Streams, events, graphs and syncs belong to the harness's timer, not to the candidate.
TORCH_STREAM_API = (
    "cuda.Stream", "cuda.stream", "cuda.Event", "cuda.graph", "cuda.CUDAGraph", "cuda.set_stream",
    "cuda.synchronize", "cuda.current_stream", "cuda.default_stream", "cuda.ExternalStream",
)  # fmt: skip
_COMPUTE_METHODS = (
    "sum", "mean", "exp", "exp2", "log", "log1p", "softmax", "log_softmax", "matmul", "mm", "bmm",
    "addmm", "baddbmm", "mv", "dot", "outer", "einsum", "mul", "add", "sub", "div", "true_divide",
    "pow", "sqrt", "rsqrt", "reciprocal", "max", "min", "amax", "amin", "argmax", "argmin",
    "maximum", "minimum", "relu", "gelu", "silu", "sigmoid", "tanh", "erf", "abs", "neg",
    "square", "norm", "var", "std", "prod", "cumsum", "cumprod", "sort", "topk", "where", "clamp",
    "clip", "masked_fill", "index_select", "gather", "scatter", "scatter_add", "linear", "conv1d",
    "conv2d", "layer_norm", "rms_norm", "any", "all", "eq", "ne", "lt", "gt", "le", "ge",
    "floor", "ceil", "round", "sign", "lerp", "addcmul", "addcdiv", "numpy", "tolist", "apply_",
    "map_",
)  # fmt: skip
# Tensor methods that compute on the host, with their in-place `_` variants.
TENSOR_COMPUTE_METHODS = frozenset(_COMPUTE_METHODS) | {f"{m}_" for m in _COMPUTE_METHODS}
ASYNC_WORDS = {ast.Await: "await", ast.AsyncFor: "async for", ast.AsyncWith: "async with"}
JIT_DECORATORS = frozenset({"triton.jit", "triton.autotune", "triton.heuristics"})
JIT_NAMES = frozenset(path.rpartition(".")[2] for path in JIT_DECORATORS)

# Per family: what the construct does wrong, and what to do instead.
FAMILY_TEXT: dict[str, tuple[str, str]] = {
    "torch-compute": (
        "computes with PyTorch instead of a Triton kernel",
        "compute it inside a @triton.jit kernel and use torch only to allocate tensors"),
    "fallback": ("hides kernel failures behind a fallback", "let errors surface"),
    "concurrency": ("runs work concurrently or manages streams, which races the harness's timer",
                    "launch kernels synchronously on the current stream"),
    "monkeypatch": (
        "changes state shared across calls, which can patch the harness or cache answers",
        "leave modules and builtins unchanged and keep state in local variables"),
    "introspection": ("reaches into interpreter or library internals",
                      "use only public torch and triton APIs"),
    "gc": ("reaches into the garbage collector", "a kernel module has no use for it"),
    "filesystem": ("touches the filesystem", "keep everything in the candidate's source"),
    "process": ("controls processes or the interpreter", "define only kernels and a launcher"),
    "network": ("reaches the network", "keep everything in the candidate's source"),
    "ctypes": ("calls native code outside Triton", "write the computation as a @triton.jit kernel"),
    "dynamic-import": ("loads or runs code dynamically", "write all code in the candidate itself"),
    "import": ("a kernel module does not need", "remove it"),
    "decoy": ("is not Triton's decorator, so host code would pass as a kernel",
              "decorate kernels with triton.jit, triton.autotune or triton.heuristics"),
}  # fmt: skip
