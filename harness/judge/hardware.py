"""The device a run used: its fingerprint and its measured copy and matmul ceilings, cached."""

from __future__ import annotations

import hashlib
import json
import math
import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import torch
from kevolve.harness.judge.stats import median
from kevolve.harness.judge.timing import Timer, TimingConfig

_COPY_BYTES = 2**30
_MATMUL_N = 8192
_CEILING_RUNS = 10
_KEY_FIELDS = ("device", "name", "cpu", "capability", "driver", "torch", "triton")
_CPUINFO = Path("/proc/cpuinfo")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9 ._()+,@-]")  # as `runners.intake` reads a device's name


@dataclass(frozen=True)
class Ceilings:
    """What the device reaches on plain work: copy bandwidth (read + write) and bf16 matmul."""

    copy_gbps: float
    matmul_tflops: float


def fingerprint(device: torch.device) -> dict[str, object]:
    """The device, driver and software versions as a JSON-ready dict."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return {"device": "cpu", "cpu": cpu_name(), **_software()}
    props = torch.cuda.get_device_properties(device)
    return {
        "device": "cuda",
        "name": props.name,
        "capability": f"{props.major}.{props.minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "sm_count": props.multi_processor_count,
        "l2_bytes": int(props.L2_cache_size),
        "driver": _driver_version(),
        "cuda": torch.version.cuda,
        **_software(),
    }


def cpu_name(cpuinfo: Path = _CPUINFO) -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one, else the architecture),
    kept to the characters a result's reader accepts in a name."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:
        lines = []
    names = [line.split(":", 1)[1] for line in lines if line.startswith("model name")]
    raw = names[0] if names else platform.processor() or platform.machine() or "unknown CPU"
    kept = " ".join(_NAME_UNSAFE.sub(" ", raw).split())[:100]
    return kept if kept[:1].isalnum() else f"CPU {kept}".strip()[:100]


def measure_ceilings(device: torch.device) -> Ceilings:
    """Measure copy GB/s on a 1 GiB device copy and bf16 TFLOP/s on an 8192^3 `torch.mm`.

    Raises `harness.judge.timing.TimingUnavailable` on a machine with no CUDA device.
    """
    timer = Timer(device, TimingConfig())
    return Ceilings(copy_gbps=_copy_gbps(timer), matmul_tflops=_matmul_tflops(timer))


def cached_ceilings(
    device: torch.device,
    cache_dir: Path,
    measure: Callable[[torch.device], Ceilings] = measure_ceilings,
) -> Ceilings:
    """The device's ceilings from the cache under `cache_dir`, measured and stored on a miss."""
    identity = fingerprint(device)
    path = cache_dir / f"ceilings-{_cache_key(identity)}.json"
    cached = _read_ceilings(path)
    if cached is not None:
        return cached
    ceilings = measure(device)
    _write_ceilings(path, identity, ceilings)
    return ceilings


def _software() -> dict[str, object]:
    """Torch, Triton and Python versions."""
    return {
        "torch": torch.__version__,
        "triton": _version("triton"),
        "python": platform.python_version(),
    }


def _version(package: str) -> str | None:
    """The installed version of a package, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi, or None where it cannot be read."""
    command = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if lines else None


def _copy_gbps(timer: Timer) -> float:
    """Device-to-device copy bandwidth in GB/s, counting bytes read and written."""
    source = torch.ones(_COPY_BYTES, dtype=torch.uint8, device=timer.device)
    target = torch.empty_like(source)
    milliseconds = _median_ms(timer, lambda: target.copy_(source))
    return 2 * _COPY_BYTES / (milliseconds * 1e-3) / 1e9


def _matmul_tflops(timer: Timer) -> float:
    """bf16 `torch.mm` throughput in TFLOP/s on random (never zero) 8192^2 matrices."""
    generator = torch.Generator(device=timer.device).manual_seed(0)
    shape = (_MATMUL_N, _MATMUL_N)
    a = torch.randn(shape, generator=generator, device=timer.device, dtype=torch.bfloat16)
    b = torch.randn(shape, generator=generator, device=timer.device, dtype=torch.bfloat16)
    milliseconds = _median_ms(timer, lambda: torch.mm(a, b))
    return 2 * _MATMUL_N**3 / (milliseconds * 1e-3) / 1e12


def _median_ms(timer: Timer, fn: Callable[[], object]) -> float:
    """Median event time of `fn` over the ceiling runs, after the timer's warm-up."""
    timer.warm_up(fn, _no_prepare)
    return median(timer.time_calls(fn, _no_prepare, _CEILING_RUNS).event_ms)


def _no_prepare(_: int) -> None:
    """Nothing to refresh between ceiling runs."""


def _cache_key(identity: dict[str, object]) -> str:
    """A short hash of the fingerprint fields that decide the ceilings."""
    fields = {name: identity.get(name) for name in _KEY_FIELDS}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _read_ceilings(path: Path) -> Ceilings | None:
    """Ceilings stored at `path`, or None if the file is missing or unreadable."""
    try:
        stored = json.loads(path.read_text())["ceilings"]
        copy_gbps, matmul_tflops = float(stored["copy_gbps"]), float(stored["matmul_tflops"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    if not (_plausible(copy_gbps) and _plausible(matmul_tflops)):
        return None
    return Ceilings(copy_gbps=copy_gbps, matmul_tflops=matmul_tflops)


def _plausible(value: float) -> bool:
    """True for a finite, positive measurement."""
    return math.isfinite(value) and value > 0.0


def _write_ceilings(path: Path, identity: dict[str, object], ceilings: Ceilings) -> None:
    """Store ceilings with the fingerprint they were measured on, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".json.tmp")
    partial.write_text(
        json.dumps({"fingerprint": identity, "ceilings": asdict(ceilings)}, indent=2)
    )
    partial.replace(path)
