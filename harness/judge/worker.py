"""The evaluation worker: the only process that runs candidate code.

`python -m harness.judge.worker REPLY_FD` reads requests as frames on stdin and answers on REPLY_FD.
It never holds a reference output or a tolerance: it produces outputs, measurements and bitwise
self-checks (inputs untouched, a repeat identical to the first run), and the judge decides.
Started through `harness.sandbox.jail`, so limits and isolation are in place before the candidate is
imported.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import torch
from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.bitwise import identical, inputs_unchanged, snapshot
from kevolve.harness.judge.footprint import WORKER_SHARE
from kevolve.harness.judge.inputs import InputMaker, Trial
from kevolve.harness.judge.instrument import LaunchHook, OpGuard, poison_cache
from kevolve.harness.judge.pieces import PIECE_ELEMENTS
from kevolve.harness.judge.precompile import Precompiler
from kevolve.harness.judge.rotation import TIMING_INPUT_BYTES, InputRotation
from kevolve.harness.judge.subject import Failure, Subject, classify, load_failure
from kevolve.harness.judge.timing import Timer, TimingConfig
from kevolve.harness.judge.wire import decode, encode
from kevolve.harness.sandbox import channel
from kevolve.harness.sandbox.channel import Blob
from kevolve.harness.spec.problem import problem_from_dict

CANDIDATE_MODULE = "_kevolve_candidate"
# What `time_subject` calls: a `Subject`, or the reference under torch.compile.
Implementation = Callable[[Sequence[object], str], tuple[object, ...]]
POISON_BYTES = 1 << 30
Answer = tuple[dict[str, Any], list[Blob]]  # a reply's header and blobs


class WorkerProcess:
    """Serves one candidate: load it, run it on seeded inputs, time it, report its kernels."""

    def __init__(self) -> None:
        self.hook = LaunchHook(CANDIDATE_MODULE)
        self.guard = OpGuard(self.hook)
        self.precompiler = Precompiler()  # wraps launches after the hook: a pass counts none
        self.subject: Subject | None = None
        self.maker: InputMaker | None = None
        self.timer: Timer | None = None
        self.device = torch.device("cpu")
        self.piece_elements = PIECE_ELEMENTS  # elements a digest reads at once
        # The last timed call's seed and outputs per case, until the judge asks for them.
        self.kept: dict[str, tuple[int, tuple[object, ...]]] = {}

    def handle(self, req: dict[str, Any]) -> Answer:
        """The reply to one request."""
        handler: Callable[[dict[str, Any]], Answer] = {
            "load": self.load,
            "compile": self.compile,
            "run": self.run,
            "time": self.time,
            "last": self.last,
            "profile": self.profile,
            "kernels": self.kernels,
        }[req["op"]]
        return handler(req)

    def load(self, req: dict[str, Any]) -> Answer:
        """Import the candidate and the problem's input maker."""
        problem = problem_from_dict(req["problem"])
        self.device = torch.device(req["device"])
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
            share = float(req.get("memory_fraction", WORKER_SHARE))
            torch.cuda.set_per_process_memory_fraction(share)
            self.timer = Timer(self.device, TimingConfig())
        self.piece_elements = max(1, int(req.get("piece_elements", PIECE_ELEMENTS)))
        self.maker = InputMaker(problem, self.device)
        path = Path(req["path"])
        try:
            self.subject = Subject(
                problem, path, problem.entry, CANDIDATE_MODULE, self.device, int(req["init_seed"])
            )
        except BaseException as exc:
            raise load_failure(exc, path) from exc
        return {"ok": True, "sandbox": os.environ.get("KEVOLVE_SANDBOX", "")}, []

    def compile(self, req: dict[str, Any]) -> Answer:
        """Compile the candidate's kernels for a case, running none of them (see `precompile`)."""
        report = self.precompiler.run(self._subject(), tuple(req["shape"]), req["dtype"])
        return {"ok": True, **report.to_reply()}, []

    def run(self, req: dict[str, Any]) -> Answer:
        """Run the candidate `repeat` times on the trial's inputs; the first run's outputs.

        Each run's report says what it launched and whether it left its inputs bitwise as they
        were; `repeat_diff` says how a repeat's outputs differed from the first run's (None if not
        at all). Comparing here instead of sending every input and repeat back saves a copy of the
        largest tensors per run, and trusts the worker no further: these reports are exactly as
        trustworthy as the tensors it sends (the candidate runs in this process either way), and
        what keeps the candidate from forging either is the static screen and the channel design.
        Inputs and the first outputs are kept as digests, not clones; where one no longer
        matches, the inputs are made again from their seed (the first outputs read back from the
        bytes already encoded) to say which elements changed.
        """
        trial = Trial(**req["trial"])
        shape, dtype = tuple(req["shape"]), req["dtype"]
        repeat = int(req.get("repeat", 1))
        reports: list[dict[str, Any]] = []
        first: list[object] = []
        meta: list[dict[str, Any]] = []
        blobs: list[Blob] = []
        repeat_diff: str | None = None
        for i in range(repeat):
            inputs = self._maker()(shape, dtype, trial)
            before = snapshot(inputs, trial.seed, self.piece_elements)
            outputs = self._guarded_call(inputs, dtype)
            changed = inputs_unchanged(before, inputs, lambda: self._maker()(shape, dtype, trial))
            reports.append(
                {
                    "forbidden": dict(self.guard.forbidden),
                    "launches": dict(self.hook.launches),
                    "inputs_changed": changed,
                }
            )
            if i == 0:
                meta, blobs = encode(outputs)
                if repeat > 1:
                    first = snapshot(_as_sent(outputs), trial.seed, self.piece_elements)
            elif repeat_diff is None:
                repeat_diff = identical(first, _as_sent(outputs), self._sent(meta, blobs))
            del inputs, outputs  # before the next run's are made: one set at a time
        return {"ok": True, "outputs": meta, "runs": reports, "repeat_diff": repeat_diff}, blobs

    def time(self, req: dict[str, Any]) -> Answer:
        """Time the candidate on fresh inputs per call. With `keep_last`, the last call's outputs
        stay here until `last` asks for them: sending 6 GiB takes seconds that would otherwise
        be spent holding the GPU alone. Those of another case move to host memory first, so the
        device keeps one case's at most."""
        if self.timer is None:
            raise Failure(Verdict.RUNTIME_ERROR, "timing needs a CUDA device")
        with self.hook.suspended():  # timed as a plain caller would launch it
            times, last = time_subject(self._subject(), self._maker(), self.timer, req)
        if req.get("keep_last"):
            for key, (seed, outputs) in self.kept.items():
                self.kept[key] = (seed, tuple(_on_host(v) for v in outputs))
            self.kept[_case_key(req)] = (int(times["last_seed"]), last)
        return {"ok": True, **times}, []

    def last(self, req: dict[str, Any]) -> Answer:
        """The outputs kept from the last timed call on a case, and that call's seed."""
        kept = self.kept.pop(_case_key(req), None)
        if kept is None:
            raise Failure(Verdict.CRASHED, f"no timed outputs were kept for {_case_key(req)}")
        seed, outputs = kept
        meta, blobs = encode(outputs)
        return {"ok": True, "outputs": meta, "last_seed": seed}, blobs

    def profile(self, req: dict[str, Any]) -> Answer:
        """Names of the device kernels two candidate calls launched, from the profiler."""
        inputs = self._maker()(tuple(req["shape"]), req["dtype"], Trial(int(req["seed"]), "normal"))
        call = self._subject()
        activities = [torch.profiler.ProfilerActivity.CUDA]
        with torch.profiler.profile(activities=activities) as prof:
            for _ in range(2):
                call(inputs, req["dtype"])
            torch.cuda.synchronize()
        names = sorted({e.name for e in prof.events() if _on_device(e)})
        return {"ok": True, "kernels": names}, []

    def kernels(self, req: dict[str, Any]) -> Answer:
        """Launch counts and compiler figures (registers, spills, shared memory) per kernel."""
        info = []
        for name in sorted(set(self.hook.total) | set(self.hook.compiled)):
            compiled = self.hook.compiled.get(name)  # None under the interpreter: nothing compiled
            meta = getattr(compiled, "metadata", None)
            info.append(
                {
                    "name": name,
                    "launches": self.hook.total[name],
                    "n_regs": _int_attr(compiled, "n_regs"),
                    "n_spills": _int_attr(compiled, "n_spills"),
                    "shared_bytes": _int_attr(meta, "shared"),
                }
            )
        peak = torch.cuda.max_memory_reserved(self.device) if self.device.type == "cuda" else 0
        return {"ok": True, "kernels": info, "memory_peak": peak}, []

    def _guarded_call(self, inputs: list[object], dtype: str) -> tuple[object, ...]:
        """One traced call on poisoned memory; any exception becomes a `Failure`."""
        self.hook.reset()
        self.guard.forbidden.clear()
        poison_cache(self.device, POISON_BYTES)
        subject = self._subject()
        try:
            subject.prepare(dtype)
            with self.guard:
                outputs = subject(inputs, dtype)
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except BaseException as exc:
            raise classify(exc, subject.path, self.hook) from exc
        return outputs

    def _sent(self, meta: list[dict[str, Any]], blobs: list[Blob]) -> Callable[[], list[object]]:
        """A getter of the outputs as sent (`encode`d), back on the device."""
        return lambda: decode(meta, blobs, self.device)

    def _subject(self) -> Subject:
        if self.subject is None:
            raise Failure(Verdict.CRASHED, "worker received a request before 'load'")
        return self.subject

    def _maker(self) -> InputMaker:
        if self.maker is None:
            raise Failure(Verdict.CRASHED, "worker received a request before 'load'")
        return self.maker


def time_subject(
    subject: Implementation, maker: InputMaker, timer: Timer, req: dict[str, Any]
) -> tuple[dict[str, Any], tuple[object, ...]]:
    """Event and wall times of calls on fresh inputs per call, and the last call's outputs.

    Shared by the worker (candidate) and the judge (baseline, reference and the compiled
    reference), so every side is measured by the same code. Call i gets the inputs of seed i (of
    the round's seeds), made on the device ahead of the calls (`InputRotation`).
    """
    shape, dtype, seeds = tuple(req["shape"]), req["dtype"], [int(s) for s in req["seeds"]]
    budget = int(req.get("input_bytes", TIMING_INPUT_BYTES))
    rotation = InputRotation(lambda seed: maker(shape, dtype, Trial(seed, "normal")), seeds, budget)
    state: dict[str, list[object]] = {"inputs": []}

    def prepare(i: int) -> None:
        state["inputs"] = []  # the last call's set may be dropped before the next one is made
        state["inputs"] = rotation.inputs(i)

    def call() -> object:
        return subject(state["inputs"], dtype)

    warmup = int(req.get("warmup", 0))
    if warmup:
        timer.time_calls(call, prepare, warmup)
    result = timer.time_calls(call, prepare, len(seeds))
    last = result.last_result
    assert isinstance(last, tuple)
    times = {"event_ms": result.event_ms, "wall_ms": result.wall_ms}
    return {**times, "last_seed": rotation.seed(len(seeds) - 1)}, last


def _case_key(req: dict[str, Any]) -> str:
    """A case's name in `WorkerProcess.kept`: its shape and dtype."""
    return f"shape {list(req['shape'])} {req['dtype']}"


def _on_host(value: object) -> object:
    """A tensor moved to host memory; anything else as it is."""
    return value.cpu() if isinstance(value, torch.Tensor) else value


def _as_sent(values: tuple[object, ...]) -> list[object]:
    """Outputs as the judge sees them: tensors, and for anything else only its type's name."""
    return [v if isinstance(v, torch.Tensor) else f"<{type(v).__name__}>" for v in values]


def _on_device(event: Any) -> bool:
    """True for profiler events that ran on the GPU (kernels, copies, memsets)."""
    return str(getattr(event, "device_type", "")).endswith("CUDA")


def _int_attr(obj: Any, name: str) -> int | None:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else None


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until the judge closes the channel."""
    worker = WorkerProcess()
    while True:
        try:
            req, _ = channel.recv(requests)
        except channel.ChannelClosed:
            return
        try:
            header, blobs = worker.handle(req)
        except Failure as f:
            header, blobs = (
                {"ok": False, "verdict": f.verdict.value, "message": f.message, "line": f.line},
                [],
            )
        channel.send(replies, header, blobs)


def main() -> None:
    """Entry point: serve on stdin and the reply descriptor named on the command line."""
    replies = os.fdopen(int(sys.argv[1]), "wb")
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
