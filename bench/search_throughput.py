"""Search throughput on one GPU: evaluations per GPU-hour and where each candidate's time goes.

Runs the same tuner-only search (`kevolve optimize`, fresh state each time) once per
`--parallel` value, then reads every evaluation's phases from the search's state file and prints
a markdown table: evaluated, wall time, evaluations per GPU-hour, the GPU's timing share of wall
time, how full the evaluation slots were, how busy the machine's CPUs were, and the median
seconds per phase (load, check and its parts, waiting for the timing lock, timing, the whole).

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
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PHASES = (
    *("load", "check", "reply", "check_wait", "compare", "reference"),
    *("prepare", "wait", "time", "recheck", "total"),
)


def run(args: argparse.Namespace, parallel: int, scratch: Path) -> dict[str, Any]:
    """One search; its figures."""
    state, out = scratch / f"p{parallel}.sqlite", scratch / f"p{parallel}.json"
    command = [
        sys.executable,
        "-c",
        "import sys; from kevolve.bot.commands.cli import main; sys.exit(main())",
        "optimize",
        str(args.spec),
        *("--op", args.op, "--dtype", args.dtype, "--shape", args.shape),
        *("--device", args.device, "--budget", str(args.budget), "--minutes", str(args.minutes)),
        *("--patience", "1000", "--parallel", str(parallel)),
        *("--state", str(state), "--out", str(out)),
    ]
    before = cpu_times()
    with subprocess.Popen(command, cwd=ROOT) as search:
        timeline = watch(search, state)
    if search.returncode:
        raise subprocess.CalledProcessError(search.returncode, command)
    after = cpu_times()
    result = json.loads(out.read_text())
    with sqlite3.connect(state) as db:
        evaluations = [
            json.loads(row[0]) for row in db.execute("SELECT evaluation FROM evaluations")
        ]
        plans = db.execute("SELECT generation, COUNT(*) FROM plans GROUP BY generation").fetchall()
    phases = {
        name: statistics.median(e["phases"].get(name, 0.0) for e in evaluations) for name in PHASES
    }
    wall = float(result["wall_s"])
    busy, total = (a - b for a, b in zip(after, before, strict=True))
    return {
        "parallel": parallel,
        "evaluated": result["evaluated"],
        # Judged counts what a stop left unfolded too (the overlapping generation's finished
        # evaluations are stored, and the wall time waited for them).
        "judged": len(evaluations),
        "wall_s": wall,
        "per_gpu_hour": len(evaluations) / wall * 3600.0,
        "timing_share": float(result["gpu_s"]) / wall,
        # How full the evaluation slots were: every evaluation's wall time over slots x wall.
        "slot_use": sum(e["phases"].get("total", 0.0) for e in evaluations) / (parallel * wall),
        "cpu_busy": busy / total if total else 0.0,
        "phases": phases,
        "best": (result.get("best") or {}).get("score"),
        "source": (result.get("best") or {}).get("source"),
        "plans": dict(plans),
        "timeline": timeline,
    }


def watch(search: subprocess.Popen[bytes], state: Path) -> list[tuple[float, int, int]]:
    """Every 5 s until the search ends: (seconds, judge processes alive, evaluations stored)."""
    start = time.monotonic()
    samples: list[tuple[float, int, int]] = []
    while search.poll() is None:
        time.sleep(5.0)
        samples.append((round(time.monotonic() - start), judges_alive(), stored(state)))
    return samples


def judges_alive() -> int:
    """How many judge processes (`kevolve.harness.judge`) run on this machine now."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            count += b"kevolve.harness.judge\0" in (proc / "cmdline").read_bytes()
        except OSError:
            continue  # it ended while we looked
    return count


def stored(state: Path) -> int:
    """Evaluations in the search's state file so far."""
    try:
        with sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=1.0) as db:
            return int(db.execute("SELECT COUNT(*) FROM evaluations").fetchone()[0])
    except sqlite3.Error:
        return 0


def cpu_times() -> tuple[float, float]:
    """(busy, all) CPU jiffies of the whole machine so far, from /proc/stat."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle and iowait
    return sum(fields) - idle, sum(fields)


def row(figures: dict[str, Any]) -> str:
    """One markdown table row."""
    phases = " | ".join(f"{figures['phases'][name]:.1f}" for name in PHASES)
    return (
        f"| {figures['parallel']} | {figures['evaluated']} | {figures['judged']} | "
        f"{figures['wall_s']:.0f} | "
        f"{figures['per_gpu_hour']:.0f} | {figures['timing_share']:.0%} | "
        f"{figures['slot_use']:.0%} | {figures['cpu_busy']:.0%} | {phases} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "demo")
    parser.add_argument("--op", default="softmax")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--shape", default="8192x8192")
    parser.add_argument("--parallel", default="4,8", help="comma-separated values to compare")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--device", default="cuda", help="cpu: a smoke run under the interpreter")
    parser.add_argument("--winner", type=Path, help="write the last search's best module here")
    parser.add_argument("--budget", type=int, default=400)
    args = parser.parse_args()
    header = "| parallel | evaluated | judged | wall s | per GPU-hour | timing share | slot use | "
    header += "CPU busy | "
    header += " | ".join(f"{name} s" for name in PHASES) + " |"
    lines = [header, "|" + "---|" * (8 + len(PHASES))]
    with tempfile.TemporaryDirectory() as scratch:
        for parallel in (int(p) for p in args.parallel.split(",")):
            figures = run(args, parallel, Path(scratch))
            lines.append(row(figures))
            print(lines[-1], flush=True)
            print(f"plans (generation: candidates): {figures['plans']}")
            print("timeline (s, judges alive, stored):", figures["timeline"], flush=True)
            print(f"best score (geometric-mean speedup over the op's kernel): {figures['best']}")
            if args.winner and figures["source"]:
                args.winner.write_text(figures["source"])
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
