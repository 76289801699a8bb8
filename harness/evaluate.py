"""`evaluate`: judge one candidate source for one problem. Torch-free: the judge runs in a child.

This is the harness's front door. It screens the source statically, then starts the judge in its
own process group with a clean environment, and always gets an `Evaluation` back — a hung, crashed
or cheating candidate is a verdict, never an exception.
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import secrets
import shutil
import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from kevolve.harness.evaluation import (
    COMPILE_MODES,
    CallBudget,
    CompileMode,
    Diagnostic,
    Evaluation,
    Verdict,
    evaluation_from_dict,
)
from kevolve.harness.sandbox.confine import Confinement, Launch, Mount, hand_over, launch
from kevolve.harness.sandbox.spawn import Limits, clean_env, harness_dir, scratch_dir, spawn
from kevolve.harness.screen import screen
from kevolve.harness.spec.problem import Problem, problem_to_dict


class HarnessError(Exception):
    """The harness itself (or the problem's trusted code) failed; not the candidate's fault."""

    def __init__(self, message: str, detail: str = "", out_of_memory: bool = False) -> None:
        super().__init__(message)
        self.detail = detail  # a traceback or log, for debugging; not for end users
        self.out_of_memory = out_of_memory  # the judge ran out of GPU memory: retry when freer


class CompileArm(StrEnum):
    """When the judge also times the op's reference under torch.compile (default mode and
    max-autotune-no-cudagraphs) beside eager PyTorch, in the same rounds.

    Compiling takes seconds to minutes the first time on a machine (inductor's cache keeps it
    after that) and the arms add two timed implementations to every round, so a search pays
    for them once: the reference is the same for every candidate, so its seed's evaluation
    (the repo's kernel) carries the figures the best is shown against.
    """

    OFF = "off"  # never
    SEED = "seed"  # only when the candidate is the baseline itself (a search's seed)
    ALWAYS = "always"  # every timed evaluation (`kevolve check`: a report)


@dataclass(frozen=True)
class EvalOptions:
    """How to judge: device, limits, trials and timing effort."""

    device: str = "auto"  # "cpu", "cuda", "cuda:N" or "auto" (the judge picks)
    timeout: float = 120.0  # seconds for any one step of the candidate (import, a call, a round)
    total_timeout: float = 3600.0  # seconds for the whole evaluation
    trials: int = 5
    base_seed: int = 0
    time: bool = True
    cache_dir: Path | None = None  # where measured device ceilings are kept
    rounds: int = 10
    calls_per_round: int = 10
    confinement: Confinement | None = None  # as whom and how repo code runs; None: as today
    cache_scope: str = ""  # whose judge compile cache this is (e.g. owner/name): one per repo
    compile_arm: CompileArm = CompileArm.SEED  # when torch.compile is timed beside eager
    budget: CallBudget = field(default_factory=CallBudget)  # per-call limits under `timeout`


def evaluate(problem: Problem, source: str, options: EvalOptions) -> Evaluation:
    """The verdict on `source` as a candidate for `problem`."""
    digest = hashlib.sha256(source.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    early = _static_verdict(problem, source)
    if early is not None:
        early.candidate_hash = digest
        return early
    work = scratch_dir("kevolve-eval-")
    started = time.perf_counter()
    try:
        result = _run_judge(problem, source, options, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    result.candidate_hash = digest
    # The whole evaluation as the search waits for it: the judge's start-up is what the phases
    # the judge reports leave out.
    result.phases["total"] = round(time.perf_counter() - started, 3)
    return result


def _static_verdict(problem: Problem, source: str) -> Evaluation | None:
    """A verdict from the source alone: a syntax error or constructs no kernel module needs."""
    try:
        source.encode("utf-8")
        if "\0" in source:
            raise ValueError("it contains NUL bytes")
        compile(source, "candidate.py", "exec")
    except (UnicodeEncodeError, ValueError) as exc:  # lone surrogates, NUL bytes
        message = f"the source is not valid Python text: {exc}"
        return Evaluation(
            verdict=Verdict.COMPILE_ERROR,
            reason=message,
            problem=problem.name,
            device="none",
            diagnostics=[Diagnostic("compile", message)],
        )
    except SyntaxError as exc:
        message = f"syntax error at line {exc.lineno}: {exc.msg}"
        return Evaluation(
            verdict=Verdict.COMPILE_ERROR,
            reason=message,
            problem=problem.name,
            device="none",
            diagnostics=[Diagnostic("compile", message, exc.lineno)],
        )
    findings = screen(source, problem.allowed_imports)
    if not findings:
        return None
    first = findings[0]
    reason = f"line {first.line}: {first.message}"
    if len(findings) > 1:
        reason += f" (and {len(findings) - 1} more finding(s))"
    return Evaluation(
        verdict=Verdict.REJECTED,
        reason=reason,
        problem=problem.name,
        device="none",
        diagnostics=[Diagnostic("static", f.message, f.line) for f in findings],
    )


def _run_judge(problem: Problem, source: str, options: EvalOptions, work: Path) -> Evaluation:
    """Start the judge, hand it the request, and wait for its evaluation."""
    cand_dir = work / "candidate"
    cand_dir.mkdir()
    candidate = cand_dir / "candidate.py"
    candidate.write_text(source)
    read_fd, write_fd = os.pipe()
    extra = {
        "PYTHONPATH": str(problem.root),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(work),
        # Inductor compiles in this process, not in a pool of one worker per core: many judges
        # share the host, and the compile is cached after the first.
        "TORCHINDUCTOR_COMPILE_THREADS": "1",
    }
    if options.cache_dir is not None:
        # Only the repo's code compiles in the judge (the baseline, its reference): its kernels
        # are the same for every candidate, so they compile once per machine and repository,
        # never shared with another repository's. The candidate's worker keeps a cache of its
        # own that dies with the evaluation.
        extra["TRITON_CACHE_DIR"] = str(judge_cache(options.cache_dir, options.cache_scope))
        # torch.compile's graphs and autotuning choices for the reference: one compile per
        # machine, torch and Triton version (inductor keys its entries by them), not per judge.
        extra["TORCHINDUCTOR_CACHE_DIR"] = str(
            inductor_cache(options.cache_dir, options.cache_scope)
        )
    env = clean_env(extra, os.environ)
    how = judge_launch(problem, options, env, work, write_fd)
    try:
        judge = spawn(
            "kevolve.harness.judge",
            [str(write_fd)],
            env=env,
            cwd=work,
            limits=judge_limits(options, how),
            pass_fds=[write_fd],
            prefix=how.prefix,
            user=how.user,
        )
    finally:
        os.close(write_fd)
    replies: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_all, args=(os.fdopen(read_fd), replies), daemon=True).start()
    try:
        request = _request(problem, candidate, options, compile_modes(problem, source, options))
        judge.stdin.write(json.dumps(request).encode())
        judge.stdin.close()
        text = replies.get(timeout=options.total_timeout)
    except queue.Empty:
        return Evaluation(
            verdict=Verdict.TIMEOUT,
            problem=problem.name,
            device=options.device,
            reason=f"the evaluation took longer than {options.total_timeout:g} s",
        )
    finally:
        judge.kill()
    result = _parse(text, judge.log_tail())
    result.notes.extend(how.notes)
    return result


def judge_cache(cache_dir: Path, scope: str) -> Path:
    """The judge's Triton cache for one repository (`scope`), under the machine's cache."""
    if not scope:
        return cache_dir / "triton-judge" / "local"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", scope)[:80]
    digest = hashlib.sha256(scope.encode()).hexdigest()[:12]  # "a/b" and "a_b" stay apart
    return cache_dir / "triton-judge" / f"{name}-{digest}"


def inductor_cache(cache_dir: Path, scope: str) -> Path:
    """Inductor's cache for one repository, inside its judge cache (which the jail binds)."""
    return judge_cache(cache_dir, scope) / "inductor"


def compile_modes(problem: Problem, source: str, options: EvalOptions) -> tuple[CompileMode, ...]:
    """The torch.compile modes this evaluation times: none unless timing, and under
    `CompileArm.SEED` only for the baseline's own source."""
    if not options.time or options.compile_arm is CompileArm.OFF:
        return ()
    if options.compile_arm is CompileArm.SEED and source != _baseline_text(problem):
        return ()
    return COMPILE_MODES


def _baseline_text(problem: Problem) -> str | None:
    """The baseline's source (the repo's kernel, or a KernelBench file's reference module)."""
    try:
        return (problem.kernel_path or problem.path(problem.reference)).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def judge_limits(options: EvalOptions, how: Launch) -> Limits:
    """The judge's jail: the confinement's, else (as the command line runs it) no more than a
    death with its parent, so a killed search leaves no judge behind."""
    if options.confinement is None:
        return Limits(file_bytes=None, open_files=None, isolate_network=False)
    return Limits(isolate_network=how.isolate_network)


def judge_launch(
    problem: Problem, options: EvalOptions, env: dict[str, str], work: Path, fd: int
) -> Launch:
    """How the judge starts: as today without a confinement, else jailed as it says."""
    if options.confinement is None:
        return Launch((), None, False, ())
    mounts = [
        Mount("ro", harness_dir()),
        Mount("ro", problem.root),
        Mount("rw", work),
    ]
    writable = [work, *work.rglob("*")]
    if options.cache_dir is not None:
        own = judge_cache(options.cache_dir, options.cache_scope)
        own.mkdir(parents=True, exist_ok=True)
        # Device ceilings and GPU locks are the machine's; other repos' caches are hidden.
        mounts += [
            Mount("rw", options.cache_dir),
            Mount("tmpfs", own.parent),
            Mount("rw", own),
        ]
        writable += [options.cache_dir, *options.cache_dir.glob("*.*"), own.parent, own]
        writable += own.rglob("*")
    confinement = options.confinement
    if confinement.user is not None:
        hand_over(writable, confinement.user)
    return launch(confinement, mounts, env, work, [fd])


def _request(
    problem: Problem, candidate: Path, options: EvalOptions, modes: tuple[CompileMode, ...]
) -> dict[str, Any]:
    """The judge's request; the secret seed is drawn here, where no candidate code runs."""
    return {
        "problem": problem_to_dict(problem),
        "candidate": str(candidate),
        "device": options.device,
        "timeout": options.timeout,
        "trials": options.trials,
        "base_seed": options.base_seed,
        "secret_seed": secrets.randbits(31),
        "time": options.time,
        "cache_dir": str(options.cache_dir) if options.cache_dir else None,
        "rounds": options.rounds,
        "calls_per_round": options.calls_per_round,
        "compile_modes": [m.value for m in modes],
        "budget": options.budget.to_dict(),
    }


def _parse(text: str, log: str) -> Evaluation:
    """The judge's answer as an `Evaluation`; `HarnessError` if the judge itself failed."""
    if not text:
        raise HarnessError("the judge process ended without an answer", log)
    data = json.loads(text)
    if "error" in data:
        raise HarnessError(
            f"the judge failed: {data['error']}",
            str(data.get("traceback", "")),
            out_of_memory=bool(data.get("out_of_memory")),
        )
    return evaluation_from_dict(data)


def _read_all(stream: IO[str], out: queue.Queue[str]) -> None:
    """Reader thread: the judge's whole answer, delivered once the judge closes its end."""
    with stream:
        out.put(stream.read())
