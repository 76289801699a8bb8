"""Where does a timing gap between `kevolve check` and `do_bench` come from? One op, one shape.

Times the demo kernel four ways in one process: plain do_bench; the harness Timer with fixed
inputs; the Timer with fresh inputs per call (as `kevolve check` does); and do_bench again.

    python bench/timer_probe.py --op matmul_bias_relu --shape 8192,4096,1024 --dtype bfloat16
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch
import triton.testing

ROOT = Path(__file__).resolve().parent.parent

from kevolve.harness.judge.inputs import InputMaker, Trial, load_attr  # noqa: E402
from kevolve.harness.judge.stats import median, quantile  # noqa: E402
from kevolve.harness.judge.timing import Timer, TimingConfig  # noqa: E402
from kevolve.harness.spec.load import load_problems, select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--op", default="matmul_bias_relu")
    parser.add_argument("--shape", default="8192,4096,1024")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument(
        "--heat",
        action="store_true",
        help="also time after heavy work and beside a second CUDA context",
    )
    args = parser.parse_args()
    demo = ROOT / "examples" / "demo"
    problem = select(load_problems(demo), args.op, demo)
    shape = tuple(int(n) for n in args.shape.split(","))
    device = torch.device("cuda")
    entry = load_attr(problem, f"{problem.kernel}:{problem.entry}", "_probe_kernel")
    maker = InputMaker(problem, device)
    fixed = maker(shape, args.dtype, Trial(0, "normal"))
    state = {"inputs": fixed}
    timer = Timer(device, TimingConfig())

    def call() -> object:
        return entry(*state["inputs"])

    def fresh(i: int) -> None:
        state["inputs"] = maker(shape, args.dtype, Trial(i + 1, "normal"))

    def same(i: int) -> None:
        state["inputs"] = fixed

    def show(name: str, xs: list[float]) -> None:
        print(
            f"{name:28s} median {median(xs):.4f}  q10 {quantile(xs, 0.1):.4f}  "
            f"q90 {quantile(xs, 0.9):.4f}  n {len(xs)}",
            flush=True,
        )

    timer.warm_up(call, same)
    for rep in range(2):
        show(
            f"do_bench (rep {rep})",
            list(triton.testing.do_bench(call, warmup=50, rep=300, return_mode="all")),
        )
        show(f"Timer fixed inputs ({rep})", timer.time_calls(call, same, 200).event_ms)
        show(f"Timer fresh inputs ({rep})", timer.time_calls(call, fresh, 200).event_ms)
    if args.heat:
        heat_and_neighbours(timer, call, fresh, show, device)


def heat_and_neighbours(timer: Timer, call, fresh, show, device: torch.device) -> None:  # type: ignore[no-untyped-def]
    """Time after heavy float64 work, then beside a second (idle) CUDA context."""

    def chunks(name: str, xs: list[float]) -> None:
        medians = [f"{median(xs[i : i + 20]):.4f}" for i in range(0, len(xs), 20)]
        print(f"{name:28s} 20-call chunk medians: {' '.join(medians)}", flush=True)

    a = torch.randn(4096, 4096, device=device, dtype=torch.float64)
    for _ in range(20):  # the judge computes float64 references right before timing
        a @ a
    xs = timer.time_calls(call, fresh, 200).event_ms
    show("after float64 matmuls", xs)
    chunks("after float64 matmuls", xs)
    code = (
        "import torch, time; x = torch.ones(1, device='cuda'); torch.cuda.synchronize(); "
        "print('ready', flush=True); time.sleep(60)"
    )
    idle = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert idle.stdout is not None
    idle.stdout.readline()
    xs = timer.time_calls(call, fresh, 200).event_ms
    show("beside an idle context", xs)
    chunks("beside an idle context", xs)
    idle.kill()
    xs = timer.time_calls(call, fresh, 200).event_ms
    show("idle context gone", xs)
    chunks("idle context gone", xs)


if __name__ == "__main__":
    main()
