"""What the subcommands share: exit codes, error output, argument types."""

from __future__ import annotations

import argparse
import re
import sys

EXIT_CORRECT, EXIT_VERDICT, EXIT_USAGE = 0, 1, 2


def usage_error(message: str) -> int:
    """Print a usage or spec error the way every subcommand does; the exit status for it."""
    print(f"kevolve: error: {message}", file=sys.stderr)
    return EXIT_USAGE


def device_name(text: str) -> str:
    """An argparse type: the device names `kevolve check` understands."""
    if re.fullmatch(r"auto|cpu|cuda(:\d+)?", text):
        return text
    raise argparse.ArgumentTypeError(f"unknown device {text!r}; use cpu, cuda, cuda:N or auto")
