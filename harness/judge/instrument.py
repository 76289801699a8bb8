"""What a candidate does during a call: the Triton kernels it launches and the PyTorch ops it runs.

Both hooks live in the worker process and are installed before candidate code is imported.
Static screening already forbids the private attributes a candidate would need to undo them.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import triton.runtime.jit as triton_jit
from torch.utils._python_dispatch import TorchDispatchMode

try:  # the interpreter module moved between Triton releases; both places hold the same class
    from triton.runtime.interpreter import InterpretedFunction
except ImportError:  # pragma: no cover - older Triton
    InterpretedFunction = None

# Aten ops a launcher may run: allocation, views, metadata and plain copies. Anything else is the
# answer being computed by PyTorch instead of by the candidate's kernel.
ALLOWED_OPS = frozenset(
    {
        "empty",
        "empty_like",
        "empty_strided",
        "new_empty",
        "new_empty_strided",
        "zeros",
        "zeros_like",
        "new_zeros",
        "ones",
        "ones_like",
        "full",
        "full_like",
        "new_full",
        "new_ones",
        "fill",
        "fill_",
        "zero_",
        "arange",
        "scalar_tensor",
        "lift_fresh",
        "lift_fresh_copy",
        "view",
        "_unsafe_view",
        "reshape",
        "as_strided",
        "t",
        "transpose",
        "permute",
        "expand",
        "unsqueeze",
        "squeeze",
        "slice",
        "select",
        "split",
        "split_with_sizes",
        "unbind",
        "detach",
        "alias",
        "clone",
        "contiguous",
        "copy_",
        "_to_copy",
        "to",
        "resize_",
        "flatten",
        "view_as",
        "narrow",
        "sym_size",
        "sym_stride",
        "sym_numel",
        "sym_storage_offset",
        "is_same_size",
        "set_",
        "_local_scalar_dense",
        "item",
    }
)
_ALLOCATORS = frozenset({"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"})


class LaunchHook:
    """Counts launches of the candidate module's Triton kernels and keeps their compiled objects."""

    def __init__(self, module_name: str) -> None:
        self.module_name = module_name
        self.launches: Counter[str] = Counter()  # since the last reset (one call)
        self.total: Counter[str] = Counter()  # over the worker's life
        self.compiled: dict[str, Any] = {}
        self.active = 0  # >0 while a Triton launch is in progress
        self.failed_kernel: Any = None
        self._own_runs: dict[Any, Callable[..., Any]] = {}  # Triton's, before the hook
        for cls in (triton_jit.JITFunction, InterpretedFunction):
            if cls is not None:
                self._own_runs[cls] = cls.run
                cls.run = self._wrap(cls.run)  # type: ignore[method-assign]

    @contextmanager
    def suspended(self) -> Iterator[None]:
        """Triton's own launch path while timed calls run: nothing of the hook (or anything
        wrapped around it) between the candidate's call and the GPU; restored after."""
        wrapped = {cls: cls.run for cls in self._own_runs}
        for cls, run in self._own_runs.items():
            cls.run = run
        try:
            yield
        finally:
            for cls, run in wrapped.items():
                cls.run = run

    def _wrap(self, run: Callable[..., Any]) -> Callable[..., Any]:
        """`run` that records launches of the candidate's kernels."""
        hook = self

        def counted_run(fn_self: Any, *args: Any, **kwargs: Any) -> Any:
            fn = getattr(fn_self, "fn", None)
            ours = getattr(fn, "__module__", None) == hook.module_name
            hook.active += 1
            try:
                result = run(fn_self, *args, **kwargs)
            except BaseException:
                hook.failed_kernel = fn if hook.failed_kernel is None else hook.failed_kernel
                raise
            finally:
                hook.active -= 1
            if ours and fn is not None and not kwargs.get("warmup"):
                hook.launches[fn.__name__] += 1
                hook.total[fn.__name__] += 1
                if result is not None and not isinstance(result, (list, tuple)):
                    hook.compiled[fn.__name__] = result
            return result

        return counted_run

    def reset(self) -> None:
        """Forget launches counted so far (compiled kernels stay)."""
        self.launches.clear()
        self.failed_kernel = None


class OpGuard(TorchDispatchMode):  # type: ignore[no-untyped-call]
    """Records aten ops outside Triton launches and poisons fresh allocations.

    Poisoning every `empty` with NaN (or the largest integer) makes outputs that rely on stale
    memory fail the comparison instead of passing by luck.
    """

    def __init__(self, launches: LaunchHook) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.launches = launches
        self.forbidden: Counter[str] = Counter()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        result = func(*args, **(kwargs or {}))
        if self.launches.active:
            return result  # the interpreter's own tensor traffic inside a launch
        name = func.overloadpacket.__name__
        if name not in ALLOWED_OPS:
            self.forbidden[str(func)] += 1
        elif name in _ALLOCATORS and isinstance(result, torch.Tensor):
            poison(result)
        return result


def poison(t: torch.Tensor) -> None:
    """Fill a tensor with a value no correct kernel leaves in an output."""
    if t.is_floating_point():
        t.fill_(float("nan"))
    elif t.dtype == torch.bool:
        t.fill_(True)
    elif t.is_complex():
        t.fill_(complex(float("nan"), float("nan")))
    else:
        t.fill_(torch.iinfo(t.dtype).max)


def poison_cache(device: torch.device, max_bytes: int) -> None:
    """Fill free blocks of the CUDA caching allocator with 0xFF bytes (NaN for floats)."""
    if device.type != "cuda":
        return
    free, _ = torch.cuda.mem_get_info(device)
    size = min(max_bytes, free // 4)
    if size > 0:
        block = torch.empty(size, dtype=torch.uint8, device=device)
        block.fill_(0xFF)
        del block


def kernel_line(fn: Any, relative_line: int) -> int | None:
    """The file line of line `relative_line` of a jit function's source (1 = its `def`)."""
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        return None
    def_index = next((i for i, s in enumerate(lines) if s.lstrip().startswith("def ")), 0)
    return start + def_index + relative_line - 1
