"""`Contender`: the candidate's worker as the judge drives it, from start to a fresh start.

The worker is started and loaded holding no GPU lock, and compiles each case's kernels ahead of
the GPU hold (see `precompile`), so compiles never keep a timer waiting. After a check yields the
GPU to a waiting timer (see `preemption`) its worker is dead; `restart` starts, loads and
compiles ahead again, still outside the hold, and Triton's on-disk cache (the worker's own,
which lives as long as the evaluation) makes the second compile quick.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from kevolve.harness.judge.budget import Budgets, Case
from kevolve.harness.judge.client import WorkerClient
from kevolve.harness.judge.phases import PhaseLog
from kevolve.harness.judge.session import Session
from kevolve.harness.sandbox.spawn import Limits, clean_env
from kevolve.harness.spec.problem import Shape, problem_to_dict

NOTE_CHARS = 300


class Contender:
    """The running worker of one evaluation's candidate."""

    def __init__(self, session: Session, budgets: Budgets, log: PhaseLog) -> None:
        self.session = session
        self.budgets = budgets
        self.log = log
        self.worker = self._start()
        self._noted_stop = False

    def load(self) -> None:
        """Import the candidate in the worker."""
        with self.log.phase("load"):
            self.worker.request(self._load_request(), "loading the candidate", self.timeout)

    def compile_ahead(self, case: Case) -> None:
        """Compile the case's kernels, holding no GPU lock; a hang here is a timeout verdict."""
        shape, dtype = case
        budget = self.budgets.ahead()
        request = {"op": "compile", "shape": list(shape), "dtype": dtype}
        what = f"compiling the candidate's kernels for {case_label(shape, dtype)} ahead of the hold"
        with self.log.phase("ahead"):
            reply, _ = self.worker.request(request, what, budget.seconds, budget.why)
        stopped = reply.get("stopped")
        if stopped is None:
            configs = reply.get("tune_configs")
            self.budgets.compiled_ahead(case, configs if isinstance(configs, int) else 0)
        elif not self._noted_stop:
            self._noted_stop = True
            self.session.ev.notes.append(
                f"compiling ahead of the GPU hold stopped early on {case_label(shape, dtype)} "
                f"({str(stopped)[:NOTE_CHARS]}); what was left compiled under the hold"
            )

    def restart(self, case: Case) -> None:
        """A fresh worker, loaded and compiled ahead for `case`, after the last one was killed."""
        self.worker.close()
        self.worker = self._start()
        self.load()
        self.compile_ahead(case)

    def close(self) -> None:
        """Stop the worker."""
        self.worker.close()

    @property
    def timeout(self) -> float:
        return self.session.req.timeout

    def _start(self) -> WorkerClient:
        device = self.session.device
        return WorkerClient(
            _worker_env(device), self.session.req.candidate.parent, _worker_limits(device)
        )

    def _load_request(self) -> dict[str, Any]:
        return {
            "op": "load",
            "problem": problem_to_dict(self.session.problem),
            "path": str(self.session.req.candidate),
            "device": str(self.session.device),
            "init_seed": self.session.req.base_seed,
        }


def case_label(shape: Shape, dtype: str) -> str:
    """A case as verdicts name it: "shape 16x4096 float32"."""
    return f"shape {'x'.join(map(str, shape)) or 'as given'} {dtype}"


def _worker_env(device: torch.device) -> dict[str, str]:
    """The worker's whole environment: no secrets, its own caches, the interpreter on CPU."""
    extra = {
        "HOME": "/nonexistent",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "TRITON_CACHE_DIR": "triton-cache",
        # Autotuning results on disk too, so that a worker started again after a yield does not
        # benchmark again what its predecessor finished.
        "TRITON_CACHE_AUTOTUNING": "1",
    }
    if device.type != "cuda":
        extra["TRITON_INTERPRET"] = "1"
    return clean_env(extra, os.environ)


def _worker_limits(device: torch.device) -> Limits:
    """Limits for the worker; the address-space cap only where CUDA is not in use."""
    return Limits(address_space_bytes=None if device.type == "cuda" else 8 * 2**30)
