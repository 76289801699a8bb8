"""Tests for `bench/scale/memory.py` on the CPU: its arguments, the record it writes as it goes,
and the problems it writes (their candidates are judged in tests/harness/test_chunked_judge.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kevolve.harness.judge.inputs import load_module
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
# bench/ is a folder of scripts, not a package: load the script the way the harness loads kernels.
scale = load_module(ROOT / "bench" / "scale" / "memory.py", "scale_memory")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--out", "/nonexistent/x.json"], "--out /nonexistent/x.json: folder /nonexistent does"),
        (["--out", "OUT", "--only", "softmax"], "unknown problem(s) softmax; known: log_softmax"),
        (["--out", "OUT", "--sizes", "huge"], "invalid choice: 'huge'"),
        (["--out", "OUT", "--candidates", "right"], "--candidates right: known kinds correct, "),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [str(tmp_path / "x.json") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as stop:
        scale.parse_args(argv)
    assert stop.value.code == 2
    assert words in capsys.readouterr().err


def test_a_run_out_of_budget_records_every_case_as_skipped(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    code = scale.main(["--out", str(out), "--device", "cpu", "--sizes", "small", "--budget-s", "0"])
    record = json.loads(out.read_text())
    assert code == 1 and record["all_as_expected"] is False
    assert [(c["problem"], c["candidate"]) for c in record["cases"]] == [
        (name, kind) for name, kind, _ in scale.CASES
    ]
    assert all("would pass the budget of 0 s" in c["skipped"] for c in record["cases"])
    assert not (tmp_path / "memory.json.partial").exists()


def test_candidates_pick_the_kinds_judged(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    argv = ["--out", str(out), "--device", "cpu", "--sizes", "small", "--budget-s", "0"]
    scale.main([*argv, "--only", "attention,gelu", "--candidates", "correct"])
    record = json.loads(out.read_text())
    assert [(c["problem"], c["candidate"]) for c in record["cases"]] == [
        ("attention", "correct"),
        ("gelu", "correct"),
    ]


@pytest.mark.parametrize("name", sorted(scale.PROBLEMS))
def test_the_problems_are_kernelbench_files_at_the_published_sizes(
    tmp_path: Path, name: str
) -> None:
    sizes = scale.SIZES["published"][name]
    path, candidate = scale.write_case(tmp_path, name, "correct", sizes)
    [problem] = load_problems(path)
    assert problem.entry == "ModelNew" and problem.dtypes == ("float32",)
    assert "class ModelNew" in candidate.read_text()
    for key, value in sizes.items():
        assert f"{key} = {value}\n" in path.read_text()
    if name in scale.LARGE:
        assert scale.tensor_gib(name, sizes) > 1.0  # each input larger than a GiB
