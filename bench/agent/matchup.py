"""How the agent's best kernels compare with what a user would run instead, on one GPU.

For each op: the demo kernel, the search's best candidate (from its state file), the eager
PyTorch reference, torch.compile (default) and torch.compile (max-autotune-no-cudagraphs) of the
reference, each timed with `triton.testing.do_bench` (median) at the op's production shapes in
bfloat16, in one process; for row ops also the device-copy ceiling (a `copy_` of the same bytes
read and written). The best candidate's output is checked against the reference first.

    python bench/agent/matchup.py --state bench/agent/state [--ops a,b] --out compare.json
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import triton
import triton.testing

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
sys.path.insert(0, str(DEMO))

from demo_kernels import reference  # noqa: E402

SHAPES = {
    "softmax": [(8192, 8192), (4096, 32000)],
    "rmsnorm": [(8192, 8192), (16384, 4096)],
    "bias_gelu": [(8192, 8192), (4096, 11008)],
    "matmul_bias_relu": [(4096, 4096, 4096), (8192, 4096, 1024)],
}
ROW_OPS = {"softmax", "rmsnorm", "bias_gelu"}  # memory-bound: the copy ceiling applies


def load_module(source: str, name: str) -> ModuleType:
    """A kernel module from source, through a real file (Triton reads the source of kernels)."""
    folder = Path(tempfile.mkdtemp(prefix="kevolve-compare-"))
    path = folder / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_source(state: Path, op: str) -> tuple[str, str] | None:
    """The best candidate's id and source from a search's state file, by its newest checkpoint."""
    path = state / f"{op}.sqlite"
    if not path.exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    row = db.execute("SELECT state FROM checkpoints ORDER BY generation DESC LIMIT 1").fetchone()
    if row is None or not json.loads(row[0]).get("best"):
        return None
    best = json.loads(row[0])["best"]
    (source,) = db.execute("SELECT source FROM candidates WHERE id = ?", (best,)).fetchone()
    return best, source


def median_ms(fn: Any) -> float:
    return float(triton.testing.do_bench(fn, warmup=50, rep=300, return_mode="median"))


def inputs(op: str, shape: tuple[int, ...]) -> tuple[torch.Tensor, ...]:
    maker = getattr(reference, f"{op}_inputs")
    generator = torch.Generator(device="cuda").manual_seed(0)
    return tuple(maker(shape, torch.bfloat16, "cuda", generator))


def compare(op: str, state: Path) -> list[dict[str, Any]]:
    """One row per shape: every arm's median and the ratios to the best candidate."""
    ref = getattr(reference, op)
    demo = getattr(load_module((DEMO / "demo_kernels" / f"{op}.py").read_text(), f"demo_{op}"), op)
    found = best_source(state, op)
    best = getattr(load_module(found[1], f"best_{op}"), op) if found else None
    default = torch.compile(ref)
    autotuned = torch.compile(ref, mode="max-autotune-no-cudagraphs")
    rows = []
    for shape in SHAPES[op]:
        args = inputs(op, shape)
        row: dict[str, Any] = {"op": op, "shape": "x".join(map(str, shape)), "dtype": "bfloat16"}
        row["best_id"] = found[0] if found else None
        if best is not None:
            expected = ref(*(a.double() for a in args)).float()
            got = best(*args).float()
            row["best_max_abs_err"] = float((got - expected).abs().max())
        started = time.monotonic()
        arms = {"demo": demo, "best": best, "eager": ref, "compile": default}
        arms["max_autotune"] = autotuned
        for name, fn in arms.items():
            if fn is not None:
                row[f"{name}_ms"] = round(median_ms(lambda fn=fn, a=args: fn(*a)), 5)
        if op in ROW_OPS:
            x, y = args[0], torch.empty_like(args[0])
            row["copy_ms"] = round(median_ms(lambda x=x, y=y: y.copy_(x)), 5)
        row["seconds"] = round(time.monotonic() - started, 1)
        if best is not None:
            for name in ("demo", "eager", "compile", "max_autotune"):
                row[f"best_vs_{name}"] = round(row[f"{name}_ms"] / row["best_ms"], 3)
            if "copy_ms" in row:
                row["best_pct_of_copy"] = round(100 * row["copy_ms"] / row["best_ms"], 1)
            compiled = min(row["compile_ms"], row["max_autotune_ms"])
            row["best_vs_best_compile"] = round(compiled / row["best_ms"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, default=ROOT / "bench/agent/state")
    parser.add_argument("--ops", default="softmax,bias_gelu,matmul_bias_relu")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("compare: no CUDA device: these figures are GPU timings")
    props = torch.cuda.get_device_properties(0)
    rows = []
    for op in args.ops.split(","):
        rows += compare(op, args.state)
    report = {
        "card": props.name,
        "torch": torch.__version__,
        "triton": triton.__version__,
        "cuda": torch.version.cuda,
        "rows": rows,
        "geomean_best_vs_best_compile": _geomean(
            [r["best_vs_best_compile"] for r in rows if "best_vs_best_compile" in r]
        ),
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2))


def _geomean(values: list[float]) -> float | None:
    return round(math.exp(sum(map(math.log, values)) / len(values)), 3) if values else None


if __name__ == "__main__":
    main()
