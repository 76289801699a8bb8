"""Tests for `bot.commands.cli`: the real `kevolve check` command, run as a process; exit codes
and text."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = "examples/demo"
SOFTMAX = "examples/kernelbench/softmax.py"
REJECTED = "tests/corpus/softmax/getattr_smuggle.py"
GOOD = "tests/corpus/kernelbench/softmax__good_online.py"
OPS = "softmax, rmsnorm, bias_gelu, matmul_bias_relu"


def kevolve(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    """`kevolve check ARGS` from the repository root, with its cache under `cache`."""
    env = {**os.environ, "KEVOLVE_CACHE_DIR": str(cache)}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "check", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_rejected_candidate_exits_1_with_a_report(tmp_path: Path) -> None:
    done = kevolve(DEMO, "--op", "softmax", "--candidate", REJECTED, cache=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("softmax: REJECTED — line 18: getattr() ")
    assert "static (line 18): torch computes with PyTorch" in done.stdout
    assert done.stderr == ""


def test_json_output_is_one_evaluation_object(tmp_path: Path) -> None:
    done = kevolve(DEMO, "--op", "softmax", "--candidate", REJECTED, "--json", cache=tmp_path)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert {"verdict", "reason", "checks", "timings", "notes"} <= set(data)
    assert data["verdict"] == "rejected" and data["reason"].startswith("line 18: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            [DEMO, "--op", "softmx", "--candidate", REJECTED],
            f"no op named 'softmx' (declared: {OPS}). Fix: ",
            id="unknown-op",
        ),
        pytest.param(
            [DEMO, "--candidate", REJECTED],
            f"4 ops are declared ({OPS}) and no --op was given. Fix: pass --op with one of",
            id="several-ops",
        ),
        pytest.param(
            [SOFTMAX, "--candidate", "tests/corpus/no_such_candidate.py"],
            "cannot read candidate tests/corpus/no_such_candidate.py: No such file or directory",
            id="missing-candidate",
        ),
        pytest.param(
            ["tests/corpus", "--candidate", GOOD],
            "has neither kevolve.toml nor pyproject.toml. Fix: ",
            id="no-config",
        ),
        pytest.param(
            [SOFTMAX, "--candidate", GOOD, "--trials", "3"],
            "--trials must be at least 5",
            id="too-few-trials",
        ),
        pytest.param(
            [SOFTMAX, "--candidate", GOOD, "--timeout", "0"],
            "--timeout must be a positive number of seconds",
            id="zero-timeout",
        ),
        pytest.param(
            [DEMO, "--op", "softmax", "--candidate", GOOD, "--dtype", "bf16"],
            "'bf16' is not declared for op 'softmax'. Fix: did you mean 'bfloat16'?",
            id="undeclared-dtype",
        ),
        pytest.param(
            [DEMO, "--op", "softmax", "--candidate", GOOD, "--shape", "8192*8192"],
            "'8192*8192' is not 2 positive integers joined by 'x'. Fix: write it like --shape",
            id="bad-shape",
        ),
    ],
)
def test_bad_input_exits_2_and_says_how_to_fix_it(
    tmp_path: Path, args: list[str], message: str
) -> None:
    done = kevolve(*args, cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith("kevolve: error: ")
    assert message in done.stderr
    assert done.stdout == ""


def test_unknown_device_is_refused_by_the_parser(tmp_path: Path) -> None:
    done = kevolve(SOFTMAX, "--candidate", GOOD, "--device", "tpu", cache=tmp_path)
    assert done.returncode == 2
    assert "argument --device: unknown device 'tpu'; use cpu, cuda, cuda:N or auto" in done.stderr


def test_undecodable_candidate_is_bad_input(tmp_path: Path) -> None:
    candidate = tmp_path / "binary.py"
    candidate.write_bytes(b"\xff\xfe\x00 not text")
    done = kevolve(SOFTMAX, "--candidate", str(candidate), cache=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"kevolve: error: cannot read candidate {candidate}")


def test_correct_candidate_on_cpu_exits_0_untimed(tmp_path: Path) -> None:
    done = kevolve(
        SOFTMAX, "--candidate", GOOD, "--device", "cpu", "--timeout", "60", cache=tmp_path
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert (
        lines[0] == "softmax: CORRECT — correct on every case; nothing was timed (no CUDA device)"
    )
    assert "Note: no CUDA device: correctness was checked, nothing was timed" in lines
    assert "Timing" not in done.stdout
    assert done.stderr == ""


def test_version_names_the_installed_distribution() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "kevolve.bot.commands.cli", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"kevolve {version('kevolve')}\n"


def test_a_bad_environment_setting_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "KEVOLVE_CACHE_DIR": str(tmp_path), "KEVOLVE_LLM_TIMEOUT": "soon"}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "check", SOFTMAX, "--candidate", GOOD]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert "kevolve: error: KEVOLVE_LLM_TIMEOUT='soon' is not a positive number of seconds" in (
        done.stderr
    )
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (
            ["optimize", DEMO, "--budget", "0"],
            "kevolve optimize: argument --budget: must be at least 1",
        ),
        (["optimize", DEMO, "--op", "sofmax"], "no op named 'sofmax'"),
        (["check", SOFTMAX, "--candidate", GOOD, "--device", "tpu"], "unknown device 'tpu'"),
    ],
)
def test_under_json_a_usage_error_is_one_json_object_on_stdout(
    tmp_path: Path, args: list[str], error: str
) -> None:
    env = {**os.environ, "KEVOLVE_CACHE_DIR": str(tmp_path)}
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", *args, "--json"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    answer = json.loads(done.stdout)
    assert answer["exit"] == 2 and error in answer["error"]
    assert done.stderr == ""


def test_help_says_what_kevolve_is() -> None:
    argv = [sys.executable, "-m", "kevolve.bot.commands.cli", "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "kevolve keeps GPU kernels fast" in " ".join(done.stdout.split())
