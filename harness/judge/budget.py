"""`Budgets`: how long a candidate's call may run, and how long it may keep a timer waiting.

A call that hangs used to run until the evaluation's timeout (120 s by default) while holding the
GPU, so every other evaluation's timing waited for it. Now each call's budget comes from what the
judge measured itself: the seconds it took to make the same inputs and compute the references
(float64 and float32, slower than any baseline), times `factor`, plus a floor. A case's first
call may compile: it gets `compile_s` more, or, when its kernels were compiled ahead of the GPU
hold, `tune_config_s` per autotune config the compile pass saw (their benchmark runs under the
hold). A call whose reply carries the case's outputs gets their bytes at `transfer_mib_s` on top:
at KernelBench's sizes (6-7 GiB an output) moving them takes longer than computing anything.
The evaluation's timeout stays the outer bound. A call past its budget is killed and the verdict
says so, naming the budget.

The settings (`CallBudget`) live with the other data that crosses to the judge, in
`harness.evaluation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from kevolve.harness.evaluation import CallBudget
from kevolve.harness.spec.problem import Shape

Case = tuple[Shape, str]
TUNE_CONFIGS_CAP = 1000  # configs a compile pass may report: the worker's word, so capped


@dataclass(frozen=True)
class Budget:
    """Seconds a wait may last, and how they were reached (for the verdict that names them)."""

    seconds: float
    why: str


class Budgets:
    """One evaluation's budgets, from the judge's own measured time per case."""

    def __init__(self, config: CallBudget, timeout: float, interpreter: bool) -> None:
        self.config = config
        self.timeout = timeout
        self.floor = config.cpu_floor_s if interpreter else config.floor_s
        self.judge_s: dict[Case, float] = {}
        self.tune_configs: dict[Case, int] = {}  # cases compiled ahead, and their configs
        self.output_bytes: dict[Case, int] = {}  # the bytes of a case's outputs

    def observe(self, case: Case, seconds: float, output_bytes: int = 0) -> None:
        """Record the judge's own seconds for one trial of `case` (the least is kept) and the
        bytes of the case's outputs (what a reply that returns them carries)."""
        self.judge_s[case] = min(seconds, self.judge_s.get(case, math.inf))
        self.output_bytes[case] = max(0, output_bytes)

    def compiled_ahead(self, case: Case, tune_configs: int) -> None:
        """Record that the compile pass covered `case`, seeing `tune_configs` autotune configs."""
        self.tune_configs[case] = max(0, min(tune_configs, TUNE_CONFIGS_CAP))

    def ahead(self) -> Budget:
        """The compile pass's budget for one case (it runs no kernel, holds no GPU)."""
        return self._capped(self.config.compile_s, f"{self.config.compile_s:g} s to compile")

    def calls(self, case: Case, n: int, first: bool) -> Budget:
        """The budget of `n` calls on `case`; `first`: they include the case's first call."""
        judge = self.judge_s.get(case)
        if judge is None:
            return Budget(self.timeout, f"the evaluation's timeout ({self.timeout:g} s)")
        per_call = self.floor + self.config.factor * judge
        why = (
            f"{n} call{'s' if n > 1 else ''} x ({self.floor:g} s + {self.config.factor:g} x "
            f"{judge * 1e3:.1f} ms, the judge's own time for the same inputs and references)"
        )
        seconds = n * per_call
        extra, what = self._first_call(case) if first else (0.0, "")
        if extra:
            seconds += extra
            why += f" + {extra:g} s {what}"
        return self._capped(seconds, why)

    def returning(self, budget: Budget, case: Case) -> Budget:
        """`budget` for calls whose reply carries the outputs of `case`: their bytes at the
        transfer rate on top (nothing where no trial of the case was observed)."""
        size = self.output_bytes.get(case, 0)
        seconds = round(size / (self.config.transfer_mib_s * 2**20), 2)
        if seconds < 0.01:
            return budget
        return self.plus(budget, seconds, f"to return {size / 2**30:.2f} GiB of outputs")

    def plus(self, budget: Budget, seconds: float, what: str) -> Budget:
        """`budget` with `seconds` more for `what` (still no more than the timeout)."""
        return self._capped(budget.seconds + seconds, f"{budget.why} + {seconds:g} s {what}")

    def _first_call(self, case: Case) -> tuple[float, str]:
        """Seconds a case's first call gets on top, and what for."""
        configs = self.tune_configs.get(case)
        if configs is None:
            return self.config.compile_s, "to compile (nothing was compiled ahead)"
        extra = min(self.config.compile_s, configs * self.config.tune_config_s)
        return round(extra, 3), f"to benchmark {configs} autotune config(s)"

    def _capped(self, seconds: float, why: str) -> Budget:
        """`seconds`, or the evaluation's timeout where that is shorter."""
        if seconds >= self.timeout:
            return Budget(self.timeout, f"the evaluation's timeout ({self.timeout:g} s)")
        return Budget(round(seconds, 2), why)
