"""What the judge's phases share for one evaluation: the request, the record, the reference.

The judge (`verdict.Judge`) opens one `Session` and hands it to the benchmark, so the two share
the request and the evaluation being written without reaching into each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from kevolve.harness.evaluation import CompileMode, Evaluation, Verdict
from kevolve.harness.judge.hardware import fingerprint
from kevolve.harness.judge.inputs import InputMaker, upcast
from kevolve.harness.judge.subject import Subject
from kevolve.harness.spec.problem import Problem, problem_from_dict


@dataclass(frozen=True)
class JudgeRequest:
    """What to judge and how; built by `harness.evaluate` and sent as JSON."""

    problem: Problem
    candidate: Path
    device: str
    timeout: float
    trials: int
    base_seed: int
    secret_seed: int
    time: bool
    cache_dir: Path | None
    rounds: int
    calls_per_round: int
    compile_modes: tuple[CompileMode, ...] = ()  # torch.compile arms to time beside eager

    @staticmethod
    def from_dict(d: dict[str, Any]) -> JudgeRequest:
        """Parse the request the orchestrator sent."""
        return JudgeRequest(
            problem=problem_from_dict(d["problem"]),
            candidate=Path(d["candidate"]),
            device=_resolve_device(d["device"]),
            timeout=float(d["timeout"]),
            trials=int(d["trials"]),
            base_seed=int(d["base_seed"]),
            secret_seed=int(d["secret_seed"]),
            time=bool(d["time"]),
            cache_dir=Path(d["cache_dir"]) if d.get("cache_dir") else None,
            rounds=int(d["rounds"]),
            calls_per_round=int(d["calls_per_round"]),
            compile_modes=tuple(CompileMode(m) for m in d.get("compile_modes", [])),
        )


@dataclass
class Session:
    """One evaluation's shared state: its request, the record being written, the reference."""

    req: JudgeRequest
    device: torch.device
    ev: Evaluation
    reference: Subject
    maker: InputMaker
    launched: set[str] = field(default_factory=set)  # kernel names the candidate launched

    @staticmethod
    def open(req: JudgeRequest) -> Session:
        """A session for `req`: its device, an evaluation presumed correct, the reference."""
        device = torch.device(req.device)
        problem = req.problem
        return Session(
            req=req,
            device=device,
            ev=Evaluation(
                verdict=Verdict.CORRECT,
                reason="",
                problem=problem.name,
                device=device.type,
                # On a GPU the benchmark takes it (nvidia-smi is slow): a failed candidate skips it.
                hardware=None if device.type == "cuda" else fingerprint(device),
                dims=list(problem.dims),
            ),
            reference=_reference(problem, device, req.base_seed),
            maker=InputMaker(problem, device),
        )

    @property
    def problem(self) -> Problem:
        return self.req.problem

    def references(self, inputs: list[object]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The reference in float64 (the answer) and in float32 (PyTorch's working precision)."""
        exact = self.reference.reference_outputs(upcast(inputs), "float64")
        working = self.reference.reference_outputs(upcast(inputs, torch.float32), "float32")
        return exact, working


def _reference(problem: Problem, device: torch.device, init_seed: int) -> Subject:
    """The reference implementation as a callable subject."""
    path = problem.path(problem.reference)
    return Subject(
        problem, path, problem.reference.split(":", 1)[1], "_kevolve_reference", device, init_seed
    )


def _resolve_device(name: str) -> str:
    """ "auto" becomes the first GPU when there is one, else the CPU (Triton's interpreter)."""
    if name == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {name!r} was asked for but no CUDA GPU is visible; "
            f"use --device cpu (Triton's interpreter) or run on a GPU host"
        )
    return "cuda:0" if name == "cuda" else name
