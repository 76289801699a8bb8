"""A real profile: the demo softmax replayed under Nsight Compute on the GPU, reduced to the
curated figures the prompt shows."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions
from kevolve.harness.profile import ProfileError, Profiling, profile
from kevolve.harness.spec.load import load_problems, select

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"

pytestmark = pytest.mark.gpu  # and Nsight Compute's ncu on the PATH, as GPU hosts have


def test_the_demo_softmax_is_memory_bound_under_ncu() -> None:
    problem = select(load_problems(DEMO), "softmax", DEMO)
    source = (DEMO / "demo_kernels" / "softmax.py").read_text()
    options = EvalOptions(device="cuda", timeout=120)
    taken = profile(problem, source, ((8192, 8192), "bfloat16"), options, Profiling())
    [main] = [k for k in taken.kernels if "softmax" in k.name]
    assert main.duration_us > 10
    assert main.dram_pct is not None and main.dram_pct > 50
    assert main.sm_pct is not None and main.occupancy_pct is not None
    assert main.registers and main.stalls
    assert main.bound == "memory", main


def test_a_kernel_that_faults_is_a_profile_error() -> None:
    problem = select(load_problems(DEMO), "softmax", DEMO)
    broken = "def softmax(x):\n    raise RuntimeError('no kernel here')\n"
    with pytest.raises(ProfileError, match="no kernel here"):
        profile(problem, broken, ((64, 64), "float32"), EvalOptions(device="cuda"), Profiling())
