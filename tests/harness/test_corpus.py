"""The corpus: cheating and buggy candidates must not pass; legitimate ones must.

Each file under tests/corpus names its expected verdict on its first line (`# expect: ...`) and
its trick on the second. Demo-op candidates live in a folder named for the op; KernelBench ones
are named `<problem>__<name>.py`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.evaluate import EvalOptions, evaluate
from kevolve.harness.evaluation import Verdict
from kevolve.harness.spec.load import load_problems, select
from kevolve.harness.spec.problem import Problem

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpus"
DEMO = ROOT / "examples" / "demo"
KERNELBENCH = ROOT / "examples" / "kernelbench"
OPTIONS = EvalOptions(device="cpu", timeout=30)
FILES = sorted(CORPUS.glob("*/*.py"))


def _expected(path: Path) -> Verdict:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: <verdict>'"
    return Verdict(first.removeprefix("# expect: ").strip())


def _problem(path: Path) -> Problem:
    if path.parent.name == "kernelbench":
        spec = KERNELBENCH / f"{path.name.split('__')[0]}.py"
        return load_problems(spec)[0]
    return select(load_problems(DEMO), path.parent.name, DEMO)


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.stem}" for p in FILES])
def test_corpus_candidate_gets_its_verdict(path: Path) -> None:
    ev = evaluate(_problem(path), path.read_text(), OPTIONS)
    assert ev.verdict is _expected(path), ev.reason
    assert ev.reason
    if ev.verdict is Verdict.CORRECT:
        assert not ev.timed and "nothing was timed" in ev.reason
        assert all(c.passed and c.trials >= 5 for c in ev.checks)
        assert ev.kernels and all(k.launches > 0 for k in ev.kernels)


def test_corpus_is_large_and_covers_every_family() -> None:
    verdicts = [_expected(p) for p in FILES]
    assert sum(v is not Verdict.CORRECT for v in verdicts) >= 15
    assert {v for v in verdicts} >= {
        Verdict.CORRECT,
        Verdict.INCORRECT,
        Verdict.REJECTED,
        Verdict.COMPILE_ERROR,
        Verdict.RUNTIME_ERROR,
        Verdict.TIMEOUT,
    }
    good = {p.parent.name for p in FILES if _expected(p) is Verdict.CORRECT}
    assert good >= {"softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu", "kernelbench"}


@pytest.mark.parametrize("op", ["softmax", "rmsnorm", "bias_gelu", "matmul_bias_relu"])
def test_every_demo_kernel_is_correct_on_cpu(op: str) -> None:
    problem = select(load_problems(DEMO), op, DEMO)
    assert problem.kernel_path is not None
    ev = evaluate(problem, problem.kernel_path.read_text(), OPTIONS)
    assert ev.verdict is Verdict.CORRECT, ev.reason
