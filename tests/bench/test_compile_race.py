"""Tests for `bench/compile_race.py` on the CPU: arguments, scoring, the table, one faked race."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from kevolve.harness.evaluation import Timing
from kevolve.harness.judge.hardware import Ceilings
from kevolve.harness.judge.inputs import load_module
from kevolve.harness.judge.timing import CallTimes, TimingConfig
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
# bench/ is a folder of scripts, not a package: load the script the way the harness loads kernels.
race = load_module(ROOT / "bench" / "compile_race.py", "compile_race")
PROBLEMS = {p.name: p for p in load_problems(ROOT / "examples" / "demo")}
DECLARED = list(PROBLEMS)
CEILINGS = Ceilings(copy_gbps=2000.0, matmul_tflops=500.0)


def _timing(median_ms: float, q10_ms: float, q90_ms: float) -> Timing:
    """A `Timing` with the given median and quantiles."""
    return Timing(n=3, median_ms=median_ms, q10_ms=q10_ms, q90_ms=q90_ms, min_ms=q10_ms)


def _module(tmp_path: Path, body: str) -> Path:
    """A kernel module file holding `body`."""
    path = tmp_path / "found.py"
    path.write_text(f"import torch\n\n\n{body}\n")
    return path


# --- command line -------------------------------------------------------------------------------


def test_found_maps_each_op_to_its_module(tmp_path: Path) -> None:
    softmax = _module(tmp_path, "def softmax(x):\n    return x")
    rmsnorm = tmp_path / "rmsnorm.py"
    rmsnorm.write_text("def rmsnorm(x, weight):\n    return x\n")
    values = [f" softmax = {softmax}", f"rmsnorm={rmsnorm}"]
    assert race.parse_found(values, DECLARED, DECLARED) == {"softmax": softmax, "rmsnorm": rmsnorm}


@pytest.mark.parametrize(
    ("values", "selected", "message"),
    [
        (["softmax"], DECLARED, r"--found 'softmax' is not OP=path; pass e\.g\. --found softmax="),
        (["=x.py"], DECLARED, r"is not OP=path"),
        (["softmax="], DECLARED, r"is not OP=path"),
        (["sofmax={file}"], DECLARED, r"no demo op named 'sofmax'; did you mean 'softmax'\?"),
        (["softmax={missing}"], DECLARED, r"--found softmax: '.*missing\.py' is not a file"),
        (["rmsnorm={file}"], ["softmax"], r"names op 'rmsnorm', which --ops leaves out"),
        (["softmax={file}", "softmax={file}"], DECLARED, r"gives op 'softmax' twice"),
    ],
)
def test_found_rejects_bad_values(
    tmp_path: Path, values: list[str], selected: list[str], message: str
) -> None:
    file = _module(tmp_path, "def softmax(x):\n    return x")
    filled = [v.format(file=file, missing=tmp_path / "missing.py") for v in values]
    with pytest.raises(race.UsageError, match=message):
        race.parse_found(filled, DECLARED, selected)


def test_ops_default_to_all_and_keep_the_given_order() -> None:
    assert race.select_ops("", DECLARED) == DECLARED
    assert race.select_ops(" rmsnorm,softmax ", DECLARED) == ["rmsnorm", "softmax"]
    with pytest.raises(race.UsageError, match=r"no demo op named 'rmsnrom'; did you mean 'rms"):
        race.select_ops("softmax,rmsnrom", DECLARED)


def test_dtypes_must_be_known_names() -> None:
    assert race.parse_dtypes("bfloat16, float16") == ["bfloat16", "float16"]
    with pytest.raises(race.UsageError, match=r"unknown dtype 'bf16'; did you mean 'bfloat16'\?"):
        race.parse_dtypes("bf16")
    with pytest.raises(race.UsageError, match=r"--dtypes is empty"):
        race.parse_dtypes(" , ")


def test_plan_keeps_only_the_dtypes_an_op_declares() -> None:
    plan = race.case_plan(PROBLEMS["matmul_bias_relu"], ["bfloat16", "float32"])
    assert plan == [((4096, 4096, 4096), "bfloat16"), ((8192, 4096, 1024), "bfloat16")]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--ops", "softmaxx"], "--ops: no demo op named 'softmaxx'; did you mean 'softmax'?"),
        (["--found", "softmax"], "--found 'softmax' is not OP=path"),
        (["--found", "softmax=no/such/file.py"], "'no/such/file.py' is not a file"),
        (["--rounds", "0"], "argument --rounds: '0' is not a positive integer"),
        (["--ops", "matmul_bias_relu", "--dtypes", "float32"], "declares any of --dtypes float32"),
        (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
        (["--out", "no/such/dir/race.json"], "no directory 'no/such/dir'; create it first"),
        (["--device", "cpu"], "--device cpu: no CUDA device to time on; run on a GPU host"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert race.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("compile_race: error: ")
    assert message in err


# --- scoring and rendering ----------------------------------------------------------------------


def test_rounds_rotate_so_each_contestant_leads_once() -> None:
    names = ["eager", "compile", "demo"]
    orders = [race.rotated(names, r) for r in range(3)]
    assert orders == [
        ["eager", "compile", "demo"],
        ["compile", "demo", "eager"],
        ["demo", "eager", "compile"],
    ]
    assert race.rotated(names, 4) == orders[1]


def test_bytes_count_tensors_only() -> None:
    values = [torch.zeros(4, 8, dtype=torch.bfloat16), torch.zeros(3), 3, None]
    assert race.tensor_bytes(values) == 4 * 8 * 2 + 3 * 4


def test_check_uses_the_dtype_tolerance() -> None:
    ref = torch.linspace(1.0, 2.0, 64)
    near = ref * (1 + 1e-3)
    assert race.check(near.bfloat16(), (ref.bfloat16(),), "bfloat16") is None
    failure = race.check(near, (ref,), "float32")
    assert failure is not None
    assert failure.startswith("wrong output: Tensor-likes are not close!")
    assert "\n" not in failure
    assert race.check((ref, ref), (ref,), "float32") is not None


def _race_case() -> Any:
    """A row-op case: eager, compile timed, max-autotune failed, demo above the ceiling."""
    case = race.Case("softmax", [4, 8], "bfloat16", bytes=10**9, flops=None)
    case.entries = [
        race.Entry("eager", first_call_s=0.01, timing=_timing(2.0, 1.5, 2.5)),
        race.Entry("compile", first_call_s=12.5, timing=_timing(1.0, 0.9, 1.1)),
        race.Entry("max-autotune", error="BackendCompilerFailed: a|b"),
        race.Entry("demo", first_call_s=0.2, timing=_timing(0.4, 0.4, 0.4)),
    ]
    return case


def test_score_compares_with_the_best_compile_mode_and_the_copy_ceiling() -> None:
    case = _race_case()
    race.score(case, CEILINGS)
    eager, compile_, autotune, demo = case.entries
    assert eager.vs_best_compile == pytest.approx(0.5)
    assert compile_.vs_best_compile == pytest.approx(1.0)
    assert demo.vs_best_compile == pytest.approx(2.5)
    assert autotune.vs_best_compile is None and autotune.ceiling_fraction is None
    assert eager.achieved == pytest.approx(500.0)  # 1 GB in 2 ms
    assert eager.ceiling_fraction == pytest.approx(0.25)
    case.entries[2] = race.Entry("max-autotune", timing=_timing(0.8, 0.8, 0.8))
    race.score(case, CEILINGS)
    assert case.entries[0].vs_best_compile == pytest.approx(0.4)


def test_score_without_a_timed_compile_mode_still_rates() -> None:
    case = race.Case("matmul_bias_relu", [8, 8, 8], "bfloat16", bytes=1, flops=10**12)
    case.entries = [race.Entry("demo", timing=_timing(4.0, 4.0, 4.0))]
    race.score(case, CEILINGS)
    (demo,) = case.entries
    assert demo.vs_best_compile is None
    assert demo.achieved == pytest.approx(250.0)  # 1 TFLOP in 4 ms, whatever the bytes
    assert demo.ceiling_fraction == pytest.approx(0.5)
    assert case.unit == "TFLOP/s"


def test_table_is_pinned_markdown() -> None:
    case = _race_case()
    race.score(case, CEILINGS)
    assert race.render_op("softmax", [case]) == "\n".join(
        [
            "### softmax",
            "",
            "| shape | dtype | contestant | median ms [q10-q90] | vs best compile | of ceiling "
            "| first call s | status |",
            "|---|---|---|---|---|---|---|---|",
            "| 4x8 | bfloat16 | eager | 2.0000 [1.5000-2.5000] | 0.50x | 25% (500 GB/s) | 0.01 "
            "| ok |",
            "| 4x8 | bfloat16 | compile | 1.0000 [0.9000-1.1000] | 1.00x | 50% (1000 GB/s) "
            "| 12.50 | ok |",
            "| 4x8 | bfloat16 | max-autotune | - | - | - | - "
            "| FAILED: BackendCompilerFailed: a\\|b |",
            "| 4x8 | bfloat16 | demo | 0.4000 [0.4000-0.4000] | 2.50x | 125% (2500 GB/s) | 0.20 "
            "| above the ceiling: timing suspect |",
        ]
    )


def test_long_failures_are_shortened_in_the_table() -> None:
    case = race.Case("softmax", [4, 8], "bfloat16", bytes=1, flops=None)
    case.entries = [race.Entry("demo", error="x" * 500)]
    status = race.render_op("softmax", [case]).splitlines()[-1].split(" | ")[-1]
    assert status == "FAILED: " + "x" * 117 + "... |"


def test_header_names_card_versions_and_ceilings() -> None:
    hardware = {"name": "NVIDIA H100", "driver": "550.54", "cuda": "12.4", "torch": "2.11.0"}
    assert race.header({**hardware, "triton": "3.6.0"}, CEILINGS) == (
        "NVIDIA H100 | driver 550.54 | CUDA 12.4 | torch 2.11.0 | triton 3.6.0 | "
        "ceilings: copy 2000 GB/s, bf16 matmul 500 TFLOP/s"
    )


# --- one race, faked on the CPU -----------------------------------------------------------------


class FakeTimer:
    """Stands in for `harness.judge.timing.Timer`: runs each call, reports `fake_ms`."""

    def __init__(self, calls: int) -> None:
        self.device = torch.device("cpu")
        self.config = TimingConfig(calls_per_round=calls)
        self.warmed: list[object] = []
        self.timed: list[object] = []  # the function behind each batch of timed calls

    def warm_up(self, fn: Any, prepare: Callable[[int], None]) -> None:
        self.warmed.append(fn.func)
        fn()

    def time_calls(self, fn: Any, prepare: Callable[[int], None], n: int) -> CallTimes:
        self.timed.append(fn.func)
        results = [fn() for _ in range(n)]
        ms = float(getattr(fn.func, "fake_ms", 1.0))
        return CallTimes(event_ms=[ms] * n, wall_ms=[ms] * n, last_result=results[-1])


def test_race_checks_times_and_scores_every_contestant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    modes: list[tuple[str | None, bool]] = []

    def fake_compile(fn: Callable[..., object], *, mode: str | None, dynamic: bool) -> Any:
        modes.append((mode, dynamic))

        def compiled(*args: object) -> object:
            return fn(*args)

        compiled.fake_ms = 0.5 if mode is None else 0.25  # type: ignore[attr-defined]
        return compiled

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    wrong = _module(tmp_path, "def softmax(x):\n    return x.clone()")
    timer = FakeTimer(calls=2)

    (case,) = race.race_op(
        PROBLEMS["softmax"], [((4, 16), "float32")], wrong, timer, CEILINGS, rounds=3
    )

    assert [e.name for e in case.entries] == ["eager", "compile", "max-autotune", "demo", "kevolve"]
    assert modes == [(None, False), ("max-autotune-no-cudagraphs", False)]
    assert case.bytes == 2 * 4 * 16 * 4 and case.flops is None
    eager, compile_, autotune, _, kevolve = case.entries
    assert kevolve.error is not None and kevolve.error.startswith("wrong output: ")
    assert kevolve.timing is None and kevolve.first_call_s is not None
    assert eager.timing is not None and eager.timing.n == 3 * 2
    assert eager.samples_ms == [1.0] * 6
    assert (eager.vs_best_compile, compile_.vs_best_compile) == (0.25, 0.5)
    assert autotune.vs_best_compile == 1.0
    # The demo's Triton kernel may or may not run on CPU tensors; count whatever was timed.
    timed = [e for e in case.entries if e.timing is not None]
    assert len(timer.warmed) == len(timed)
    assert len(timer.timed) == 3 * len(timed)
    leaders = {id(timer.timed[r * len(timed)]) for r in range(3)}
    assert len(leaders) == 3
