"""`--executor ray`: a search's evaluations on a real Ray cluster of two nodes on this machine.

On CPU (Triton's interpreter): the demo softmax, narrowed to one dtype, one shape and one trial
so an evaluation takes seconds. Each node has one CPU slot: two evaluations in flight use both.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import ray
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.bundle import pack
from kevolve.harness.search.cluster import RAY_MISSING, ClusterError, connect
from kevolve.harness.search.engine import Evaluator, Search, SearchConfig
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext
from kevolve.harness.search.status import Status
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems, narrow, select
from kevolve.harness.spec.problem import Problem
from kevolve.runners.job import JobSpec, run_job
from ray.cluster_utils import Cluster

from tests.bot.test_optimize_command import make_repo
from tests.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
OPTIONS = EvalOptions(device="cpu", timeout=60, trials=1)
SEED = (DEMO / "demo_kernels" / "softmax.py").read_text()
GOOD = SEED.replace('"""Row softmax', '"""Row softmax (reworded)')
WRONG = SEED.replace("y = num / tl.sum(num, axis=0)", "y = num / (tl.sum(num, axis=0) + 1.0)")
CHEAT = SEED.replace("    n_rows, n_cols = x.shape\n", "    return torch.softmax(x, dim=-1)\n")
BROKEN = SEED.replace("def softmax(x: torch.Tensor)", "def softmax(x: torch.Tensor")
# The first two go through the judge process (seconds each, so both nodes work at once); the
# last two fail a node's static checks at once. Judging CHEAT is where a search is interrupted.
SCRIPT = (GOOD, WRONG, CHEAT, BROKEN)
BUDGET = 1 + len(SCRIPT)


class Script:
    """A proposer that hands out fixed sources in order."""

    name = "script"

    def __init__(self, sources: tuple[str, ...]) -> None:
        self.sources = list(sources)

    def propose(self, ctx: ProposalContext, rng: Any, count: int) -> list[Proposal]:
        taken, self.sources = self.sources[:count], self.sources[count:]
        return [Proposal(s, (), self.name) for s in taken]

    def drain(self) -> Drained:
        return Drained()


class Interrupted(Exception):
    """Stands in for a search killed mid-generation."""


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two Ray nodes of one CPU slot each; ports picked free, so parallel test workers coexist."""
    with ExitStack() as stack:
        stack.callback(ray.shutdown)  # runs last-in first-out: after the cluster is down
        nodes = Cluster(
            initialize_head=True,
            head_node_args={
                "num_cpus": 1,
                "include_dashboard": False,
                "dashboard_agent_listen_port": None,
            },
        )
        stack.callback(nodes.shutdown)
        nodes.add_node(num_cpus=1)
        yield nodes


def softmax(root: Path = DEMO) -> Problem:
    """The demo softmax, checked in float32 at one awkward shape: seconds per evaluation."""
    problem = narrow(select(load_problems(root), "softmax", root), ["float32"], [], root)
    return replace(problem, check_shapes=((3, 17),))


def search(evaluator: Evaluator, state: Path) -> Status:
    """The scripted search, run (or resumed) to its budget with `state`."""
    problem = softmax()
    config = SearchConfig(budget=BUDGET, per_generation=2, parallel=2, seed=7)
    store = Store(state)
    try:
        found = Search(problem, SEED, config, [(Script(SCRIPT), 1.0)], evaluator, store)
        return found.run()
    finally:
        store.close()


def stopping_at(evaluator: Evaluator, source: str) -> Evaluator:
    """`evaluator`, but judging `source` stops the search."""

    def judge(problem: Problem, candidate: str) -> Evaluation:
        if candidate == source:
            raise Interrupted
        return evaluator(problem, candidate)

    return judge


def stored(state: Path) -> dict[str, str]:
    with sqlite3.connect(state) as db:
        return dict(db.execute("SELECT candidate_id, evaluation FROM evaluations").fetchall())


def verdicts(status: Status) -> list[tuple[str, str]]:
    return [(h["candidate"], h["verdict"]) for h in status.history]


def test_a_search_on_two_nodes_judges_as_the_local_one_and_resumes(
    cluster: Cluster, tmp_path: Path
) -> None:
    local = search(lambda p, s: evaluate(p, s, OPTIONS), tmp_path / "local.sqlite")
    assert dict(local.counts) == {"correct": 2, "incorrect": 1, "rejected": 1, "compile_error": 1}

    state = tmp_path / "ray.sqlite"
    with connect(softmax(), OPTIONS, cluster.address) as first:
        assert first.slots == 2
        with pytest.raises(Interrupted):
            search(stopping_at(first, CHEAT), state)
    assert len(first.per_node) == 2, first.per_node  # both nodes judged candidates
    before = stored(state)
    assert 2 <= len(before) < BUDGET  # the seed and what finished before the interruption

    with connect(softmax(), OPTIONS, cluster.address) as second:
        resumed = search(second, state)
    after = stored(state)
    assert {k: after[k] for k in before} == before  # nothing finished was judged again
    assert sum(second.per_node.values()) == BUDGET - len(before)
    assert verdicts(resumed) == verdicts(local)
    assert resumed.counts == local.counts


def test_a_node_without_the_ops_files_unpacks_the_searchs_copy(
    cluster: Cluster, tmp_path: Path
) -> None:
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    (root / "checkout.txt").write_text(str(tmp_path))  # files no other test ships
    problem = softmax(root)
    manifest, _ = pack(root)
    unpacked = Path(tempfile.gettempdir()) / "kevolve-ops" / manifest.digest
    try:
        with connect(problem, OPTIONS, cluster.address) as remote:
            shutil.rmtree(root)  # gone from every node's filesystem after the search shipped it
            ev = remote(problem, SEED)
        assert ev.verdict is Verdict.CORRECT, ev.reason
        assert (unpacked / "checkout.txt").read_text() == str(tmp_path)
    finally:
        shutil.rmtree(unpacked, ignore_errors=True)


def test_a_cuda_search_on_a_cluster_without_gpus_is_refused_and_leaves_it(
    cluster: Cluster,
) -> None:
    with pytest.raises(ClusterError, match="--device cuda needs GPUs, and the Ray cluster has"):
        connect(softmax(), EvalOptions(device="cuda"), cluster.address)
    assert not ray.is_initialized()


def test_a_job_with_executor_ray_runs_its_search_on_the_cluster(
    cluster: Cluster, tmp_path: Path
) -> None:
    spec = JobSpec(
        job_id=1,
        checkout=str(make_repo(tmp_path / "repo")),
        op="double",
        hardware="cpu",
        budget=1,
        state=str(tmp_path / "job.sqlite"),
        cache_dir=str(tmp_path / "cache"),
        device="cpu",
        executor="ray",
        ray_address=cluster.address,
    )
    result = run_job(JobSpec.from_json(spec.to_json()))
    assert result["evaluated"] == 1 and result["counts"] == {"correct": 1}
    assert not ray.is_initialized()  # the job left the cluster it joined


def test_without_ray_the_error_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets when it is missing
    with pytest.raises(ClusterError) as info:
        connect(softmax(), OPTIONS)
    assert str(info.value) == "--executor ray needs Ray: pip install 'kevolve[ray]'" == RAY_MISSING


@pytest.mark.parametrize(
    "address, message",
    [
        ("head-node", "'head-node' is not a Ray cluster address. Fix: give host:port"),
        ("http://head:6379", "'http://head:6379' is not a Ray cluster address"),
        ("head:70000", "'head:70000' is not a Ray cluster address"),
        ("127.0.0.1:{port}", "no Ray cluster answers at 127.0.0.1:{port} (Connection refused)"),
        ("ray://127.0.0.1:{port}", "no Ray cluster answers at ray://127.0.0.1:{port}"),
    ],
)
def test_a_bad_address_is_named_at_once(address: str, message: str) -> None:
    port = free_port()
    with pytest.raises(ClusterError) as info:
        connect(softmax(), OPTIONS, address.format(port=port))
    assert message.format(port=port) in str(info.value)
    assert not ray.is_initialized()


def visible_gpus() -> list[str]:
    """This host's GPUs as CUDA_VISIBLE_DEVICES names them (all of them when it is unset)."""
    listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True)
    count = sum(1 for line in listed.stdout.splitlines() if line.startswith("GPU "))
    names = os.environ.get("CUDA_VISIBLE_DEVICES")
    return [n.strip() for n in names.split(",")] if names else [str(i) for i in range(count)]


@pytest.mark.gpu
def test_a_timed_search_spreads_over_the_gpus_and_locks_each_by_its_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = visible_gpus()[:2]  # two where there are, else one
    problem = narrow(select(load_problems(DEMO), "softmax", DEMO), ["float16"], [], DEMO)
    options = EvalOptions(device="cuda", cache_dir=tmp_path / "cache", rounds=3, calls_per_round=5)
    config = SearchConfig(budget=3, per_generation=2, parallel=2, seed=7, hardware="cuda")
    with ExitStack() as stack:
        stack.callback(ray.shutdown)
        nodes = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False},
        )
        stack.callback(nodes.shutdown)
        for gpu in gpus:  # one node per GPU; its processes inherit the GPU they may see
            with monkeypatch.context() as env:
                env.setenv("CUDA_VISIBLE_DEVICES", gpu)
                nodes.add_node(num_cpus=1, num_gpus=1)
        remote = stack.enter_context(connect(problem, options, nodes.address))
        assert remote.slots == len(gpus)
        store = Store(tmp_path / "state.sqlite")
        stack.callback(store.close)
        status = Search(problem, SEED, config, [(Script((GOOD, WRONG)), 1.0)], remote, store).run()
    assert dict(status.counts) == {"correct": 2, "incorrect": 1}
    assert status.best is not None and status.best.evaluation.timed
    assert status.baseline is not None and status.baseline.timed
    assert len(remote.per_node) == len(gpus)
    # Every task saw its GPU as cuda:0; the locks still name each host GPU it used.
    locks = {p.name for p in (tmp_path / "cache").glob("gpu-*.lock")}
    assert locks == {f"gpu-{gpu}.lock" for gpu in gpus}
