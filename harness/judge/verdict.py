"""The judge: the trusted process that decides one candidate's verdict.

`python -m kevolve.harness.judge RESULT_FD` reads a request (JSON) on stdin and writes one
`Evaluation` (JSON) to RESULT_FD. It generates inputs, computes references in float64, compares,
and times the baseline; the candidate only ever runs in a confined worker that it drives.

Order, so that no one waits on this candidate: the worker loads and compiles each case's kernels
holding no GPU lock; then each trial runs under a shared hold, killed past its budget (see
`budget`) and stopped early when a timer has waited too long for it (see `preemption`); timing
takes the GPU alone. Every wait for a hold is kept in the phases (see `phases`).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from functools import partial
from typing import Any

import torch
from kevolve.harness.evaluation import (
    AppliedTolerance,
    CaseCheck,
    Diagnostic,
    Evaluation,
    KernelInfo,
    Verdict,
)
from kevolve.harness.judge.benchmark import Benchmark
from kevolve.harness.judge.budget import Budgets, Case
from kevolve.harness.judge.client import Preempted
from kevolve.harness.judge.compare import compare_outputs, tolerance_for
from kevolve.harness.judge.conditioning import second_opinion
from kevolve.harness.judge.contender import Contender, case_label
from kevolve.harness.judge.gpulock import CPU, SharedHold, exclusive_gpu, host_gpu, shared_gpu
from kevolve.harness.judge.inputs import Trial, clone_all, trials
from kevolve.harness.judge.phases import PhaseLog
from kevolve.harness.judge.preemption import Preemption
from kevolve.harness.judge.session import JudgeRequest, Session
from kevolve.harness.judge.subject import Failure
from kevolve.harness.judge.wire import WireError, decode
from kevolve.harness.spec.problem import Shape


class Judge:
    """Runs the phases of one evaluation and collects their findings."""

    def __init__(self, req: JudgeRequest) -> None:
        self.session = Session.open(req)
        self.req = req
        self.problem = req.problem
        self.device = self.session.device
        on_gpu = self.device.type == "cuda"
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        self.gpu = host_gpu(self.device.index or 0, visible) if on_gpu else CPU
        self.ev = self.session.ev
        self.log = PhaseLog(self.ev.phases)
        self.budgets = Budgets(req.budget, req.timeout, interpreter=not on_gpu)
        self.preemption = Preemption(req.budget.grace_s, req.budget.preemptions)
        self.output_dtypes: dict[tuple[Shape, str], list[torch.dtype]] = {}

    def run(self) -> Evaluation:
        """The evaluation, with a verdict and a reason a person can act on."""
        self.contender = Contender(self.session, self.budgets, self.log)
        try:
            self.contender.load()
            with self.log.phase("check"):
                for shape, dtype in self._cases():
                    self._check_case(shape, dtype)
            self._finish()
        except Failure as f:
            self.ev.verdict, self.ev.reason = f.verdict, f.message
            self.ev.diagnostics.append(Diagnostic(_kind(f.verdict), f.message, f.line))
        finally:
            self.contender.close()
            note = self.preemption.note()
            if note:
                self.ev.notes.append(note)
                self.log.add("preempted", self.preemption.lost_s)
            self.ev.phases = {k: round(v, 3) for k, v in self.ev.phases.items()}
        return self.ev

    def _finish(self) -> None:
        """Kernel figures, then timing on a GPU or the plain statement that nothing was timed."""
        worker = self.contender.worker
        reply, _ = worker.request({"op": "kernels"}, "reading kernel figures", self.req.timeout)
        self.ev.kernels = [KernelInfo(**k) for k in reply["kernels"]]
        if self.device.type == "cuda":
            self._note_memory("check", reply)
        if self.device.type == "cuda" and self.req.time:
            bench = Benchmark(self.session, worker, self.budgets)
            with self.log.phase("prepare"):
                profiled = (self.problem.shapes[0], self.problem.dtypes[0])
                self._held("prepare_wait", profiled, partial(self._prepare, bench))
            gpu = exclusive_gpu(self.req.cache_dir, self.gpu)
            with self.log.waited("wait", gpu), self.log.phase("time"):
                bench.run()
            with self.log.waited("recheck_wait", self._shared_gpu()), self.log.phase("recheck"):
                bench.finish()
            worker = self.contender.worker  # a fresh one, if preparing yielded
            reply, _ = worker.request({"op": "kernels"}, "reading memory figures", 60.0)
            self._note_memory("peak", reply)
            self.ev.timed = True
            self.ev.reason = "correct on every case; timed against the baseline"
        else:
            why = "no CUDA device" if self.device.type != "cuda" else "timing was not requested"
            self.ev.notes.append(f"{why}: correctness was checked, nothing was timed")
            self.ev.reason = f"correct on every case; nothing was timed ({why})"

    def _note_memory(self, key: str, reply: dict[str, Any]) -> None:
        """The GPU memory the judge and the worker reserved at most so far, for the search to
        size how many evaluations share the GPU (the worker's figure is its own word: capped)."""
        total = torch.cuda.get_device_properties(self.device).total_memory
        worker = reply.get("memory_peak")
        worker = min(max(worker, 0), total) if isinstance(worker, int) else 0
        self.ev.memory["device_total"] = total
        self.ev.memory[key] = torch.cuda.max_memory_reserved(self.device) + worker

    def _cases(self) -> list[tuple[Shape, str]]:
        """Every (shape, dtype) to check: small awkward shapes always, production ones on a GPU."""
        shapes = list(self.problem.check_shapes)
        if self.device.type == "cuda" or not shapes:
            shapes += [s for s in self.problem.shapes if s not in shapes]
        return [(s, d) for s in shapes for d in self.problem.dtypes]

    def _check_case(self, shape: Shape, dtype: str) -> None:
        """All trials of one case, its kernels compiled first; `Failure` on the first wrong one."""
        self.session.check_fit(shape, dtype)  # a case too large for the device: before any of it
        self.contender.compile_ahead((shape, dtype))
        tol = tolerance_for(dtype, self.problem.tolerances)
        case = CaseCheck(
            shape=list(shape),
            dtype=dtype,
            trials=0,
            passed=False,
            tolerance=AppliedTolerance(rtol=tol.rtol, atol=tol.atol, norm=tol.norm),
        )
        self.ev.checks.append(case)
        seed = self.req.base_seed + 1000 * len(self.ev.checks)
        for i, trial in enumerate(trials(self.req.trials, seed, self.req.secret_seed + seed)):
            self._held(
                "check_wait", (shape, dtype), partial(self._check_trial, case, trial, i == 0)
            )
            case.trials += 1
        case.passed = True

    def _held(
        self, wait: str, case: Case, step: Callable[[Callable[[], bool] | None], None]
    ) -> None:
        """`step` under a shared hold, given the test that says when to yield it to a timer; after
        a yield, again (with a fresh worker for `case`) once the hold is back."""
        while True:
            try:
                with self.log.waited(wait, self._shared_gpu()) as hold:
                    step(self.preemption.watch(hold))
                return
            except Preempted as stop:
                self.preemption.yielded(stop.ran_s)
                self.contender.restart(case)  # holding nothing

    def _prepare(self, bench: Benchmark, yield_to: Callable[[], bool] | None) -> None:
        bench.worker = self.contender.worker  # a fresh one after a yield
        bench.prepare(yield_to)

    def _check_trial(
        self, case: CaseCheck, trial: Trial, first: bool, yield_to: Callable[[], bool] | None
    ) -> None:
        """One trial: the candidate runs while the reference is computed, then is judged. The
        first trial of a case runs twice, to catch nondeterminism."""
        shape, dtype = tuple(case.shape), case.dtype
        worker, repeat = self.contender.worker, 2 if first else 1
        request = {"op": "run", "shape": case.shape, "dtype": dtype, "trial": vars(trial)}
        worker.send({**request, "repeat": repeat})
        with self.log.phase("reference"):
            started = time.perf_counter()
            inputs = self.session.maker(shape, dtype, trial)
            expected, working = self.session.references(inputs)
            dtypes = self._output_dtypes(inputs, shape, dtype)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            reply_bytes = sum(w.numel() * d.itemsize for w, d in zip(working, dtypes, strict=False))
            self.budgets.observe((shape, dtype), time.perf_counter() - started, reply_bytes)
        budget = self.budgets.returning(
            self.budgets.calls((shape, dtype), repeat, first), (shape, dtype)
        )
        with self.log.phase("reply"):
            header, blobs = worker.receive(
                f"the candidate on {case_label(shape, dtype)}", budget.seconds, budget.why, yield_to
            )
        with self.log.phase("compare"):
            outputs, reports, repeat_diff = _decode_reply(header, blobs, self.device)
            self._judge_run(case, reports[0])
            tol = tolerance_for(dtype, self.problem.tolerances)
            result = compare_outputs(outputs, expected, dtypes, tol, working)
            where = (
                f"{case_label(shape, dtype)}, trial {case.trials + 1} ({trial.distribution} inputs)"
            )
            opinion = second_opinion(result, expected, dtypes, tol, working)
            if opinion is not None and opinion.passed:
                self.ev.notes.append(opinion.note(where, result))
                result = replace(result, passed=True, failure=None, first_indices=[])
            _merge(case, result)
            if not result.passed:
                raise Failure(Verdict.INCORRECT, f"{where}: {result.failure}")
            for report in reports[1:]:
                self._judge_run(case, report)
            if repeat_diff is not None:
                self._nondeterministic(shape, dtype, repeat_diff)

    def _output_dtypes(self, inputs: list[object], shape: Shape, dtype: str) -> list[torch.dtype]:
        """The dtypes outputs must have: the reference's at native precision (once per case)."""
        key = (shape, dtype)
        if key not in self.output_dtypes:
            outputs = self.session.reference(clone_all(inputs), dtype)
            self.output_dtypes[key] = [o.dtype for o in outputs if isinstance(o, torch.Tensor)]
        return self.output_dtypes[key]

    def _judge_run(self, case: CaseCheck, report: dict[str, Any]) -> None:
        """Reject PyTorch compute and missing launches; fail modified inputs, as the worker saw."""
        where = case_label(tuple(case.shape), case.dtype)
        forbidden = report.get("forbidden") or {}
        if forbidden:
            ops = ", ".join(sorted(forbidden))
            raise Failure(
                Verdict.REJECTED,
                f"on {where} the candidate computed with PyTorch ops "
                f"({ops}) instead of its own kernel; tensor operators and torch "
                f"functions may only allocate, view or copy — compute in a Triton kernel",
            )
        launches = report.get("launches") or {}
        if not launches:
            raise Failure(
                Verdict.REJECTED,
                f"on {where} no Triton kernel of the candidate ran; "
                f"the entry must launch a @triton.jit kernel defined in its module",
            )
        self.session.launched.update(launches)
        changed = report.get("inputs_changed")
        if changed is not None:
            raise Failure(
                Verdict.INCORRECT,
                f"{where}: the candidate modified its inputs "
                f"({changed}); write results only to new output tensors",
            )

    def _nondeterministic(self, shape: Shape, dtype: str, diff: str) -> None:
        """Fail a candidate whose two runs on identical inputs did not agree bit for bit."""
        raise Failure(
            Verdict.INCORRECT,
            f"{case_label(shape, dtype)}: two runs on identical "
            f"inputs differ ({diff}); the kernel is nondeterministic (races, "
            f"atomics in varying order, or state kept between calls)",
        )

    def _shared_gpu(self) -> AbstractContextManager[SharedHold]:
        """A shared hold on the GPU for one step of checking (on the CPU, a lock named "cpu",
        which no timer ever takes: checks there run as on a GPU, and tests can watch them)."""
        return shared_gpu(self.req.cache_dir, self.gpu)


def _decode_reply(
    header: dict[str, Any], blobs: list[bytearray], device: torch.device
) -> tuple[list[object], list[dict[str, Any]], str | None]:
    """The first run's outputs, each run's report, and how a repeat differed (None: it did not)."""
    reports = header.get("runs")
    diff = header.get("repeat_diff")
    if (
        not isinstance(reports, list)
        or not reports
        or not all(isinstance(r, dict) for r in reports)
        or not isinstance(diff, str | None)
    ):
        raise WireError(f"malformed run reply {str(header)[:200]!r}")
    return decode(header.get("outputs", []), blobs, device), reports, diff


def _merge(case: CaseCheck, result: Any) -> None:
    """Keep the worst figures over the trials in the case record."""
    case.max_abs = max(case.max_abs, result.max_abs)
    case.max_rel = max(case.max_rel, result.max_rel)
    case.rel_norm = max(case.rel_norm, result.rel_norm)
    case.elements = result.elements
    if not result.passed:
        case.mismatches = result.mismatches
        case.first_indices = result.first_indices
        case.failure = result.failure


def _kind(verdict: Verdict) -> str:
    return {
        Verdict.COMPILE_ERROR: "compile",
        Verdict.INCORRECT: "mismatch",
        Verdict.REJECTED: "static",
    }.get(verdict, "runtime")


def main() -> None:
    """Entry point: one request on stdin, one evaluation (or an error) on the result fd."""
    out = os.fdopen(int(sys.argv[1]), "w")
    try:
        req = JudgeRequest.from_dict(json.load(sys.stdin))
        result: dict[str, Any] = Judge(req).run().to_dict()
    except Exception as exc:  # noqa: BLE001 - trusted code failed: report it, not a verdict
        result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        # Out of GPU memory in the judge means too much else ran on the GPU: worth a retry.
        result["out_of_memory"] = isinstance(exc, torch.cuda.OutOfMemoryError)
    json.dump(result, out)
    out.close()


if __name__ == "__main__":
    main()
