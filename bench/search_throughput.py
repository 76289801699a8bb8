"""Search throughput on one GPU: evaluations per GPU-hour and where each candidate's time goes.

Runs the same tuner-only search (`kevolve optimize`, fresh state each time) once per
`--parallel` value, then reads every evaluation's phases from the search's state file and prints
a markdown table: evaluated, wall time, evaluations per GPU-hour, the GPU's timing share of wall
time, and the median seconds per phase (load, check and its parts, waiting for the timing lock,
timing).

    python bench/search_throughput.py --op softmax --dtype bfloat16 --shape 8192x8192 \
        --parallel 4,8,12 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHASES = (
    *("load", "check", "reply", "check_wait", "compare", "reference"),
    *("prepare", "wait", "time", "total"),
)


def run(args: argparse.Namespace, parallel: int, scratch: Path) -> dict[str, Any]:
    """One search; its figures."""
    state, out = scratch / f"p{parallel}.sqlite", scratch / f"p{parallel}.json"
    command = [
        sys.executable,
        "-c",
        "import sys; from bot.cli import main; sys.exit(main())",
        "optimize",
        str(args.spec),
        *("--op", args.op, "--dtype", args.dtype, "--shape", args.shape),
        *("--device", "cuda", "--budget", str(args.budget), "--minutes", str(args.minutes)),
        *("--patience", "1000", "--parallel", str(parallel)),
        *("--state", str(state), "--out", str(out)),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    result = json.loads(out.read_text())
    with sqlite3.connect(state) as db:
        evaluations = [
            json.loads(row[0]) for row in db.execute("SELECT evaluation FROM evaluations")
        ]
    phases = {
        name: statistics.median(e["phases"].get(name, 0.0) for e in evaluations) for name in PHASES
    }
    wall = float(result["wall_s"])
    return {
        "parallel": parallel,
        "evaluated": result["evaluated"],
        "wall_s": wall,
        "per_gpu_hour": result["evaluated"] / wall * 3600.0,
        "timing_share": float(result["gpu_s"]) / wall,
        "phases": phases,
        "best": (result.get("best") or {}).get("score"),
    }


def row(figures: dict[str, Any]) -> str:
    """One markdown table row."""
    phases = " | ".join(f"{figures['phases'][name]:.1f}" for name in PHASES)
    return (
        f"| {figures['parallel']} | {figures['evaluated']} | {figures['wall_s']:.0f} | "
        f"{figures['per_gpu_hour']:.0f} | {figures['timing_share']:.0%} | {phases} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "demo")
    parser.add_argument("--op", default="softmax")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--shape", default="8192x8192")
    parser.add_argument("--parallel", default="4,8", help="comma-separated values to compare")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--budget", type=int, default=400)
    args = parser.parse_args()
    header = "| parallel | evaluated | wall s | per GPU-hour | timing share | "
    header += " | ".join(f"{name} s" for name in PHASES) + " |"
    lines = [header, "|" + "---|" * (5 + len(PHASES))]
    with tempfile.TemporaryDirectory() as scratch:
        for parallel in (int(p) for p in args.parallel.split(",")):
            lines.append(row(run(args, parallel, Path(scratch))))
            print(lines[-1], flush=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
