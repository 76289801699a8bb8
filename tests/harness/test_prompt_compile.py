"""torch.compile in the proposal prompt: each timed case of the current program shows the
reference under each torch.compile mode and how the program stands against the fastest, from the
seed's evaluation where its own ran none; nothing where torch.compile was not timed; repairs
show none. The planner reads the seed's evaluation from the store, as a resumed search does."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

from kevolve.harness.evaluation import CaseTiming, CompiledTiming, Evaluation, Timing, Verdict
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.islands import Islands, IslandsConfig
from kevolve.harness.search.planner import Brief, Planner
from kevolve.harness.search.prompt import COMPILE_ERROR_CHARS, PromptBuilder
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext, Repair
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates" / "prompts"
PROBLEM = next(p for p in load_problems(ROOT / "examples/demo") if p.name == "bias_gelu")
BASELINE = PROBLEM.kernel_path.read_text() if PROBLEM.kernel_path else ""
PROGRAM = f"{BASELINE}VARIANT = 1\n"
AUTOTUNE = "max-autotune-no-cudagraphs"
BIG, SMALL = [4096, 8192], [33, 17]
NOTE = "torch.compile figures marked (seed's run) were timed beside the repository's kernel"


def ms(median: float) -> Timing:
    return Timing(n=50, median_ms=median, q10_ms=median, q90_ms=median, min_ms=median)


def case(shape: list[int], program: float, *compiled: CompiledTiming) -> CaseTiming:
    """A timed case: the program's median against a 0.2 ms baseline and 0.3 ms eager PyTorch."""
    return CaseTiming(
        shape=shape,
        dtype="bfloat16",
        candidate=ms(program),
        baseline=ms(0.2),
        reference=ms(0.3),
        speedup=0.2 / program,
        roofline_fraction=0.5,
        compiled=list(compiled),
    )


def evaluation(*cases: CaseTiming) -> Evaluation:
    return Evaluation(
        Verdict.CORRECT, "correct", "bias_gelu", "cuda", timed=True, timings=list(cases)
    )


def seed_evaluation() -> Evaluation:
    """The seed's evaluation: both modes timed on the big case, one failed on the small one."""
    return evaluation(
        case(BIG, 0.2, CompiledTiming("default", ms(0.13)), CompiledTiming(AUTOTUNE, ms(0.1047))),
        case(
            SMALL,
            0.2,
            CompiledTiming("default", ms(0.0110)),
            CompiledTiming(AUTOTUNE, error="BackendCompilerFailed: no config fits"),
        ),
    )


def context(program: Evaluation, seed: Evaluation | None) -> ProposalContext:
    current = Elite(Candidate(PROGRAM, proposer="llm:test"), 1.5, program)
    return ProposalContext(PROBLEM, BASELINE, (current,), current, seed=seed)


def user(ctx: ProposalContext) -> str:
    return PromptBuilder(TEMPLATES).messages(ctx)[1]["content"]


def test_the_seed_figures_show_per_case_with_the_fastest_mode_and_where_they_come_from() -> None:
    text = user(context(evaluation(case(BIG, 0.1138), case(SMALL, 0.0100)), seed_evaluation()))
    assert (
        "Per case (median of timed calls):\n"
        "- 4096x8192 bfloat16: 0.1138 ms (baseline 0.2000 ms, eager PyTorch 0.3000 ms), 1.76x, "
        "50% of the roofline\n"
        "  torch.compile of the reference (seed's run): default 0.1300 ms, "
        f"{AUTOTUNE} 0.1047 ms; this program is 0.92x as fast as {AUTOTUNE}\n"
        "- 33x17 bfloat16: 0.0100 ms (baseline 0.2000 ms, eager PyTorch 0.3000 ms), 20.00x, "
        "50% of the roofline\n"
        "  torch.compile of the reference (seed's run): default 0.0110 ms, "
        f"{AUTOTUNE} failed (BackendCompilerFailed: no config fits); "
        "this program is 1.10x as fast as default\n"
        f"\n{NOTE}, not beside this program: the same reference on the same GPU.\n"
    ) in text


def test_the_program_s_own_figures_are_shown_unmarked() -> None:
    own = case(BIG, 0.1, CompiledTiming("default", ms(0.25)), CompiledTiming(AUTOTUNE, ms(0.2)))
    text = user(context(evaluation(own), seed_evaluation()))
    assert (
        "  torch.compile of the reference: default 0.2500 ms, "
        f"{AUTOTUNE} 0.2000 ms; this program is 2.00x as fast as {AUTOTUNE}\n"
    ) in text
    assert "(seed's run)" not in text and NOTE not in text


def test_nothing_about_torch_compile_where_it_was_not_timed() -> None:
    program = evaluation(case(BIG, 0.1138))
    untimed_seed = evaluation(case(BIG, 0.2))
    other_shape = evaluation(case([7, 7], 0.2, CompiledTiming("default", ms(0.1))))
    for seed in (None, untimed_seed, other_shape):
        text = user(context(program, seed))
        assert "- 4096x8192 bfloat16: 0.1138 ms" in text
        assert "torch.compile" not in text
    # Only the case the seed timed shows torch.compile.
    text = user(context(evaluation(case(BIG, 0.1138), case([7, 7], 0.1)), other_shape))
    assert text.count("torch.compile of the reference") == 1
    assert "- 7x7 bfloat16: 0.1000 ms (baseline 0.2000 ms, eager PyTorch 0.3000 ms), 2.00x, " in (
        text
    )


def test_modes_that_all_failed_are_named_with_one_short_line_and_no_ratio() -> None:
    long = "Unsupported: " + "x" * 400 + "\nTraceback (most recent call last):"
    failed = case(
        BIG,
        0.1,
        CompiledTiming("default", error=long),
        CompiledTiming(AUTOTUNE, error="BackendCompilerFailed"),
        CompiledTiming("reduce-overhead", compile_s=3.0),  # compiled, never timed: no figure
    )
    text = user(context(evaluation(failed), None))
    cut = long[:COMPILE_ERROR_CHARS]
    assert (
        f"  torch.compile of the reference: default failed ({cut}), "
        f"{AUTOTUNE} failed (BackendCompilerFailed)\n"
    ) in text
    assert "Traceback" not in text and "as fast as" not in text and "reduce-overhead" not in text


def test_a_repair_prompt_shows_no_torch_compile() -> None:
    broken = Evaluation(Verdict.COMPILE_ERROR, "NameError: name 'oops' is not defined", "x", "cuda")
    ctx = context(evaluation(case(BIG, 0.1138)), seed_evaluation())
    fixed = dataclasses.replace(ctx, repair=Repair("abc", f"{BASELINE}oops\n", broken, 1))
    text = user(fixed)
    assert "## Fix this program (repair turn 1)" in text
    assert "torch.compile" not in text and "Per case" not in text


class Recorder:
    """A proposer that renders each context's prompt and proposes a new module."""

    name = "llm:recorder"

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        self.prompts.append(user(ctx))
        return [Proposal(f"{ctx.baseline_source}ASK = {len(self.prompts)}\n", (), self.name)]

    def drain(self) -> Drained:
        return Drained()


def first_prompt(store: Store) -> str:
    """Generation 1's first prompt, planned by a new planner over `store` (as a resumed search
    plans) from one island holding the program, timed without torch.compile."""
    brief = Brief(PROBLEM, BASELINE, 3, 2, True, "h100", "")
    recorder = Recorder()
    rng = random.Random(0)
    db = Islands(IslandsConfig(islands=1), rng)
    program = context(evaluation(case(BIG, 0.1138)), None).parents[0]
    db.register(program.candidate.id)
    db.add(program)
    Planner(brief, [(recorder, 1.0)], store).plan(1, 1, db, rng, None)
    return recorder.prompts[0]


def test_the_planner_shows_the_stored_seed_figures_and_a_resumed_one_the_same(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.sqlite")
    try:
        assert "torch.compile" not in first_prompt(store)  # the seed is not judged yet
        seed = Candidate(BASELINE, proposer="seed")
        store.save_candidate(seed)
        store.save_evaluation(seed.id, "h100", seed_evaluation())
        store.save_evaluation(seed.id, "a100", evaluation(case(BIG, 0.2)))  # another GPU's
        text = first_prompt(store)
        assert (
            "  torch.compile of the reference (seed's run): default 0.1300 ms, "
            f"{AUTOTUNE} 0.1047 ms; this program is 0.92x as fast as {AUTOTUNE}\n"
        ) in text
        assert first_prompt(store) == text
    finally:
        store.close()
