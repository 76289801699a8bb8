"""Per-hardware variants merged into one kernel module: names kept apart, the right one picked,
and the merged module judged correct by the harness like any candidate."""

from __future__ import annotations

import importlib.util
import types
from pathlib import Path

import pytest
import torch
from kevolve.bot.variants import VariantError, combine, matches
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import Verdict
from kevolve.harness.spec.load import load_problems, select

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "demo"
ORIGINAL = (DEMO / "demo_kernels" / "bias_gelu.py").read_text()
H100 = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 4096").replace(
    "        BLOCK=BLOCK,\n", "        BLOCK=BLOCK,\n        num_warps=8,\n"
)
A10G = ORIGINAL.replace("BLOCK = 1024", "BLOCK = 512")


def load(source: str, where: Path) -> types.ModuleType:
    """Import the merged module from a file (Triton reads a kernel's source from its file)."""
    path = where / "merged_kernels.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("merged_kernels", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_variant_keeps_its_own_names_and_parameters_shadow_constants(tmp_path: Path) -> None:
    merged = combine("bias_gelu", ORIGINAL, {"h100": H100, "nvidia-a10g": A10G})
    module = load(merged, tmp_path)
    assert (module.BLOCK__original, module.BLOCK__h100, module.BLOCK__nvidia_a10g) == (
        1024,
        4096,
        512,
    )
    # The kernel's own `BLOCK: tl.constexpr` parameter is not the module constant.
    assert "tl.arange(0, BLOCK)" in merged and "tl.arange(0, BLOCK__" not in merged
    assert "BLOCK=BLOCK__h100, num_warps=8" in merged


@pytest.mark.parametrize(
    ("gpu", "chosen"),
    [
        ("NVIDIA H100 80GB HBM3", "bias_gelu__h100"),
        ("NVIDIA A10G", "bias_gelu__nvidia_a10g"),
        ("NVIDIA H200", "bias_gelu__original"),  # no winner for this kind: the repo's kernel
    ],
)
def test_the_dispatcher_picks_by_the_gpu_name(
    gpu: str, chosen: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load(combine("bias_gelu", ORIGINAL, {"h100": H100, "nvidia-a10g": A10G}), tmp_path)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: gpu)
    assert module._pick(torch.device("cuda", 0)).__name__ == chosen
    assert module._pick(torch.device("cpu")).__name__ == "bias_gelu__original"


@pytest.mark.parametrize(
    ("gpu", "chosen"),
    [("NVIDIA H100 NVL", "bias_gelu__h100_nvl"), ("NVIDIA H100 80GB HBM3", "bias_gelu__h100")],
)
def test_a_longer_label_is_tried_before_one_it_contains(
    gpu: str, chosen: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    module = load(combine("bias_gelu", ORIGINAL, {"h100": H100, "h100-nvl": A10G}), tmp_path)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: gpu)
    assert module._pick(torch.device("cuda", 0)).__name__ == chosen
    assert matches("h100", gpu) and not matches("a10g", gpu)


def test_a_default_variant_runs_where_no_label_matches(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    winners = {"h100": H100, "nvidia-a10g": A10G}
    module = load(combine("bias_gelu", ORIGINAL, winners, default="nvidia-a10g"), tmp_path)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device: "NVIDIA H100 80GB HBM3")
    assert module._pick(torch.device("cpu")).__name__ == "bias_gelu__nvidia_a10g"
    assert module._pick(torch.device("cuda", 0)).__name__ == "bias_gelu__h100"
    with pytest.raises(VariantError, match="default 'l4' is none of the variants"):
        combine("bias_gelu", ORIGINAL, winners, default="l4")


def test_the_merged_module_is_judged_correct(tmp_path: Path) -> None:
    problem = select(load_problems(DEMO), "bias_gelu", DEMO)
    merged = combine("bias_gelu", ORIGINAL, {"h100": H100})
    ev = evaluate(problem, merged, EvalOptions(device="cpu", cache_dir=tmp_path))
    assert ev.verdict is Verdict.CORRECT, ev.reason


def test_bad_variants_are_named() -> None:
    assert combine("bias_gelu", ORIGINAL, {}) == ORIGINAL
    with pytest.raises(VariantError, match="variant h100: defines no top-level `bias_gelu`"):
        combine("bias_gelu", ORIGINAL, {"h100": "def other():\n    pass\n"})
    with pytest.raises(VariantError, match=r"variant h100: not valid Python \(line 1\)"):
        combine("bias_gelu", ORIGINAL, {"h100": "def (:\n"})
    with pytest.raises(VariantError, match="collide"):
        combine("bias_gelu", ORIGINAL, {"h-100": H100, "h_100": H100})
