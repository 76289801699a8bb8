"""`kevolve check --baseline`: a candidate judged against another module than the config's kernel
(as a pull request's reproduce section runs it), and the machine named on the CPU too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "examples/demo/demo_kernels/bias_gelu.py"


def check(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """`kevolve check examples/demo --op bias_gelu ARGS` as a process, its cache under `cache`."""
    env = {**os.environ, "KEVOLVE_CACHE_DIR": str(cache)}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "check", "examples/demo"]
    argv += ["--op", "bias_gelu"]
    return subprocess.run(
        [*argv, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_a_candidate_checks_against_a_baseline_file_and_names_the_cpu(tmp_path: Path) -> None:
    baseline = tmp_path / "before.py"
    baseline.write_text((ROOT / KERNEL).read_text().replace("BLOCK = 1024", "BLOCK = 512"))
    done = check(
        "--candidate",
        KERNEL,
        "--baseline",
        str(baseline),
        "--dtype",
        "float32",
        "--device",
        "cpu",
        "--no-time",
        "--json",
        cache=tmp_path / "cache",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    ev = json.loads(done.stdout)
    assert ev["verdict"] == "correct" and ev["timings"] == []
    assert ev["hardware"]["device"] == "cpu" and ev["hardware"]["cpu"]
    assert ev["hardware"]["torch"] and ev["hardware"]["triton"]
    assert ev["dims"] == ["rows", "cols"]
    assert {c["dtype"] for c in ev["checks"]} == {"float32"}
    assert all(c["tolerance"] == {"rtol": 1e-4, "atol": 1e-5, "norm": 1e-5} for c in ev["checks"])


def test_a_baseline_without_the_entry_is_bad_input(tmp_path: Path) -> None:
    baseline = tmp_path / "before.py"
    baseline.write_text("def something_else():\n    pass\n")
    done = check("--candidate", KERNEL, "--baseline", str(baseline), cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr == (
        f"kevolve: error: baseline {baseline} defines no 'bias_gelu'. Fix: pass --baseline PATH "
        "to a Python source file that defines bias_gelu\n"
    )
    missing = tmp_path / "missing.py"
    done = check("--candidate", KERNEL, "--baseline", str(missing), cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"kevolve: error: cannot read baseline {missing}: ")


def test_kernelbench_files_take_no_baseline(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "check"]
    argv += ["examples/kernelbench/softmax.py", "--candidate", KERNEL, "--baseline", KERNEL]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "--baseline is for ops of a repo config" in done.stderr
