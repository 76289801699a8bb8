"""Ray executor throughput: evaluations per minute of one search on 1, then 2, executor nodes.

For each node count, starts a fresh local Ray cluster (a head with no slots, plus that many
executor nodes of one CPU slot, or one GPU each with `--device cuda`), runs the same tuner-only
search (fixed seed and budget, fresh state) through `--executor ray`'s evaluator, and prints a
markdown table: evaluations, search wall time, evaluations per minute, the gain over the first
row, how the evaluations split over the nodes, and the machine's load average around the search
(other work on the machine shows there). Cluster start-up is shown apart, not counted.

    python bench/ray_throughput.py --device cpu --nodes 1,2 --budget 9
    python bench/ray_throughput.py --device cuda --nodes 1,2 --budget 24 --dtype bfloat16

Needs kevolve with the `ray` extra; on a GPU host also torch and triton, never the web stack.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ray.cluster_utils import Cluster

ROOT = Path(__file__).resolve().parent.parent

from kevolve.harness.evaluate import EvalOptions  # noqa: E402
from kevolve.harness.search.campaign import baseline_source  # noqa: E402
from kevolve.harness.search.cluster import ClusterError, connect  # noqa: E402
from kevolve.harness.search.engine import Search, SearchConfig  # noqa: E402
from kevolve.harness.search.store import Store  # noqa: E402
from kevolve.harness.search.tuner import TunerProposer  # noqa: E402
from kevolve.harness.spec.load import load_problems, narrow, select  # noqa: E402
from kevolve.harness.spec.problem import Problem  # noqa: E402


@dataclass(frozen=True)
class Figures:
    """One search's throughput on one cluster."""

    nodes: int
    slots: int
    evaluated: int
    start_s: float  # cluster start-up and joining, not counted in the rate
    wall_s: float  # the search itself
    per_node: tuple[int, ...]
    load: tuple[float, float]  # 1-minute load average before and after the search

    @property
    def per_minute(self) -> float:
        return self.evaluated / self.wall_s * 60.0


def run(args: argparse.Namespace, problem: Problem, nodes: int, scratch: Path) -> Figures:
    """The search, with fresh state in `scratch`, on a fresh cluster of `nodes` executor nodes."""
    scratch.mkdir(parents=True)
    # Shared by every run: the device ceilings are measured once, not in the first run only.
    cache = scratch.parent / "cache"
    options = EvalOptions(device=args.device, timeout=args.timeout, cache_dir=cache)
    started = time.monotonic()
    with ExitStack() as stack:
        cluster = stack.enter_context(local_cluster(nodes, args.device))
        remote = stack.enter_context(connect(problem, options, cluster.address))
        store = Store(scratch / "state.sqlite")
        stack.callback(store.close)
        config = SearchConfig(
            budget=args.budget,
            per_generation=args.per_generation,
            parallel=remote.slots,  # one per executor slot, as `--executor ray` does
            patience=args.budget,  # the budget alone ends the search
            seed=args.seed,
            hardware=args.device,
        )
        ready, load_before = time.monotonic(), os.getloadavg()[0]
        search = Search(
            problem, baseline_source(problem), config, [(TunerProposer(), 1.0)], remote, store
        )
        status = search.run()
        done = time.monotonic()
    return Figures(
        nodes=nodes,
        slots=remote.slots,
        evaluated=status.evaluated,
        start_s=ready - started,
        wall_s=done - ready,
        per_node=tuple(sorted(remote.per_node.values(), reverse=True)),
        load=(load_before, os.getloadavg()[0]),
    )


@contextmanager
def local_cluster(nodes: int, device: str) -> Iterator[Cluster]:
    """A head with no slots and `nodes` executor nodes: one CPU slot, or one GPU each."""
    gpus = visible_gpus() if device == "cuda" else []
    if device == "cuda" and len(gpus) < nodes:
        raise SystemExit(f"--nodes {nodes} needs as many GPUs; this host shows {len(gpus)}")
    head = {"num_cpus": 0, "num_gpus": 0, "include_dashboard": False}
    cluster = Cluster(initialize_head=True, head_node_args=head)
    try:
        for index in range(nodes):
            if device == "cuda":
                with visible(gpus[index]):  # the node's processes inherit the one GPU they see
                    cluster.add_node(num_cpus=1, num_gpus=1)
            else:
                cluster.add_node(num_cpus=1)
        yield cluster
    finally:
        cluster.shutdown()


@contextmanager
def visible(gpu: str) -> Iterator[None]:
    """CUDA_VISIBLE_DEVICES set to `gpu` while a node starts."""
    before = os.environ.get("CUDA_VISIBLE_DEVICES")
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    try:
        yield
    finally:
        if before is None:
            del os.environ["CUDA_VISIBLE_DEVICES"]
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = before


def visible_gpus() -> list[str]:
    """This host's GPUs as CUDA_VISIBLE_DEVICES names them (all of them when it is unset)."""
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    if names:
        return [n.strip() for n in names.split(",") if n.strip()]
    return [str(i) for i, _ in enumerate(nvidia_smi("name"))]


def nvidia_smi(*fields: str) -> list[str]:
    """One line per GPU of the asked fields, comma-separated; none without nvidia-smi."""
    query = [f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]
    try:
        out = subprocess.run(["nvidia-smi", *query], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def machine(device: str) -> str:
    """What ran the bench: CPU cores, or the cards and driver; Python and package versions."""
    parts = [f"{os.cpu_count()} CPU cores", f"Python {platform.python_version()}"]
    if device == "cuda":
        parts.insert(0, "; ".join(dict.fromkeys(nvidia_smi("name", "driver_version"))))
    for package in ("ray", "torch", "triton"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"no {package}")
    return ", ".join(parts)


def table(rows: list[Figures]) -> list[str]:
    """Markdown rows, the first row the baseline of the gain."""
    lines = [
        "| executor nodes | slots | evaluated | start s | search wall s | evaluations/min "
        "| vs first | per node | load before / after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for f in rows:
        gain = f.per_minute / rows[0].per_minute
        split = " + ".join(map(str, f.per_node))
        lines.append(
            f"| {f.nodes} | {f.slots} | {f.evaluated} | {f.start_s:.1f} | {f.wall_s:.1f} "
            f"| {f.per_minute:.2f} | {gain:.2f}x | {split} | {f.load[0]:.2f} / {f.load[1]:.2f} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--nodes", default="1,2", help="executor node counts to compare")
    parser.add_argument("--budget", type=int, default=9, help="candidates per search")
    parser.add_argument("--per-generation", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--spec", type=Path, default=ROOT / "examples" / "demo")
    parser.add_argument("--op", default="softmax")
    parser.add_argument("--dtype", action="append", default=[], help="repeatable; default all")
    args = parser.parse_args()
    chosen = select(load_problems(args.spec), args.op, args.spec)
    problem = narrow(chosen, args.dtype, [], args.spec)
    print(f"# {problem.name} on {args.device}: {machine(args.device)}", flush=True)
    rows: list[Figures] = []
    with tempfile.TemporaryDirectory() as scratch:
        for i, nodes in enumerate(int(n) for n in args.nodes.split(",")):
            try:
                rows.append(run(args, problem, nodes, Path(scratch) / f"run-{i}"))
            except ClusterError as exc:
                print(f"ray_throughput: error: {exc}", file=sys.stderr)
                return 2
            print(table(rows)[-1], flush=True)
    print("\n".join(table(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
