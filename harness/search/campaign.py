"""`optimize`: one search for one problem, composed from its parts and summarized as a result."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from kevolve.harness.assets import template_dir
from kevolve.harness.evaluate import CompileArm, EvalOptions, HarnessError, evaluate
from kevolve.harness.evaluation import Evaluation
from kevolve.harness.profile import (
    Profile,
    ProfileError,
    Profiling,
    available,
    case_to_profile,
    profile,
)
from kevolve.harness.search.candidate import Elite
from kevolve.harness.search.cluster import EXECUTORS, connect
from kevolve.harness.search.engine import Evaluator, Search, SearchConfig
from kevolve.harness.search.lessons import Lessons, learned
from kevolve.harness.search.llm import LLMConfig, LLMProposer
from kevolve.harness.search.planner import Profiler
from kevolve.harness.search.prompt import PromptBuilder, op_family, reference_source
from kevolve.harness.search.proposal import Proposer
from kevolve.harness.search.result import MIN_SPEEDUP, SearchResult, publish_gate
from kevolve.harness.search.status import Status, score
from kevolve.harness.search.store import Store
from kevolve.harness.search.tuner import TunerProposer
from kevolve.harness.spec.problem import Problem

TEMPLATES = template_dir("prompts")
LLM_SHARE = 0.75  # of proposals, when an LLM is configured; the tuner takes the rest
CPU_SLOTS = 2  # interpreted evaluations in flight on a machine without a GPU
MAX_GPU_SLOTS = 16
OOM_ATTEMPTS = 4  # tries of an evaluation whose judge ran out of GPU memory
OOM_PAUSE_S = 10.0  # times the attempt number, between tries
NVIDIA_GPUS = Path("/proc/driver/nvidia/gpus")  # present where the NVIDIA driver sees a GPU


@dataclass(frozen=True)
class OptimizeOptions:
    """Everything `kevolve optimize` decides before the search starts."""

    search: SearchConfig
    evaluation: EvalOptions
    state: Path
    llm: LLMConfig | None = None
    prompts: Path = TEMPLATES
    lessons: Path | None = None  # a lessons file: recalled into prompts, added to after
    llm_share: float = LLM_SHARE  # of proposals, when an LLM is configured
    min_speedup: float = MIN_SPEEDUP  # the gain the publish gate asks for
    executor: str = "local"  # one of EXECUTORS
    ray_address: str | None = None  # with "ray": the cluster to join; None: see cluster.connect
    # Profiles of the elites an LLM edits, where `ncu` is on the PATH; None: never profile.
    profiling: Profiling | None = field(default_factory=Profiling)


def optimize(
    problem: Problem,
    options: OptimizeOptions,
    on_progress: Callable[[Status], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SearchResult:
    """Run (or resume) the search and summarize it."""
    proposers = _proposers(options, sleep)
    family = op_family(problem, reference_source(problem))
    recalled = _recall(options.lessons, family, options.search.hardware)
    store = Store(options.state)
    try:
        with _executor(problem, options, sleep) as (evaluator, slots):
            config = _with_llm(options.search, options.llm)
            if config.parallel is None:
                config = replace(config, parallel=slots)
            if options.executor == "local":  # every evaluation on this machine's one GPU
                config = replace(config, memory_bound=True)
            search = Search(
                problem,
                baseline_source(problem),
                config,
                proposers,
                evaluator,
                store,
                on_progress=on_progress,
                lessons=recalled,
                profiler=_profiler(options),
            )
            status = search.run()
            if options.executor == "local" and not status.waiting:
                status.best = _against_compile(problem, status.best, options, sleep)
            pick = untimed_pick(search.db.elites())
            chosen = status.best if status.best and status.best.evaluation.timed else pick
            ancestry = lineage(store, chosen.candidate.id) if chosen else []
            if options.lessons is not None and not status.waiting:
                _learn(options.lessons, family, options.search.hardware, store, problem.name)
    finally:
        store.close()
    return summarize(problem, status, proposers, options, pick, ancestry)


def _against_compile(
    problem: Problem, best: Elite | None, options: OptimizeOptions, sleep: Callable[[float], None]
) -> Elite | None:
    """The best judged once more with torch.compile timed in its own rounds (a search times
    compile only in its seed's), so its pull request compares like with like; the search's
    evaluation stays if this one is not a correct timed verdict."""
    if best is None or not best.evaluation.timed or best.candidate.proposer == "seed":
        return best
    judge = _evaluator(replace(options.evaluation, compile_arm=CompileArm.ALWAYS), sleep)
    try:
        ev = judge(problem, best.candidate.source)
    except HarnessError:
        return best
    value = score(ev)
    if value is None or not ev.timed:
        return best
    return replace(best, score=value, evaluation=ev)


def _recall(path: Path | None, family: str, hardware: str) -> tuple[str, ...]:
    """The lessons earlier searches of this family on this hardware left, if a file is named."""
    if path is None:
        return ()
    lessons = Lessons(path)
    try:
        return lessons.recall(family, hardware)
    finally:
        lessons.close()


def _learn(path: Path, family: str, hardware: str, store: Store, search: str) -> None:
    """Add what this search learned to the lessons file."""
    lessons = Lessons(path)
    try:
        lessons.add(family, hardware, search, learned(store, hardware))
    finally:
        lessons.close()


def _with_llm(config: SearchConfig, llm: LLMConfig | None) -> SearchConfig:
    """The search's LLM rules: repair turns and the cost cap; a reply queue plans each
    generation from the verdicts before it and does not re-ask a slot whose reply failed."""
    if llm is None:
        return config
    config = replace(config, repairs=llm.repairs, max_usd=config.max_usd or llm.max_usd)
    if llm.queue is not None:
        config = replace(config, overlap=False, refill=False)
    return config


def lineage(store: Store, candidate_id: str, limit: int = 20) -> list[dict[str, object]]:
    """The candidate and its first parents back to the seed: who proposed each, and the reply
    (key, model, rationale) that produced it."""
    chain: list[dict[str, object]] = []
    current: str | None = candidate_id
    while current is not None and len(chain) < limit:
        try:
            c = store.candidate(current)
        except KeyError:
            break
        # An exchange that repeated an earlier candidate did not produce this one: not its story.
        found = [e for _, e in store.exchanges(c.id) if e.error is None]
        exchange = found[0] if found else None
        chain.append(
            {
                "id": c.id,
                "proposer": c.proposer,
                "generation": c.generation,
                "prompt": exchange.key if exchange else None,
                "model": exchange.model if exchange else None,
                "rationale": exchange.rationale if exchange else None,
            }
        )
        current = c.parents[0] if c.parents else None
    return chain


def untimed_pick(elites: list[Elite]) -> Elite | None:
    """In a correctness-only run every correct candidate ties; show the newest non-seed one.

    Nothing ranks them, so the newest (latest generation) is as good a pick as any and, unlike
    the seed, it is something to look at. None when only the seed passed.
    """
    proposed = [e for e in elites if e.candidate.proposer != "seed" and not e.evaluation.timed]
    if not proposed:
        return None
    return max(proposed, key=lambda e: (e.candidate.generation, e.candidate.id))


def baseline_source(problem: Problem) -> str:
    """Generation zero: the repo's current kernel, or the KernelBench reference module."""
    path = problem.kernel_path or problem.path(problem.reference)
    return path.read_text()


def summarize(
    problem: Problem,
    status: Status,
    proposers: list[tuple[Proposer, float]],
    options: OptimizeOptions,
    untimed: Elite | None = None,
    ancestry: list[dict[str, object]] | None = None,
) -> SearchResult:
    """The `SearchResult` of a finished (or stopped) search.

    `untimed` stands in for the best of a correctness-only run (see `untimed_pick`).
    """
    best = status.best
    if untimed is not None and not (best and best.evaluation.timed):
        best = untimed
    ev: Evaluation | None = best.evaluation if best else None
    llm = next((p for p, _ in proposers if isinstance(p, LLMProposer)), None)
    usage = vars(llm.usage) if llm else {}
    described = {}
    if llm is not None:
        described = {
            "transport": llm.config.transport_name,
            "models": [name for name, _ in llm.config.models],
            "cost_usd": round(status.cost_usd, 6),  # over every run of the search
            "repairs_judged": status.repairs,
            "repairs_correct": status.repaired,
        }
        if llm.config.queue is not None:
            described["queue"] = str(llm.config.queue)
    notes = []
    if llm is None:
        notes.append("no LLM configured: the tuner alone proposed candidates")
    if status.waiting:
        notes.append(
            f"paused: {len(status.waiting)} prompts wait for replies; run the same command "
            "again once they are written"
        )
    if not (ev and ev.timed):
        notes.append("no GPU timing: a correctness-only dry run; nothing was ranked by speed")
        if untimed is not None:
            notes.append("best: the newest correct candidate, not a faster one (nothing was timed)")
    is_seed = best is not None and best.candidate.proposer == "seed"
    gate = publish_gate(ev, is_seed, options.min_speedup)
    return SearchResult(
        problem=problem.name,
        device=options.evaluation.device,
        timed=bool(ev and ev.timed),
        evaluated=status.evaluated,
        counts=dict(status.counts),
        best=_best(best) if best else None,
        baseline=status.baseline.to_dict() if status.baseline else None,
        history=status.history,
        hardware=ev.hardware if ev else None,
        llm={"configured": llm is not None, **usage, **described},
        wall_s=round(status.elapsed_s, 3),
        gpu_s=round(status.gpu_s, 3),
        gate=gate,
        stop_reason=status.stop_reason,
        stop=status.stop,
        notes=notes,
        waiting=list(status.waiting),
        lineage=ancestry or [],
    )


def _best(elite: Elite) -> dict[str, object]:
    """The best elite as result data, its source included."""
    c = elite.candidate
    return {
        "id": c.id,
        "proposer": c.proposer,
        "generation": c.generation,
        "parents": list(c.parents),
        "score": elite.score,
        "source": c.source,
        "evaluation": elite.evaluation.to_dict(),
    }


def _proposers(
    options: OptimizeOptions, sleep: Callable[[float], None]
) -> list[tuple[Proposer, float]]:
    """The tuner always; the LLM too when one is configured."""
    tuner: Proposer = TunerProposer()
    if options.llm is None:
        return [(tuner, 1.0)]
    llm = LLMProposer(options.llm, PromptBuilder(options.prompts), sleep=sleep)
    if options.llm_share >= 1.0:
        return [(llm, 1.0)]
    return [(llm, options.llm_share), (tuner, 1.0 - options.llm_share)]


@contextmanager
def _executor(
    problem: Problem, options: OptimizeOptions, sleep: Callable[[float], None]
) -> Iterator[tuple[Evaluator, int]]:
    """The evaluator the options ask for, and how many evaluations it runs at once."""
    if options.executor == "local":
        yield _evaluator(options.evaluation, sleep), local_slots(options.evaluation.device)
    elif options.executor == "ray":
        with connect(problem, options.evaluation, options.ray_address) as cluster:
            yield cluster, cluster.slots
    else:
        raise ValueError(
            f"unknown executor {options.executor!r}; use one of: {', '.join(EXECUTORS)}"
        )


def local_slots(
    device: str, cpus: int | None = None, has_gpu: Callable[[], bool] = NVIDIA_GPUS.is_dir
) -> int:
    """Evaluations in flight on this machine unless told. On a GPU, one per CPU core, at most 16:
    loading, compiling and checking are CPU work that overlaps while timing holds the GPU alone
    (on a 16-core H200 host, 16 in flight judged 1.44x as many candidates an hour as 8 in the
    same run; bench/RESULTS.md)."""
    gpu = device.startswith("cuda") or (device == "auto" and has_gpu())
    if not gpu:
        return CPU_SLOTS
    cores = os.cpu_count() if cpus is None else cpus
    return max(CPU_SLOTS, min(MAX_GPU_SLOTS, cores or CPU_SLOTS))


def _profiler(options: OptimizeOptions) -> Profiler | None:
    """Profiles for the LLM's prompts: only when an LLM reads them, the candidates run on this
    machine, and `ncu` is there (the tuner gains nothing from a profile)."""
    profiling = options.profiling
    if options.llm is None or profiling is None or options.executor != "local":
        return None
    if not available(profiling):
        return None

    def take(problem: Problem, source: str, ev: Evaluation) -> Profile:
        case = case_to_profile(ev)
        if case is None:
            raise ProfileError("nothing was timed on a GPU, so there is nothing to profile")
        return profile(problem, source, case, options.evaluation, profiling)

    return take


def _evaluator(options: EvalOptions, sleep: Callable[[float], None]) -> Evaluator:
    """The harness's `evaluate` with these options bound; a judge that ran out of GPU memory
    (other evaluations held it) is tried again after a pause, a few times."""

    def judge(problem: Problem, source: str) -> Evaluation:
        attempt = 1
        while True:
            try:
                return evaluate(problem, source, options)
            except HarnessError as exc:
                if not exc.out_of_memory or attempt >= OOM_ATTEMPTS:
                    raise
            sleep(OOM_PAUSE_S * attempt)
            attempt += 1

    return judge
