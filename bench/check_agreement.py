"""Does `kevolve check` time kernels the way `triton.testing.do_bench` does?

For every demo op, judge the demo's own kernel with the harness on the GPU (candidate = the repo's
kernel, timed against it and against the eager reference), then time the very same call with a
plain `do_bench` in this process, and print both medians and their ratio.

    python bench/check_agreement.py [--ops softmax,rmsnorm] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import triton
import triton.testing

ROOT = Path(__file__).resolve().parent.parent

from kevolve.harness.evaluate import EvalOptions, evaluate  # noqa: E402
from kevolve.harness.judge.inputs import InputMaker, Trial, load_attr  # noqa: E402
from kevolve.harness.report import render, table  # noqa: E402
from kevolve.harness.spec.load import load_problems  # noqa: E402

DEMO = ROOT / "examples" / "demo"


def do_bench_median(problem, shape, dtype) -> float:  # type: ignore[no-untyped-def]
    """Median ms of the demo kernel on seeded inputs, by do_bench."""
    device = torch.device("cuda")
    entry = load_attr(problem, f"{problem.kernel}:{problem.entry}", "_bench_kernel")
    inputs = InputMaker(problem, device)(shape, dtype, Trial(0, "normal"))
    return float(
        triton.testing.do_bench(lambda: entry(*inputs), warmup=100, rep=500, return_mode="median")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", default="")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "kevolve")
    args = parser.parse_args()
    problems = [p for p in load_problems(DEMO) if not args.ops or p.name in args.ops.split(",")]
    rows, records = [], []
    for problem in problems:
        source = (problem.root / str(problem.kernel)).read_text()
        ev = evaluate(problem, source, EvalOptions(device="cuda", cache_dir=args.cache))
        print(render(ev), flush=True)
        for t in ev.timings:
            ref = do_bench_median(problem, tuple(t.shape), t.dtype)
            ratio = t.candidate.median_ms / ref
            rows.append(
                [
                    problem.name,
                    "x".join(map(str, t.shape)),
                    t.dtype,
                    f"{t.candidate.median_ms:.4f}",
                    f"{ref:.4f}",
                    f"{ratio:.3f}",
                    f"{t.reference.median_ms:.4f}" if t.reference else "-",
                    f"{100 * (t.roofline_fraction or 0):.0f}%",
                ]
            )
            records.append(
                {
                    "op": problem.name,
                    "shape": t.shape,
                    "dtype": t.dtype,
                    "check_median_ms": t.candidate.median_ms,
                    "do_bench_median_ms": ref,
                    "ratio": ratio,
                    "eager_ms": t.reference.median_ms if t.reference else None,
                    "roofline_fraction": t.roofline_fraction,
                }
            )
        hardware = ev.hardware
    head = ["op", "shape", "dtype", "check median", "do_bench median", "ratio", "eager", "roofline"]
    print("\n".join(table(head, rows)))
    print(json.dumps(hardware))
    if args.out:
        args.out.write_text(json.dumps({"hardware": hardware, "rows": records}, indent=2))


if __name__ == "__main__":
    main()
