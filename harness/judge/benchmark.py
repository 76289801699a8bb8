"""Timing a correct candidate against the baseline on the GPU, in alternating rounds.

The candidate is timed in its worker and the baseline (and the eager reference, and the
reference under torch.compile when the request asks) in the judge, round after round on the same
GPU so that clock and thermal drift hit them alike. Every timed call gets fresh input content, a
flushed L2 and a whole-device synchronize. The last candidate outputs stay in the worker until
the exclusive hold is released (`finish`); then they cross to the judge and are checked against
the reference again, and the roofline figures are computed, so the hold covers the timed calls
alone. The candidate's requests have budgets from the checks (see `budget`), so a candidate that
hangs only when timed holds the GPU for its budget, not the evaluation's timeout.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from kevolve.harness.evaluation import CaseTiming, Verdict
from kevolve.harness.judge.budget import Budgets
from kevolve.harness.judge.compare import compare_outputs, tolerance_for
from kevolve.harness.judge.compiled import CompiledReference
from kevolve.harness.judge.hardware import Ceilings, cached_ceilings, fingerprint
from kevolve.harness.judge.inputs import Trial, load_attr
from kevolve.harness.judge.stats import median, paired_speedup_ci, summarize
from kevolve.harness.judge.subject import Failure, Subject
from kevolve.harness.judge.timing import Timer, TimingConfig
from kevolve.harness.judge.wire import decode
from kevolve.harness.judge.worker import time_subject
from kevolve.harness.spec.problem import ProblemKind, Shape

if TYPE_CHECKING:
    from kevolve.harness.judge.client import Reply, WorkerClient
    from kevolve.harness.judge.session import Session

# Kernels a launcher may cause besides its own: allocation fills and copies.
_HARMLESS_KERNEL = re.compile(r"fill|copy|memset|memcpy", re.IGNORECASE)
ROOFLINE_SLACK = 1.05  # measured ceilings carry a few percent of noise
PROFILER_START_S = 30.0  # the profiler's own start-up (CUPTI), on top of the profiled calls


class Benchmark:
    """Times every production case and records speedups, roofline fractions and flags."""

    def __init__(self, session: Session, worker: WorkerClient, budgets: Budgets) -> None:
        self.session = session
        self.worker = worker
        self.budgets = budgets
        self.problem = session.problem
        self.device = session.device
        self.timer = Timer(self.device, TimingConfig())
        self.rng = random.Random(session.req.base_seed)
        self.baseline = self._baseline()
        self.ceilings: Ceilings | None = None
        self.compiled = [
            CompiledReference(session.reference, mode) for mode in session.req.compile_modes
        ]
        # Timed cases whose last outputs, kept by the worker, wait to be checked again.
        self.pending: list[CaseTiming] = []

    def prepare(self, yield_to: Callable[[], bool] | None = None) -> None:
        """Everything before timing that needs no GPU to itself: the fingerprint and ceilings,
        the profiler's look at the candidate's kernels, and one call of the baseline and the
        reference on each case (and the compiled reference's first call, which compiles it), so
        their compiles and first-call costs stay out of the timing hold. Run under a shared
        hold, like a check; the wait for the profiled calls yields as a check's does
        (`client.Preempted` once `yield_to` says so)."""
        ev = self.session.ev
        ev.hardware = ev.hardware or fingerprint(self.device)
        if self.session.req.cache_dir is not None:
            self.ceilings = cached_ceilings(self.device, self.session.req.cache_dir)
            ev.hardware["ceilings"] = vars(self.ceilings)
        self._confirm_kernels(self.problem.shapes[0], self.problem.dtypes[0], yield_to)
        warm = {"seeds": [self.rng.getrandbits(31)], "warmup": 0}
        for shape, dtype in self._cases():
            timing = {**warm, "shape": list(shape), "dtype": dtype}
            time_subject(self.baseline, self.session.maker, self.timer, timing)
            if self.problem.kind is ProblemKind.REPO:
                time_subject(self.session.reference, self.session.maker, self.timer, timing)
            for arm in self.compiled:
                arm.warm((shape, dtype), self._timed_calls(arm, timing))

    def _timed_calls(
        self, arm: CompiledReference, timing: dict[str, Any]
    ) -> Callable[[], list[float]]:
        """Timed calls of the compiled arm as `timing` asks, for the arm to run and guard."""
        return lambda: time_subject(arm, self.session.maker, self.timer, timing)[0]["event_ms"]

    def run(self) -> None:
        """Time each production case (after `prepare`), holding the GPU alone: the timed calls
        only; what needs the GPU but not to itself waits for `finish`."""
        for shape, dtype in self._cases():
            self.session.ev.timings.append(self._time_case(shape, dtype))

    def finish(self) -> None:
        """After the exclusive hold, under a shared one: each timed case's last outputs fetched
        from the worker and checked against the reference again, and its bytes, FLOPs and
        roofline share."""
        while self.pending:
            result = self.pending.pop(0)
            shape, dtype = tuple(result.shape), result.dtype
            case = (shape, dtype)
            budget = self.budgets.returning(self.budgets.calls(case, 1, first=False), case)
            last = self.worker.request(
                {"op": "last", "shape": result.shape, "dtype": dtype},
                "returning the last timed outputs",
                budget.seconds,
                budget.why,
            )
            result.rechecked = self._recheck(shape, dtype, last)
            self._roofline(result, shape, dtype)

    def _cases(self) -> list[tuple[Shape, str]]:
        return [(s, d) for s in self.problem.shapes for d in self.problem.dtypes]

    def _confirm_kernels(
        self, shape: Shape, dtype: str, yield_to: Callable[[], bool] | None
    ) -> None:
        """The profiler must show the candidate's own kernels and nothing that computes for it."""
        calls = self.budgets.calls((shape, dtype), 2, first=False)
        budget = self.budgets.plus(calls, PROFILER_START_S, "for the profiler to start")
        request = {"shape": list(shape), "dtype": dtype, "seed": self.session.req.base_seed}
        self.worker.send({"op": "profile", **request})
        reply, _ = self.worker.receive("profiling", budget.seconds, budget.why, yield_to)
        names: list[str] = reply["kernels"]
        ours = [n for n in names if any(k in n for k in self.session.launched)]
        foreign = [n for n in names if n not in ours and not _HARMLESS_KERNEL.search(n)]
        if not ours:
            raise Failure(
                Verdict.REJECTED,
                "the profiler saw none of the candidate's Triton "
                f"kernels run on the GPU (it saw: {', '.join(names) or 'nothing'})",
            )
        if foreign:
            raise Failure(
                Verdict.REJECTED,
                "the profiler saw kernels that are not the "
                f"candidate's own: {', '.join(foreign[:5])}; compute in Triton kernels",
            )

    def _time_case(self, shape: Shape, dtype: str) -> CaseTiming:
        """Alternating rounds of candidate, baseline and reference on one case."""
        req = self.session.req
        samples: dict[str, list[float]] = {"candidate": [], "baseline": [], "reference": []}
        wall: dict[str, list[float]] = {"candidate": [], "baseline": []}
        rounds: dict[str, list[list[float]]] = {"candidate": [], "baseline": []}
        for r in range(req.rounds):
            seeds = [self.rng.getrandbits(31) for _ in range(req.calls_per_round)]
            warmup = 3 if r == 0 else 2
            timing = {
                "shape": list(shape),
                "dtype": dtype,
                "seeds": seeds,
                "warmup": warmup,
                "keep_last": r == req.rounds - 1,
            }
            budget = self.budgets.calls((shape, dtype), len(seeds) + warmup, first=False)
            times, _ = self.worker.request(
                {"op": "time", **timing}, f"timing round {r + 1}", budget.seconds, budget.why
            )
            rounds["candidate"].append(times["event_ms"])
            samples["candidate"] += times["event_ms"]
            wall["candidate"] += times["wall_ms"]
            base, _ = time_subject(self.baseline, self.session.maker, self.timer, timing)
            rounds["baseline"].append(base["event_ms"])
            samples["baseline"] += base["event_ms"]
            wall["baseline"] += base["wall_ms"]
            if self.problem.kind is ProblemKind.REPO:
                ref, _ = time_subject(
                    self.session.reference, self.session.maker, self.timer, timing
                )
                samples["reference"] += ref["event_ms"]
            self._time_compiled((shape, dtype), timing)
        result = self._summarize(shape, dtype, samples, rounds)
        self.pending.append(result)
        self._flag_hidden_work(shape, dtype, samples, wall)
        return result

    def _time_compiled(self, case: tuple[Shape, str], timing: dict[str, Any]) -> None:
        """One round of each torch.compile arm on the case (an arm that fails stops there)."""
        for arm in self.compiled:
            arm.time_round(case, self._timed_calls(arm, timing))

    def _summarize(
        self,
        shape: Shape,
        dtype: str,
        samples: dict[str, list[float]],
        rounds: dict[str, list[list[float]]],
    ) -> CaseTiming:
        """Medians, the speedup with its interval, and achieved rates against the ceilings."""
        cand = summarize(samples["candidate"])
        point, low, high = paired_speedup_ci(rounds["baseline"], rounds["candidate"], self.rng)
        result = CaseTiming(
            shape=list(shape),
            dtype=dtype,
            candidate=cand,
            baseline=summarize(samples["baseline"]),
            speedup=point,
            speedup_ci=[low, high],
        )
        if samples["reference"]:
            result.reference = summarize(samples["reference"])
            result.speedup_vs_reference = result.reference.median_ms / cand.median_ms
        result.compiled = [arm.result((shape, dtype), summarize) for arm in self.compiled]
        return result

    def _roofline(self, result: CaseTiming, shape: Shape, dtype: str) -> None:
        """Fill bytes, FLOPs, achieved rates and the roofline fraction; flag the impossible."""
        inputs = self.session.maker(shape, dtype, Trial(0, "normal"))
        outputs = self.session.reference(inputs, dtype)
        tensors = [t for t in (*inputs, *outputs) if isinstance(t, torch.Tensor)]
        result.bytes = sum(t.numel() * t.element_size() for t in tensors)
        if self.problem.flops:
            result.flops = int(load_attr(self.problem, self.problem.flops, "_kevolve_flops")(shape))
        seconds = result.candidate.median_ms / 1e3
        result.achieved_gbps = result.bytes / seconds / 1e9
        if result.flops:
            result.achieved_tflops = result.flops / seconds / 1e12
        if self.ceilings is None:
            return
        floor = max(
            result.bytes / (self.ceilings.copy_gbps * 1e9),
            (result.flops or 0) / (self.ceilings.matmul_tflops * 1e12),
        )
        result.roofline_fraction = floor / seconds
        if result.roofline_fraction > ROOFLINE_SLACK:
            self.session.ev.flags.append(
                f"shape {list(shape)} {dtype}: {result.roofline_fraction:.2f}x the roofline — "
                f"faster than the measured ceilings allow; the timing cannot be trusted"
            )

    def _recheck(self, shape: Shape, dtype: str, last: Reply) -> bool:
        """The last timed call's outputs must still match the reference."""
        header, blobs = last
        outputs = decode(header["outputs"], blobs, self.device)
        inputs = self.session.maker(shape, dtype, Trial(int(header["last_seed"]), "normal"))
        expected, working = self.session.references(inputs)
        dtypes = [
            t.dtype for t in self.session.reference(inputs, dtype) if isinstance(t, torch.Tensor)
        ]
        tol = tolerance_for(dtype, self.problem.tolerances)
        result = compare_outputs(outputs, expected, dtypes, tol, working)
        if not result.passed:
            raise Failure(
                Verdict.INCORRECT,
                f"outputs produced while being timed on shape "
                f"{list(shape)} {dtype} are wrong: {result.failure}",
            )
        return True

    def _flag_hidden_work(
        self,
        shape: Shape,
        dtype: str,
        samples: dict[str, list[float]],
        wall: dict[str, list[float]],
    ) -> None:
        """Flag a candidate whose calls take far longer by the wall clock than by its events."""
        excess = median(wall["candidate"]) - median(samples["candidate"])
        usual = median(wall["baseline"]) - median(samples["baseline"])
        if excess - usual > max(0.5 * median(samples["candidate"]), 0.05):
            self.session.ev.flags.append(
                f"shape {list(shape)} {dtype}: calls take {excess:.3f} ms longer by the wall "
                f"clock than by CUDA events (baseline: {usual:.3f} ms); work may be hidden on "
                f"another stream"
            )

    def _baseline(self) -> Subject:
        """The repo's current kernel, or the KernelBench `Model` (the reference)."""
        path = self.problem.kernel_path
        if path is None:
            return self.session.reference
        return Subject(
            self.problem,
            path,
            self.problem.entry,
            "_kevolve_baseline",
            self.device,
            self.session.req.base_seed,
        )
