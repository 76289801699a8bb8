"""Profiles: ncu's raw report reduced to the curated figures, the bound and its lever; the replay
run under a profiler in the judge's jail; a search that profiles each edited parent once and
shows it in the prompt."""

from __future__ import annotations

import os
import random
import stat
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions
from kevolve.harness.evaluation import CaseTiming, Evaluation, Timing, Verdict
from kevolve.harness.profile import (
    KernelProfile,
    Profile,
    ProfileError,
    Profiling,
    Stall,
    case_to_profile,
    parse_raw,
    profile,
    profile_from_dict,
)
from kevolve.harness.search.candidate import Candidate
from kevolve.harness.search.engine import Search, SearchConfig
from kevolve.harness.search.islands import IslandsConfig
from kevolve.harness.search.prompt import PromptBuilder
from kevolve.harness.search.proposal import Drained, Proposal, ProposalContext, Repair
from kevolve.harness.search.store import Store
from kevolve.harness.spec.load import load_problems
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
RAW = ROOT / "tests" / "harness" / "expected" / "ncu_raw.csv"
PROMPTS = ROOT / "templates" / "prompts"


def softmax() -> Problem:
    return next(p for p in load_problems(ROOT / "examples/demo") if p.name == "softmax")


def test_the_raw_report_gives_each_launch_its_curated_figures_and_top_stalls() -> None:
    [kernel] = parse_raw(RAW.read_text())  # ncu 2025.3 on an H100: eager softmax, bf16
    assert "SoftMaxForward" in kernel.name
    assert kernel.duration_us == 131.776 and kernel.registers == 37
    assert kernel.dram_pct == 26.96514 and kernel.sm_pct == 59.17096
    assert kernel.tensor_pct == 0.0 and kernel.occupancy_pct == 49.366592
    assert kernel.duration_us > 0
    assert kernel.dram_pct is not None and 0 < kernel.dram_pct <= 100
    assert kernel.sm_pct is not None and 0 < kernel.sm_pct <= 100
    assert kernel.occupancy_pct is not None and kernel.l2_hit_pct is not None
    assert kernel.registers is not None and kernel.registers > 0
    cycles = [s.cycles for s in kernel.stalls]
    assert 0 < len(kernel.stalls) <= 3 and cycles == sorted(cycles, reverse=True)
    assert all(
        s.reason != "selected" and not s.reason.endswith("not_issued") for s in kernel.stalls
    )


def test_a_report_without_launches_gives_none() -> None:
    assert parse_raw("==PROF== Disconnected from process 1\n") == ()


@pytest.mark.parametrize(
    ("dram", "sm", "bound", "words"),
    [
        (92.0, 20.0, "memory", "fewer bytes"),
        (70.0, 20.0, "memory", "coalesce"),
        (30.0, 85.0, "compute", "tensor cores"),
        (25.0, 30.0, "latency", "waiting on global memory loads"),
    ],
)
def test_the_bound_follows_the_busiest_unit_and_names_its_lever(
    dram: float, sm: float, bound: str, words: str
) -> None:
    kernel = KernelProfile(
        "k", 10.0, dram_pct=dram, memory_pct=dram, sm_pct=sm, stalls=(Stall("long_scoreboard", 9),)
    )
    assert kernel.bound == bound
    assert words in kernel.lever


def test_a_profile_survives_the_state_file_round_trip() -> None:
    kernels = parse_raw(RAW.read_text())
    taken = Profile((4096, 32000), "bfloat16", kernels, "Version 1")
    assert profile_from_dict(taken.to_dict()) == taken


def test_the_case_profiled_is_the_one_furthest_from_its_roofline() -> None:
    t = Timing(10, 1.0, 0.9, 1.1, 0.9)
    ev = Evaluation(Verdict.CORRECT, "correct", "softmax", "cuda", timed=True)
    ev.timings = [
        CaseTiming([8192, 8192], "bfloat16", t, roofline_fraction=0.95),
        CaseTiming([4096, 32000], "bfloat16", t, roofline_fraction=0.67),
    ]
    assert case_to_profile(ev) == ((4096, 32000), "bfloat16")
    assert case_to_profile(Evaluation(Verdict.CORRECT, "correct", "softmax", "cpu")) is None


def stand_in_ncu(folder: Path, report: Path) -> Path:
    """An `ncu` that runs the program it is given (in a process of its own, as ncu does), keeps
    its argument list, and answers `--import` with a recorded report."""
    script = folder / "ncu"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "if args[:1] == ['--version']:\n"
        "    print('Version 0 (stand-in)'); sys.exit(0)\n"
        "if args[:1] == ['--import']:\n"
        f"    print(open({str(report)!r}).read()); sys.exit(0)\n"
        f"open({str(folder / 'argv.json')!r}, 'w').write(json.dumps(args))\n"
        "i, export = 0, None\n"
        "while args[i].startswith('--'):\n"
        "    if args[i] == '--force-overwrite':\n"
        "        i += 1; continue\n"
        "    if args[i] == '--export':\n"
        "        export = args[i + 1]\n"
        "    i += 2\n"
        "code = subprocess.call(args[i:])\n"
        "if code == 0:\n"
        "    open(export + '.ncu-rep', 'w').write('report')\n"
        "sys.exit(code)\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_the_candidate_is_replayed_under_the_profiler_with_the_clocks_left_alone(
    tmp_path: Path,
) -> None:
    problem = softmax()
    ncu = stand_in_ncu(tmp_path, RAW)
    source = problem.kernel_path.read_text() if problem.kernel_path else ""
    options = EvalOptions(device="cpu", timeout=60)
    taken = profile(problem, source, ((8, 40), "float32"), options, Profiling(ncu=str(ncu)))
    assert taken.shape == (8, 40) and taken.dtype == "float32"
    assert "SoftMaxForward" in taken.main.name and taken.tool == "Version 0 (stand-in)"
    argv = (tmp_path / "argv.json").read_text()
    assert '"--clock-control", "none"' in argv
    assert '"--profile-from-start", "off"' in argv
    assert "kevolve.harness.judge.replay" in argv


def test_a_candidate_that_fails_its_replay_is_a_profile_error_in_its_own_words(
    tmp_path: Path,
) -> None:
    problem = softmax()
    ncu = stand_in_ncu(tmp_path, RAW)
    broken = "import torch\n\ndef softmax(x):\n    raise RuntimeError('no kernel here')\n"
    options = EvalOptions(device="cpu", timeout=60)
    with pytest.raises(ProfileError, match="no kernel here"):
        profile(problem, broken, ((8, 40), "float32"), options, Profiling(ncu=str(ncu)))


def test_a_missing_ncu_is_a_profile_error_naming_it(tmp_path: Path) -> None:
    problem = softmax()
    missing = str(tmp_path / "no-such-ncu")
    options = EvalOptions(device="cpu", timeout=60)
    with pytest.raises(ProfileError, match="no-such-ncu"):
        profile(problem, "x = 1\n", ((8, 40), "float32"), options, Profiling(ncu=missing))


class Rewriter:
    """A proposer that appends a comment to its parent and keeps each context it was given."""

    name = "llm:rewriter"

    def __init__(self) -> None:
        self.seen: list[ProposalContext] = []
        self.count = 0

    def propose(self, ctx: ProposalContext, rng: random.Random, count: int) -> list[Proposal]:
        self.seen.append(ctx)
        self.count += 1
        parent = ctx.parents[0] if ctx.parents else ctx.best
        base = parent.candidate.source if parent else ctx.baseline_source
        ids = (parent.candidate.id,) if parent else ()
        return [Proposal(f"{base}VARIANT_{self.count} = {self.count}\n", ids, self.name)]

    def drain(self) -> Drained:
        return Drained()


def timed(problem: Problem, source: str) -> Evaluation:
    """A correct, timed verdict whose speedup grows with the variant number."""
    n = source.count("VARIANT_")
    t = Timing(10, 1.0, 0.9, 1.1, 0.9)
    case = CaseTiming([4096, 32000], "bfloat16", t, speedup=1.0 + n / 10, roofline_fraction=0.7)
    ev = Evaluation(Verdict.CORRECT, "correct", problem.name, "cuda", timed=True)
    ev.timings = [case]
    return ev


def test_a_search_profiles_each_edited_parent_once_and_the_prompt_shows_it(
    tmp_path: Path,
) -> None:
    problem = softmax()
    kernels = parse_raw(RAW.read_text())
    profiled: list[str] = []

    def profiler(p: Problem, source: str, ev: Evaluation) -> Profile:
        profiled.append(source)
        if len(profiled) == 2:
            raise ProfileError("ncu: ERR_NVGPUCTRPERM")  # stored, and not tried again
        return Profile((4096, 32000), "bfloat16", kernels, "Version 1")

    rewriter = Rewriter()
    store = Store(tmp_path / "state.sqlite")
    config = SearchConfig(
        budget=7, per_generation=2, parallel=1, overlap=False, database=IslandsConfig(islands=1)
    )
    source = problem.kernel_path.read_text() if problem.kernel_path else ""
    Search(problem, source, config, [(rewriter, 1.0)], timed, store, profiler=profiler).run()
    assert len(profiled) == len(set(profiled)) >= 2  # each parent once, however often shown
    with_profile = [c for c in rewriter.seen if c.profile is not None]
    assert with_profile and len(with_profile) < len(rewriter.seen)  # the failed one has none
    stored = [store.profile(Candidate(s).id, "cpu") for s in profiled]
    assert any(s is not None and s[1] == "ncu: ERR_NVGPUCTRPERM" for s in stored)
    store.close()
    messages = PromptBuilder(PROMPTS).messages(with_profile[0])
    user = messages[1]["content"]
    assert "Nsight Compute, one call at 4096x32000 bfloat16" in user
    main = kernels[0]
    assert f"DRAM {main.dram_pct:.0f}% of peak" in user
    assert f"Bound: {main.bound}. Lever: {main.lever}" in user
    assert main.stalls[0].reason in user


def test_no_profile_reaches_a_repair_prompt(ctx: ProposalContext) -> None:
    kernels = parse_raw(RAW.read_text())
    failed = Evaluation(Verdict.INCORRECT, "mismatch at [0, 3]", "softmax", "cpu")
    shown = replace(ctx, profile=Profile((8, 40), "float32", kernels))
    repairing = replace(shown, repair=Repair("abc", ctx.baseline_source, failed, 1))
    assert "Nsight Compute" in PromptBuilder(PROMPTS).messages(shown)[1]["content"]
    assert "Nsight Compute" not in PromptBuilder(PROMPTS).messages(repairing)[1]["content"]


def test_os_environ_is_not_handed_to_the_replay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = softmax()
    ncu = stand_in_ncu(tmp_path, RAW)
    monkeypatch.setenv("KEVOLVE_LLM_API_KEY", "sk-secret")
    leak = (
        "import os\n"
        "from demo_kernels.softmax import softmax as _s\n"
        "def softmax(x):\n"
        "    if 'KEVOLVE_LLM_API_KEY' in os.environ:\n"
        "        raise RuntimeError('the key leaked')\n"
        "    return _s(x)\n"
    )
    options = EvalOptions(device="cpu", timeout=60)
    assert os.environ["KEVOLVE_LLM_API_KEY"] == "sk-secret"
    taken = profile(problem, leak, ((8, 40), "float32"), options, Profiling(ncu=str(ncu)))
    assert taken.kernels
