"""`kevolve check`: judge one candidate kernel module against the repo's kernel (or another)."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import (
    EXIT_CORRECT,
    EXIT_VERDICT,
    add_problem_arguments,
    device_name,
    load_problem,
    usage_error,
)
from kevolve.bot.settings import cli_settings
from kevolve.harness.evaluate import CompileArm, EvalOptions, HarnessError, evaluate
from kevolve.harness.report import render
from kevolve.harness.spec.checks import top_level_bindings
from kevolve.harness.spec.load import SpecError
from kevolve.harness.spec.problem import Problem


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    check = sub.add_parser(
        "check",
        help="judge one candidate kernel module",
        description="Judge one candidate: correctness on CPU (Triton's "
        "interpreter) or GPU, and timing on a GPU against the baseline (the config's kernel, "
        "or --baseline), eager PyTorch and torch.compile of the reference.",
    )
    add_problem_arguments(check)
    check.add_argument("--candidate", type=Path, required=True, help="candidate module (.py)")
    check.add_argument(
        "--baseline",
        type=Path,
        help="time against this module instead of the config's kernel (e.g. the kernel as it "
        "was before a pull request: git show BASE:path > /tmp/baseline.py)",
    )
    check.add_argument(
        "--device", default="auto", type=device_name, help="cpu, cuda, cuda:N or auto (default)"
    )
    check.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds allowed for any one step of the candidate (default 120)",
    )
    check.add_argument("--trials", type=int, default=5, help="input trials per case (min 5)")
    check.add_argument("--seed", type=int, default=0, help="seed of the public trials")
    check.add_argument("--no-time", action="store_true", help="check correctness only")
    check.add_argument(
        "--no-compile",
        action="store_true",
        help="do not time the reference under torch.compile (default and max-autotune) beside "
        "eager; compiling can take minutes the first time",
    )
    check.add_argument("--json", action="store_true", help="print one JSON object")
    check.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """`kevolve check`: exit 0 exactly when the verdict is correct, 1 otherwise, 2 on bad input."""
    try:
        problem = with_baseline(load_problem(args), args.baseline)
        source = args.candidate.read_text()
    except (SpecError, BaselineError) as exc:
        return usage_error(str(exc))
    except UnicodeDecodeError:
        return usage_error(
            f"cannot read candidate {args.candidate}: it is not UTF-8 text. Fix: pass "
            f"--candidate PATH to a Python source file"
        )
    except OSError as exc:
        return usage_error(
            f"cannot read candidate {args.candidate}: {exc.strerror}. Fix: pass "
            f"--candidate PATH to an existing Python file"
        )
    if args.timeout <= 0:
        return usage_error("--timeout must be a positive number of seconds")
    if args.trials < 5:
        return usage_error("--trials must be at least 5 (the last trial uses a secret seed)")
    options = EvalOptions(
        device=args.device,
        timeout=args.timeout,
        trials=args.trials,
        base_seed=args.seed,
        time=not args.no_time,
        cache_dir=cli_settings().cache_dir,
        compile_arm=CompileArm.OFF if args.no_compile else CompileArm.ALWAYS,
    )
    try:
        ev = evaluate(problem, source, options)
    except HarnessError as exc:
        return usage_error(str(exc))
    print(json.dumps(ev.to_dict(), indent=2) if args.json else render(ev), end="\n")
    return EXIT_CORRECT if ev.ok else EXIT_VERDICT


class BaselineError(Exception):
    """A --baseline that cannot stand in for the config's kernel."""


def with_baseline(problem: Problem, baseline: Path | None) -> Problem:
    """The problem timed against `baseline` instead of its kernel file (None: as configured)."""
    if baseline is None:
        return problem
    if problem.kernel is None:
        raise BaselineError(
            "--baseline is for ops of a repo config; a KernelBench file's baseline is its Model. "
            "Fix: drop --baseline"
        )
    path = baseline.resolve()
    fix = f"Fix: pass --baseline PATH to a Python source file that defines {problem.entry}"
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except OSError as exc:
        raise BaselineError(f"cannot read baseline {baseline}: {exc.strerror}. {fix}") from None
    except (SyntaxError, ValueError) as exc:
        raise BaselineError(f"baseline {baseline} does not parse ({exc}). {fix}") from None
    if problem.entry not in top_level_bindings(tree):
        raise BaselineError(f"baseline {baseline} defines no {problem.entry!r}. {fix}")
    return dataclasses.replace(problem, kernel=str(path))
