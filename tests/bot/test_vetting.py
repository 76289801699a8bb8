"""Tests for `bot.vetting`: the kernel file a winner replaces is the one its job recorded, and
must be what the repo's config at the job's commit names; a job that recorded none takes the
config's, as every job did before jobs carried their kernel files."""

from __future__ import annotations

import pytest
from kevolve.bot.publisher import Tree
from kevolve.bot.vetting import Unfit, kernel_of, vet
from kevolve.harness.spec.problem import Problem
from kevolve.runners.intake import read_result

from tests.bot.fixtures import DEMO, demo_result

TREE = Tree(DEMO, "c0ffee" + "0" * 34)
KERNEL = "demo_kernels/softmax.py"
ORIGINAL = (DEMO / KERNEL).read_text()


class Approves:
    """The bot's own check of a winner, answering that it is correct."""

    def check(self, problem: Problem, source: str) -> str | None:
        return None


def test_a_recorded_kernel_file_the_config_names_is_the_one_read() -> None:
    problem, kernel, original = kernel_of(TREE, "softmax", KERNEL)
    assert (problem.name, kernel, original) == ("softmax", KERNEL, ORIGINAL)


def test_a_job_that_recorded_no_kernel_file_takes_the_configs() -> None:
    assert kernel_of(TREE, "softmax") == kernel_of(TREE, "softmax", KERNEL)


def test_a_recorded_kernel_file_the_config_no_longer_names_is_refused() -> None:
    with pytest.raises(Unfit) as refused:
        kernel_of(TREE, "softmax", "demo_kernels/rmsnorm.py")
    assert str(refused.value) == (
        "the job was queued for softmax's kernel file 'demo_kernels/rmsnorm.py', but the repo's "
        "config at c0ffee0 names 'demo_kernels/softmax.py'"
    )


def test_a_winner_is_vetted_against_the_kernel_file_its_job_recorded() -> None:
    result = read_result(demo_result("softmax", ORIGINAL + "# tuned\n", 7), 7)
    vetted = vet(TREE, "softmax", result, Approves(), untimed=False, recorded=KERNEL)
    assert (vetted.kernel, vetted.original, vetted.gate.passed) == (KERNEL, ORIGINAL, True)
    with pytest.raises(Unfit, match=r"queued for softmax's kernel file 'softmax\.py'"):
        vet(TREE, "softmax", result, Approves(), untimed=False, recorded="softmax.py")
