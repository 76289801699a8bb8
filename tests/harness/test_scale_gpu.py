"""The memory plan on a GPU: group norm of bench/scale/memory.py at a mid size (48x64x256x256
float32, 768 MiB a tensor), large enough that the float64 reference comes in chunks of rows, judged
by the real judge with timing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from kevolve.harness.evaluate import CompileArm, EvalOptions, evaluate
from kevolve.harness.evaluation import Verdict
from kevolve.harness.judge.chunked import CHUNK_BYTES
from kevolve.harness.judge.inputs import load_module
from kevolve.harness.judge.timing import TimingConfig
from kevolve.harness.judge.worker import POISON_BYTES
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
scale = load_module(ROOT / "bench" / "scale" / "memory.py", "scale_memory")
MID: dict[str, int] = scale.SIZES["mid"]["group_norm"]
TENSOR_BYTES = 48 * 64 * 256 * 256 * 4

pytestmark = pytest.mark.gpu


def test_group_norm_at_a_mid_size_is_judged_with_the_reference_in_chunks(tmp_path: Path) -> None:
    assert 2 * 2 * TENSOR_BYTES > CHUNK_BYTES  # float64 input and output: more than one chunk
    problem_path, correct = scale.write_case(tmp_path, "group_norm", "correct", MID)
    _, shortcut = scale.write_case(tmp_path, "group_norm", "shortcut", MID)
    [problem] = load_problems(problem_path)
    options = EvalOptions(
        device="cuda",
        timeout=120,
        rounds=3,
        calls_per_round=5,
        cache_dir=tmp_path / "cache",
        compile_arm=CompileArm.OFF,
    )
    ev = evaluate(problem, correct.read_text(), options)
    assert ev.verdict is Verdict.CORRECT, ev.reason
    assert ev.timed and ev.timings[0].rechecked and ev.timings[0].speedup is not None
    # The recheck of the last timed outputs ran after the exclusive hold, as its own phase.
    assert ev.phases["recheck"] > 0 and ev.timings[0].bytes > 0
    # The judge and the worker together, at their peaks: the tensors themselves (the input, the
    # float32 reference, an input clone, the reference at float32 and the output copied back;
    # the worker's input and output), the float64 chunks, never whole float64 tensors, and the
    # worker's fixed buffers (the cache poison and the timer's L2 flush).
    gib = {key: round(value / 2**30, 2) for key, value in ev.memory.items()}
    print("memory GiB:", gib)  # kept in the GPU run's log, beside the bounds below
    fixed = POISON_BYTES + TimingConfig().flush_bytes
    assert 0 < ev.memory["check"] < 7 * TENSOR_BYTES + 3 * CHUNK_BYTES + fixed, gib
    bad = evaluate(problem, shortcut.read_text(), replace(options, time=False))
    assert bad.verdict is Verdict.INCORRECT, bad.reason
    assert "differ beyond tolerance" in bad.reason
