"""The `kevolve` command: one subcommand per job, each a thin shell over the packages."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata

from kevolve.bot.commands.common import Errors, Parser, usage_error
from kevolve.bot.settings import SettingsError

ABOUT = (
    "kevolve keeps GPU kernels fast: an LLM agent and a launch-parameter tuner propose Triton "
    "kernels, a hardened harness judges each against the PyTorch reference and times it on the "
    "GPU, and the winners come back as pull requests (as a GitHub App, or locally with demo)."
)

# Subcommand -> (module, one-line help). Only the chosen command's module is imported, so a GPU
# host running `kevolve check` needs neither the web stack nor anything else it does not use.
COMMANDS = {
    "check": ("kevolve.bot.commands.check", "judge one candidate kernel module"),
    "optimize": ("kevolve.bot.commands.optimize", "search for a faster kernel for one op"),
    "serve": ("kevolve.bot.commands.serve", "run the GitHub App (webhook service)"),
    "worker": (
        "kevolve.bot.commands.work",
        "handle stored deliveries and run jobs (serve starts one)",
    ),
    "demo": ("kevolve.bot.commands.demo", "run the whole pipeline on the example kernels, locally"),
    "run-job": (
        "kevolve.bot.commands.run_job",
        "run one search job here and post its result to the bot",
    ),
    "app": ("kevolve.bot.commands.github_app", "register kevolve as a GitHub App (manifest flow)"),
    "status": ("kevolve.bot.commands.standing", "show where a search stands, from its state file"),
    "ui": ("kevolve.bot.commands.ui", "browse a search or a demo's folder in the dashboard"),
}


def build_parser(chosen: str | None) -> argparse.ArgumentParser:
    """The parser: full arguments for the chosen subcommand, a help line for the others."""
    parser = Parser(prog="kevolve", description=ABOUT)
    parser.add_argument("--version", action="version", version=f"kevolve {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if name == chosen:
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=summary)
    return parser


def _version() -> str:
    """The installed distribution's version."""
    try:
        return metadata.version("kevolve")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `kevolve` console command."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    Errors.as_json = "--json" in args_list
    chosen = next((a for a in args_list if not a.startswith("-")), None)
    args = build_parser(chosen if chosen in COMMANDS else None).parse_args(args_list)
    try:
        code: int = args.run(args)
    except SettingsError as exc:  # a KEVOLVE_* variable that makes no sense: say which
        return usage_error(str(exc))
    return code


if __name__ == "__main__":
    sys.exit(main())
