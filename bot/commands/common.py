"""What the subcommands share: exit codes, error output, argument types."""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
from pathlib import Path
from typing import NoReturn

from kevolve.harness.search.cluster import EXECUTORS, ClusterError, parse_address
from kevolve.harness.spec.load import load_problems, narrow, select
from kevolve.harness.spec.problem import Problem

EXIT_CORRECT, EXIT_VERDICT, EXIT_USAGE = 0, 1, 2


class Errors:
    """How usage errors are written: a line on stderr, or (under --json) a JSON object on
    stdout, where a script reading the command's JSON looks. Set once, by `main`."""

    as_json = False


def usage_error(message: str) -> int:
    """Print a usage or spec error the way every subcommand does; the exit status for it."""
    if Errors.as_json:
        print(json.dumps({"error": message, "exit": EXIT_USAGE}))
    else:
        print(f"kevolve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


class Parser(argparse.ArgumentParser):
    """argparse whose own errors (a bad flag, a missing argument) follow `Errors`."""

    def error(self, message: str) -> NoReturn:
        if Errors.as_json:
            print(json.dumps({"error": f"{self.prog}: {message}", "exit": EXIT_USAGE}))
            sys.exit(EXIT_USAGE)
        super().error(message)


def configure_logging() -> None:
    """Log INFO and above to stderr with time and source (the long-running commands)."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


def device_name(text: str) -> str:
    """An argparse type: the device names `kevolve check` understands."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or auto")


def whole(text: str, least: int = 1) -> int:
    """A whole number of at least `least` (an argparse type)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}, not {value}")
    return value


def count(text: str) -> int:
    """A whole number of at least 0 (an argparse type)."""
    return whole(text, 0)


def positive(text: str) -> float:
    """A number above 0 (an argparse type): minutes, seconds, dollars."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, not {text}")
    return value


def executor_name(text: str) -> str:
    """An argparse type: where evaluations run."""
    if text in EXECUTORS:
        return text
    raise argparse.ArgumentTypeError(f"unknown executor {text!r}; use {' or '.join(EXECUTORS)}")


def ray_address(text: str) -> str:
    """An argparse type: a Ray cluster's address (`host:port`, `ray://host:port` or `auto`)."""
    try:
        parse_address(text)
    except ClusterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """--executor and --ray-address: where a search's evaluations run."""
    parser.add_argument(
        "--executor",
        default="local",
        type=executor_name,
        help="where evaluations run: local (this machine) or ray (a Ray cluster, one GPU each)",
    )
    parser.add_argument(
        "--ray-address",
        type=ray_address,
        help="with --executor ray: the cluster (host:port, ray://host:port or auto); "
        "default: $RAY_ADDRESS, or the Ray this machine runs, else a new one here",
    )


def executor_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the executor arguments together, with the fix; None when fine."""
    if args.ray_address and args.executor != "ray":
        return "--ray-address is for --executor ray. Fix: add --executor ray, or drop it"
    return None


def add_problem_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments that pick the problem: SPEC, --op, --dtype and --shape."""
    parser.add_argument(
        "spec",
        type=Path,
        help="a repo directory with [tool.kevolve] or kevolve.toml, or a KernelBench .py file",
    )
    parser.add_argument("--op", help="which op of the repo config (needed when there are several)")
    parser.add_argument(
        "--dtype",
        action="append",
        default=[],
        help="only this declared dtype (repeatable; default: every declared dtype)",
    )
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        help="time at this shape, e.g. 8192x8192 (repeatable; default: the declared shapes)",
    )


def load_problem(args: argparse.Namespace) -> Problem:
    """The problem the arguments pick; raises SpecError naming what to fix."""
    problem = select(load_problems(args.spec), args.op, args.spec)
    return narrow(problem, args.dtype, args.shape, args.spec)
