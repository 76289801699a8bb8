"""`RayEvaluator`: one search's evaluations spread over a Ray cluster, one GPU (or CPU slot) each.

Each evaluation is a Ray task that runs the harness's own `evaluate` on its node, so the sandboxed
judge process and the per-host GPU lock work there exactly as on one machine. The verdict comes
back as data and the search stores it in its own process, so resuming is unchanged. The op's
files travel once per search through the object store; a node unpacks them only when its copy at
the same path is missing or differs.
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import re
import socket
import tempfile
import threading
from collections import Counter
from dataclasses import replace
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from kevolve.harness.evaluate import EvalOptions, HarnessError, evaluate
from kevolve.harness.evaluation import Evaluation, evaluation_from_dict
from kevolve.harness.search.bundle import BundleError, Manifest, pack, present, unpack
from kevolve.harness.spec.problem import Problem

EXECUTORS = ("local", "ray")  # where a search's evaluations run: this machine, or Ray tasks
RAY_MISSING = "--executor ray needs Ray: pip install 'kevolve[ray]'"
CONNECT_TIMEOUT_S = 5.0
_ADDRESS = re.compile(r"(?:ray://)?(?P<host>[\w.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})")

log = logging.getLogger(__name__)


class ClusterError(Exception):
    """The Ray cluster cannot be used as asked: names what is wrong and how to fix it."""


def parse_address(text: str | None) -> tuple[str, int] | None:
    """Host and port of a `host:port` or `ray://host:port` address; None for "auto" or none."""
    if text is None or text == "auto":
        return None
    found = _ADDRESS.fullmatch(text)
    if found is None or not 0 < int(found["port"]) < 65536:
        raise ClusterError(
            f"{text!r} is not a Ray cluster address. Fix: give host:port (the head node's GCS "
            f"port), ray://host:port (Ray Client) or auto (the cluster this machine joined)"
        )
    return found["host"].strip("[]"), int(found["port"])


def connect(problem: Problem, options: EvalOptions, address: str | None = None) -> RayEvaluator:
    """An evaluator on the Ray cluster at `address`.

    None means Ray's own default: $RAY_ADDRESS or the cluster this machine last started (`ray
    start`), else a new one on this machine that lives as long as the evaluator.
    """
    ray = _ray()
    target = parse_address(address)
    if target is not None:
        _reachable(str(address), *target)
    owns = not ray.is_initialized()  # a caller that joined a cluster itself keeps it
    if owns:
        _init(ray, address)
    try:
        return RayEvaluator(ray, problem, options, owns)
    except BaseException:
        if owns:
            ray.shutdown()
        raise


class RayEvaluator:
    """An `Evaluator` that judges each candidate in a Ray task; `slots` tasks can run at once."""

    def __init__(self, ray: ModuleType, problem: Problem, options: EvalOptions, owns: bool) -> None:
        self._ray, self._owns = ray, owns
        device, resources, self.slots = _placement(options.device, ray.cluster_resources())
        self._options = replace(options, device=device)  # a task sees its one GPU as cuda:0
        try:
            self._manifest, data = pack(problem.root)
        except BundleError as exc:
            raise ClusterError(str(exc)) from None
        self._bundle = ray.put(data)
        self._task = ray.remote(max_retries=2, **resources)(_evaluate_on_node)
        self._lock = threading.Lock()
        self.per_node: Counter[str] = Counter()  # evaluations judged on each node, by node id
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        log.info("Ray: %d node(s), %d %s slot(s)", nodes, self.slots, device)

    def __call__(self, problem: Problem, source: str) -> Evaluation:
        """The verdict on `source`, judged on whichever node has a free slot."""
        if problem.root != self._manifest.root:
            raise ValueError(f"this evaluator ships {self._manifest.root}, not {problem.root}")
        ref = self._task.remote(problem, source, self._options, self._manifest, [self._bundle])
        try:
            node, data = self._ray.get(ref)
        except self._ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, HarnessError):
                raise cause from None  # the judge itself failed: the same error as on one machine
            cause = cause or exc
            first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise ClusterError(
                f"the Ray cluster lost an evaluation: {first}. Fix: check the cluster "
                f"(`ray status`), then run the same command again: the search resumes"
            ) from None
        with self._lock:
            self.per_node[node] += 1
        return evaluation_from_dict(data)

    def close(self) -> None:
        """Leave the cluster (and stop it, when this evaluator started it)."""
        if self._owns:
            self._ray.shutdown()

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _ray() -> ModuleType:
    """The `ray` package, or a `ClusterError` that says how to install it."""
    # Ray is an optional extra, so it is imported here, once a search asks for it, rather than at
    # the top: kevolve without Ray still imports this module, and a missing Ray is one line of
    # error, never a traceback.
    try:
        return importlib.import_module("ray")
    except ImportError as exc:
        why = "" if exc.name == "ray" else f" (importing it failed: {exc})"
        raise ClusterError(RAY_MISSING + why) from None


def _reachable(address: str, host: str, port: int) -> None:
    """Fail fast when nothing listens at the address (Ray itself would retry for minutes)."""
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterError(
            f"no Ray cluster answers at {address} ({exc.strerror or exc}). Fix: start one "
            f"(`ray start --head` on its head node) and pass the address it prints, or leave "
            f"the address out to use Ray on this machine"
        ) from None


def _init(ray: ModuleType, address: str | None) -> None:
    """Join the cluster at `address`, or start one on this machine when there is none."""
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    if address is None:
        quiet["include_dashboard"] = False
    try:
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError, SystemExit) as exc:
        # SystemExit: how Ray ends a driver whose cluster stopped answering.
        where = address or "this machine"
        raise ClusterError(
            f"cannot join a Ray cluster at {where}: {exc}. Fix: check the address and that the "
            f"cluster runs (`ray status` on its head node)"
        ) from None


def _placement(device: str, resources: dict[str, float]) -> tuple[str, dict[str, float], int]:
    """The device a task judges on, the resources it asks for, and how many fit the cluster."""
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 0))
    if device.startswith("cuda") or (device == "auto" and gpus > 0):
        if gpus < 1:
            raise ClusterError(
                f"--device {device} needs GPUs, and the Ray cluster has none. Fix: add GPU "
                f"nodes, or pass --device cpu"
            )
        return "cuda", {"num_gpus": 1, "num_cpus": 1}, gpus
    if cpus < 1:
        raise ClusterError("the Ray cluster has no CPU slots. Fix: give its nodes --num-cpus 1+")
    return "cpu", {"num_cpus": 1}, cpus


# A Ray worker process serves many tasks of one search: check the node's copy of the files once.
_present = functools.lru_cache(maxsize=32)(present)


def _evaluate_on_node(
    problem: Problem, source: str, options: EvalOptions, manifest: Manifest, bundle: list[Any]
) -> tuple[str, dict[str, Any]]:
    """On a Ray worker: this node's id and the harness's verdict, judged from local files."""
    ray = _ray()
    if not _present(manifest):
        # The bundle arrives wrapped in a list so that Ray fetches it only here, when it is needed.
        ops = Path(tempfile.gettempdir()) / "kevolve-ops"
        problem = _moved(problem, unpack(ray.get(bundle[0]), manifest, ops))
    options = replace(options, cache_dir=_writable(options.cache_dir))
    node: str = ray.get_runtime_context().get_node_id()
    return node, evaluate(problem, source, options).to_dict()


def _moved(problem: Problem, root: Path) -> Problem:
    """The problem with its files read from `root` instead."""
    source = problem.source
    if source is not None and source.is_relative_to(problem.root):
        source = root / source.relative_to(problem.root)
    return replace(problem, root=root, source=source)


def _writable(path: Path | None) -> Path | None:
    """`path` when this node can write there, else a directory of this node's own.

    It holds the GPU locks and measured ceilings of one host, so every task on a node must agree
    on it: the caller's path where it works, the same fallback everywhere else.
    """
    if path is None:
        return None
    try:
        path.mkdir(parents=True, exist_ok=True)
        if os.access(path, os.W_OK):
            return path
    except OSError:
        pass
    return Path(tempfile.gettempdir()) / "kevolve-cache"
