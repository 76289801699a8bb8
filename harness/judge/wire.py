"""Tensors as (metadata, bytes) for the channel; decoding validates what an untrusted peer sent."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from kevolve.harness.sandbox.channel import Blob

DTYPES: dict[str, torch.dtype] = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_NAMES = {v: k for k, v in DTYPES.items()}


class WireError(Exception):
    """Metadata and bytes that do not describe a tensor."""


def dtype_name(dtype: torch.dtype) -> str:
    """The config name of a torch dtype (e.g. "bfloat16"); str(dtype) for exotic ones."""
    return _NAMES.get(dtype, str(dtype).removeprefix("torch."))


def encode(values: Sequence[object]) -> tuple[list[dict[str, Any]], list[Blob]]:
    """Metadata per value and the blobs of the tensor values, in order: each blob a view of a
    host copy of its tensor (a copy even on the CPU, so that later calls cannot change it)."""
    metas: list[dict[str, Any]] = []
    blobs: list[Blob] = []
    for value in values:
        if isinstance(value, torch.Tensor) and value.dtype in _NAMES:
            flat = value.detach().reshape(-1).to("cpu", copy=True)
            metas.append(
                {
                    "kind": "tensor",
                    "dtype": dtype_name(value.dtype),
                    "shape": list(value.shape),
                    "device": value.device.type,
                }
            )
            blobs.append(flat.view(torch.uint8).numpy().data if flat.numel() else b"")
        else:
            metas.append({"kind": "other", "type": type(value).__name__})
    return metas, blobs


def decode(metas: Sequence[Any], blobs: Sequence[Blob], device: torch.device) -> list[object]:
    """Tensors (on `device`) for tensor metadata, a `Foreign` marker for anything else."""
    out: list[object] = []
    blob_iter = iter(blobs)
    for meta in metas:
        if not isinstance(meta, dict) or meta.get("kind") != "tensor":
            out.append(Foreign(str(meta.get("type", "?")) if isinstance(meta, dict) else "?"))
            continue
        out.append(_decode_tensor(meta, next(blob_iter, None), device))
    return out


class Foreign:
    """Stands for a non-tensor value the candidate returned; only its type name crosses over."""

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"<{self.type_name}>"


def _decode_tensor(meta: dict[str, Any], blob: Blob | None, device: torch.device) -> torch.Tensor:
    """One validated tensor from its metadata and bytes."""
    dtype = DTYPES.get(str(meta.get("dtype")))
    shape = meta.get("shape")
    if (
        dtype is None
        or not isinstance(shape, list)
        or not all(isinstance(n, int) and n >= 0 for n in shape)
    ):
        raise WireError(f"bad tensor metadata {meta!r}")
    expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
    got = 0 if blob is None else memoryview(blob).nbytes
    if blob is None or got != expected:
        raise WireError(f"tensor of shape {shape} needs {expected} bytes, got {got}")
    if expected == 0:
        return torch.empty(shape, dtype=dtype, device=device)
    # A received blob is ours alone: the tensor takes its memory. Any other is copied first.
    own = blob if isinstance(blob, bytearray) else bytearray(blob)
    flat = torch.frombuffer(own, dtype=torch.uint8).view(dtype)
    return flat.reshape(shape).to(device)
