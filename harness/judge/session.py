"""What the judge's phases share for one evaluation: the request, the record, the reference.

The judge (`verdict.Judge`) opens one `Session` and hands it to the benchmark, so the two share
the request and the evaluation being written without reaching into each other. The session also
keeps the memory plan: the float64 reference in row chunks where a whole one would be large
(`harness.judge.chunked`), and a verdict before anything is allocated for a case that cannot fit
the device at all (`harness.judge.footprint`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from kevolve.harness.evaluation import CallBudget, CompileMode, Evaluation, Verdict
from kevolve.harness.judge.chunked import CHUNK_BYTES, ChunkedReference, RowPlan, plan_rows
from kevolve.harness.judge.compare import DEFAULT_TOLERANCES, compare_outputs
from kevolve.harness.judge.footprint import capacity, footprint, misfit
from kevolve.harness.judge.hardware import fingerprint
from kevolve.harness.judge.inputs import InputMaker, upcast
from kevolve.harness.judge.pieces import PIECE_ELEMENTS
from kevolve.harness.judge.rotation import TIMING_INPUT_BYTES
from kevolve.harness.judge.subject import Failure, Subject
from kevolve.harness.spec.problem import Problem, Shape, problem_from_dict


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
    budget: CallBudget = field(default_factory=CallBudget)  # how long a call may run
    chunk_bytes: int = CHUNK_BYTES  # float64 bytes of a reference chunk (chunked.py)
    piece_elements: int = PIECE_ELEMENTS  # elements a digest or comparison reads at once

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
            budget=CallBudget.from_dict(d.get("budget", {})),
            chunk_bytes=max(1, int(d.get("chunk_bytes", CHUNK_BYTES))),
            piece_elements=max(1, int(d.get("piece_elements", PIECE_ELEMENTS))),
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

    def references(
        self, inputs: list[object]
    ) -> tuple[list[torch.Tensor] | ChunkedReference, list[torch.Tensor]]:
        """The reference in float64 (the answer) and in float32 (PyTorch's working precision).

        The float64 answer comes whole where it is small, else as a `ChunkedReference` that
        computes it a few rows at a time, once the first and the last chunk in float32 have
        matched the whole float32 answer (a reference that mixes rows cannot be cut).
        """
        working = self.reference.reference_outputs(upcast(inputs, torch.float32), "float32")
        plan = plan_rows(inputs, working, self.req.chunk_bytes)
        if plan is None or not self._cuts_cleanly(plan, inputs, working):
            return self.reference.reference_outputs(upcast(inputs), "float64"), working
        shapes = [tuple(w.shape) for w in working]
        return ChunkedReference(shapes, plan.spans, self._exact_rows(plan, inputs)), working

    def check_fit(self, shape: Shape, dtype: str) -> None:
        """Raise a `Failure` naming the GiB a case needs and the largest size that fits where it
        cannot fit the device at all; estimated from sizes alone, before anything is allocated."""
        sizes = self._input_sizes(shape, dtype)
        if sizes is None:
            return
        fp = footprint(
            sizes,
            self._output_sizes(sizes, dtype),
            timed=self.device.type == "cuda" and self.req.time,
            chunk_bytes=self.req.chunk_bytes,
            timing_bytes=TIMING_INPUT_BYTES,
        )
        why = misfit(fp, capacity(self.device))
        if why is not None:
            case = "x".join(map(str, shape)) or "as given"
            raise Failure(Verdict.RUNTIME_ERROR, f"shape {case} {dtype}: {why}")

    def _input_sizes(self, shape: Shape, dtype: str) -> list[object] | None:
        """The case's inputs as meta tensors, or None where the input maker cannot make them."""
        try:
            return self.maker.sizes(shape, dtype)
        except Exception:  # noqa: BLE001 - a maker that needs real data: no estimate, no verdict
            return None

    def _output_sizes(self, inputs: list[object], dtype: str) -> list[torch.Tensor] | None:
        """The reference's outputs on meta inputs (sizes only), or None where it cannot say."""
        try:
            meta = _reference(self.problem, torch.device("meta"), self.req.base_seed, "_meta")
            return meta.reference_outputs(inputs, dtype)
        except Exception:  # noqa: BLE001 - an op without a meta kernel: estimate without outputs
            return None

    def _cuts_cleanly(
        self, plan: RowPlan, inputs: list[object], working: Sequence[torch.Tensor]
    ) -> bool:
        """Whether the first and the last chunk of rows, computed alone in float32, match the
        same rows of the whole float32 answer."""
        tol = DEFAULT_TOLERANCES["float32"]
        for start, stop in dict.fromkeys([plan.spans[0], plan.spans[-1]]):
            rows = upcast(plan.slice(inputs, start, stop), torch.float32)
            try:
                alone = self.reference.reference_outputs(rows, "float32")
            except Exception:  # noqa: BLE001 - rows cut that it needs whole (a square matmul's B)
                return False
            whole = [w[start:stop] for w in working]
            if [tuple(a.shape) for a in alone] != [tuple(w.shape) for w in whole]:
                return False
            dtypes = [w.dtype for w in whole]
            if not compare_outputs(alone, whole, dtypes, tol, None, self.req.piece_elements).passed:
                return False
        return True

    def _exact_rows(
        self, plan: RowPlan, inputs: list[object]
    ) -> Callable[[int, int], list[torch.Tensor]]:
        """A function of (start, stop): the float64 reference of those rows."""

        def rows(start: int, stop: int) -> list[torch.Tensor]:
            chunk = upcast(plan.slice(inputs, start, stop))
            return self.reference.reference_outputs(chunk, "float64")

        return rows


def _reference(problem: Problem, device: torch.device, init_seed: int, tag: str = "") -> Subject:
    """The reference implementation as a callable subject."""
    path = problem.path(problem.reference)
    name = problem.reference.split(":", 1)[1]
    return Subject(problem, path, name, f"_kevolve_reference{tag}", device, init_seed)


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
