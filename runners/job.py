"""`JobSpec` and `run_job`: one search for one op of a checked-out repo, as any runner runs it.

`python -m runners.job SPEC.json RESULT.json [--parent PID|-]` is the entry a child process or a
CI runner calls; it writes the `SearchResult` (plus where the kernel lives) and exits 0, or 2 on a
bad job. With `--parent` (the local runner) it dies with the process that started it: PID, or `-`
when a launcher (sudo) stands between them, and in both cases at the end of its stdin.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from kevolve.harness.evaluate import EvalOptions
from kevolve.harness.sandbox.confine import Confinement
from kevolve.harness.sandbox.jail import die_with_parent, non_dumpable
from kevolve.harness.search.campaign import LLM_SHARE, OptimizeOptions, optimize
from kevolve.harness.search.cluster import EXECUTORS, ClusterError, parse_address
from kevolve.harness.search.engine import SearchConfig
from kevolve.harness.search.llm import LLMConfig
from kevolve.harness.search.status import Status
from kevolve.harness.search.store import StateMismatch
from kevolve.harness.spec.load import SpecError, load_problems, select

API_KEY_VARS = ("KEVOLVE_LLM_API_KEY", "OPENAI_API_KEY")  # read where the job runs, never sent


class JobError(Exception):
    """A job that cannot run as given: names what is wrong and how to fix it."""


@dataclass(frozen=True)
class JobSpec:
    """Everything a runner needs to run one search; plain data so it travels as JSON."""

    job_id: int
    checkout: str  # the repository at the job's commit
    op: str
    hardware: str
    budget: int
    state: str  # SQLite file of the search: the same path resumes it
    cache_dir: str  # measured device ceilings
    device: str = "auto"
    minutes: float | None = None
    seed: int = 0
    timeout: float = 120.0  # seconds per candidate step
    llm_base_url: str | None = None
    llm_model: str | None = None  # "name" or "name:weight,name:weight"
    llm_max_usd: float | None = None  # the search stops once its LLM cost reaches this
    llm_command: list[str] | None = None  # a command per prompt instead of an endpoint
    llm_queue: str | None = None  # a reply queue's folder instead of an endpoint
    llm_share: float = LLM_SHARE  # of proposals; the tuner makes the rest
    llm_repairs: int = 2  # turns a failed LLM candidate gets to be fixed
    lessons: str | None = None  # a lessons file to recall from and add to
    llm_prices: list[list[Any]] | None = None  # [model, USD per M input, per M output] each
    executor: str = "local"  # "local", or "ray": evaluations spread over a Ray cluster
    ray_address: str | None = None  # with "ray": the cluster to join; None: Ray on the runner
    repo: str = ""  # owner/name: where a remote runner checks the job out
    sha: str = ""  # the commit `checkout` is at
    bwrap: str | None = None  # bubblewrap for the judges (set by the runner); None: the jail

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @staticmethod
    def from_json(text: str) -> JobSpec:
        try:
            data = json.loads(text)
            return JobSpec(**data)
        except (ValueError, TypeError) as exc:
            raise JobError(
                f"unreadable job spec: {exc}. Fix: write it with JobSpec.to_json"
            ) from None


def run_job(
    spec: JobSpec,
    env: dict[str, str] | None = None,
    on_progress: Callable[[Status], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the job's search; the `SearchResult` dict with the kernel's repo path."""
    env = dict(os.environ) if env is None else env
    checkout = Path(spec.checkout)
    try:
        problem = select(load_problems(checkout), spec.op, checkout)
    except SpecError as exc:
        raise JobError(str(exc)) from None
    if spec.budget < 1:
        raise JobError(f"job {spec.job_id}: budget {spec.budget} is below 1. Fix: give 1 or more")
    _check_executor(spec)
    options = OptimizeOptions(
        search=SearchConfig(
            budget=spec.budget,
            minutes=spec.minutes,
            seed=spec.seed,
            parallel=None,  # one per executor slot
            hardware=f"{spec.hardware}:{spec.device}",
        ),
        evaluation=EvalOptions(
            device=spec.device,
            timeout=spec.timeout,
            cache_dir=Path(spec.cache_dir),
            confinement=Confinement(bwrap=spec.bwrap),
            cache_scope=spec.repo,
        ),
        state=Path(spec.state),
        lessons=Path(spec.lessons) if spec.lessons else None,
        llm=_llm(spec, env),
        llm_share=spec.llm_share,
        executor=spec.executor,
        ray_address=spec.ray_address,
    )
    try:
        result = optimize(problem, options, on_progress=on_progress).to_dict()
    except (StateMismatch, ClusterError) as exc:
        raise JobError(str(exc)) from None
    result["job"] = {"id": spec.job_id, "hardware": spec.hardware, "kernel": problem.kernel}
    return result


def _check_executor(spec: JobSpec) -> None:
    """Refuse an executor this runner cannot use, naming the fix."""
    job = f"job {spec.job_id}"
    if spec.executor not in EXECUTORS:
        raise JobError(
            f"{job}: unknown executor {spec.executor!r}. Fix: use {' or '.join(EXECUTORS)}"
        )
    if spec.ray_address is not None and spec.executor != "ray":
        raise JobError(f"{job}: a ray_address needs executor 'ray'. Fix: set both, or neither")
    try:
        parse_address(spec.ray_address)
    except ClusterError as exc:
        raise JobError(f"{job}: ray_address {exc}") from None


def _llm(spec: JobSpec, env: dict[str, str]) -> LLMConfig | None:
    """The job's LLM: an endpoint keyed from what the local runner sent on stdin (see `main`)
    or from the runner's environment (an Actions secret), a command or a reply queue; None for
    a tuner-only search."""
    command = tuple(spec.llm_command or ())
    queue = Path(spec.llm_queue) if spec.llm_queue else None
    endpoint = spec.llm_base_url if spec.llm_model else None
    if not (endpoint or command or queue):
        return None
    default = "queue" if queue else Path(command[0]).name if command else ""
    passed = [n.strip() for n in env.get("KEVOLVE_LLM_COMMAND_ENV", "").split(",") if n.strip()]
    try:
        return LLMConfig(
            models=weighted_models(spec.llm_model) if spec.llm_model else ((default, 1.0),),
            base_url=endpoint or "",
            api_key=next((env[v] for v in API_KEY_VARS if env.get(v)), "") if endpoint else "",
            command=command,
            command_env=tuple((n, env[n]) for n in passed if n in env),
            queue=queue,
            max_usd=spec.llm_max_usd,
            repairs=spec.llm_repairs,
            prices=tuple((str(m), float(i), float(o)) for m, i, o in spec.llm_prices or ()),
        )
    except (ValueError, TypeError) as exc:
        raise JobError(f"job {spec.job_id}: the LLM settings: {exc}") from None


def with_llm(spec: JobSpec, llm: LLMConfig | None, share: float) -> JobSpec:
    """A job spec carrying the LLM the flags named (the key stays where the job runs)."""
    if llm is None:
        return spec
    return replace(
        spec,
        llm_base_url=llm.base_url or None,
        llm_model=",".join(f"{name}:{weight:g}" for name, weight in llm.models),
        llm_command=list(llm.command) or None,
        llm_queue=str(llm.queue) if llm.queue else None,
        llm_share=share,
        llm_repairs=llm.repairs,
        llm_max_usd=llm.max_usd,
        llm_prices=[list(p) for p in llm.prices] or None,
    )


def weighted_models(text: str) -> tuple[tuple[str, float], ...]:
    """'a' or 'a:0.7,b:0.3' as (name, weight) pairs; a name may itself hold colons."""
    models = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, weight = part.rpartition(":")
        try:
            models.append((name, float(weight)) if name else (part, 1.0))
        except ValueError:
            models.append((part, 1.0))  # e.g. "qwen2.5-coder:32b": the colon is the name's
    return tuple(models)


def bind_to_parent(parent: str) -> None:
    """Die with the runner: a parent-death signal (after the user switch, which clears it), a
    check that PID still is our parent, and a watch that kills our group at the end of stdin."""
    die_with_parent(None if parent == "-" else int(parent))
    threading.Thread(target=_watch_stdin, name="kevolve-parent-watch", daemon=True).start()


def read_key_line(limit: int = 4096) -> str:
    """The first line of stdin, read byte by byte so nothing after it is consumed: the LLM key
    the local runner sends (an empty line: none)."""
    line = bytearray()
    while len(line) < limit and (byte := os.read(0, 1)) not in (b"", b"\n"):
        line += byte
    return line.decode(errors="replace").strip()


def _watch_stdin() -> None:
    """Wait for the end of stdin (the runner holds its other end), then kill our whole group."""
    with contextlib.suppress(OSError):
        while os.read(0, 4096):  # the raw descriptor: no buffer lock held at interpreter exit
            pass
    os.killpg(os.getpgrp(), signal.SIGKILL)


def main(argv: list[str] | None = None) -> int:
    """`python -m runners.job SPEC.json RESULT.json [--parent PID|-]`."""
    args = sys.argv[1:] if argv is None else argv
    non_dumpable()  # our memory holds the LLM key: not for our children to read
    env = dict(os.environ)
    if len(args) == 4 and args[2] == "--parent" and (args[3] == "-" or args[3].isdigit()):
        if key := read_key_line():  # the local runner's first line: never env, never a file
            env["KEVOLVE_LLM_API_KEY"] = key
        bind_to_parent(args[3])
        args = args[:2]
    if len(args) != 2:
        usage = "usage: python -m runners.job SPEC.json RESULT.json [--parent PID|-]"
        print(usage, file=sys.stderr)
        return 2
    try:
        spec = JobSpec.from_json(Path(args[0]).read_text())
        result = run_job(spec, env)
    except (JobError, OSError) as exc:
        print(f"kevolve job: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args[1])
    partial = out.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=2))
    partial.replace(out)  # a reader never sees half a result
    return 0


if __name__ == "__main__":
    sys.exit(main())
