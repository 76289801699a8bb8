"""What the LLM proposer's tests share: a softmax context whose parent the edits apply to."""

from __future__ import annotations

from pathlib import Path

import pytest
from kevolve.harness.evaluation import Evaluation, Verdict
from kevolve.harness.search.candidate import Candidate, Elite
from kevolve.harness.search.proposal import ProposalContext
from kevolve.harness.spec.load import load_problems

ROOT = Path(__file__).resolve().parents[2]
PARENT = (ROOT / "tests/corpus/softmax/good_online.py").read_text()  # has `BLOCK = 256`
MODULE = (ROOT / "examples/demo/demo_kernels/softmax.py").read_text()


@pytest.fixture
def ctx() -> ProposalContext:
    """The demo softmax with one correct parent, the one a SEARCH/REPLACE edit applies to."""
    problem = next(p for p in load_problems(ROOT / "examples/demo") if p.name == "softmax")
    ev = Evaluation(Verdict.CORRECT, "correct", "softmax", "cpu")
    parent = Elite(Candidate(PARENT), 1.0, ev)
    return ProposalContext(problem, MODULE, (parent,), parent)
