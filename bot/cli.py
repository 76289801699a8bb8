"""The `kevolve` command: one subcommand per job, each a thin shell over the packages."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.settings import cli_settings
from harness.evaluate import EvalOptions, HarnessError, evaluate
from harness.report import render
from harness.spec import SpecError, load_problems, select

EXIT_CORRECT, EXIT_VERDICT, EXIT_USAGE = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="kevolve", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    check = sub.add_parser(
        "check",
        help="judge one candidate kernel module",
        description="Judge one candidate: correctness on CPU (Triton's "
        "interpreter) or GPU, and timing against the baseline on a GPU.",
    )
    check.add_argument(
        "spec",
        type=Path,
        help="a repo directory with [tool.kevolve] or "
        "kevolve.toml, or a KernelBench-format .py file",
    )
    check.add_argument("--candidate", type=Path, required=True, help="candidate module (.py)")
    check.add_argument("--op", help="which op of the repo config (needed when there are several)")
    check.add_argument(
        "--device", default="auto", type=_device, help="cpu, cuda, cuda:N or auto (default)"
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
    check.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run_check(args: argparse.Namespace) -> int:
    """`kevolve check`: exit 0 exactly when the verdict is correct, 1 otherwise, 2 on bad input."""
    try:
        problem = select(load_problems(args.spec), args.op, args.spec)
        source = args.candidate.read_text()
    except SpecError as exc:
        return _usage_error(str(exc))
    except UnicodeDecodeError:
        return _usage_error(
            f"cannot read candidate {args.candidate}: it is not UTF-8 text. Fix: pass "
            f"--candidate PATH to a Python source file"
        )
    except OSError as exc:
        return _usage_error(
            f"cannot read candidate {args.candidate}: {exc.strerror}. Fix: pass "
            f"--candidate PATH to an existing Python file"
        )
    if args.timeout <= 0:
        return _usage_error("--timeout must be a positive number of seconds")
    if args.trials < 5:
        return _usage_error("--trials must be at least 5 (the last trial uses a secret seed)")
    options = EvalOptions(
        device=args.device,
        timeout=args.timeout,
        trials=args.trials,
        base_seed=args.seed,
        time=not args.no_time,
        cache_dir=cli_settings().cache_dir,
    )
    try:
        ev = evaluate(problem, source, options)
    except HarnessError as exc:
        return _usage_error(str(exc))
    print(json.dumps(ev.to_dict(), indent=2) if args.json else render(ev), end="\n")
    return EXIT_CORRECT if ev.ok else EXIT_VERDICT


def _device(text: str) -> str:
    """An argparse type: the device names `kevolve check` understands."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or auto")


def _usage_error(message: str) -> int:
    print(f"kevolve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kevolve` console command."""
    args = build_parser().parse_args(argv)
    commands = {"check": run_check}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
