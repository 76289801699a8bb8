"""`python -m mutation run [MODULE ...]`: mutate each guard module and report what survives."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mutation.guards import GUARDS_FILE, Guard, GuardsError, load_guards, select_guards
from mutation.scoreboard import ModuleScore, mutant_diff, run_mutmut, score
from mutation.workspace import build_workspace

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".cache" / "mutation"  # ignored by git; one workspace per module


def main(argv: list[str] | None = None) -> int:
    """Run the command line; 0 when no module has an unexplained survivor."""
    args = _parser().parse_intermixed_args(argv)
    try:
        guards = select_guards(load_guards(args.guards), args.modules)
    except GuardsError as error:
        print(f"mutation: {error}", file=sys.stderr)
        return 2
    if args.command == "list":
        for guard in guards:
            print(f"{guard.path}: {' '.join(guard.tests)}")
        return 0
    tallies = [_run_one(guard, args.jobs) for guard in guards]
    print("\nsummary")
    for t in tallies:
        print(f"  {t.line()}")
    return 1 if any(t.survived or t.stale for t in tallies) else 0


def _run_one(guard: Guard, jobs: int) -> ModuleScore:
    """Mutate one module in its own workspace and print its counts and survivors."""
    workspace = build_workspace(ROOT, guard, WORK / guard.dotted)
    log = WORK / f"{guard.dotted}.log"
    print(f"{guard.path}: mutating against {' '.join(guard.tests)} (log: {log})", flush=True)
    status = run_mutmut(workspace, jobs, log)
    if status != 0:
        print(f"  mutmut exited {status}; see {log}", flush=True)
    result = score(workspace, guard)
    print(f"  {result.line()}")
    for name in result.survived:
        print(f"\n  survived ({result.statuses[name]}): {name}")
        print("    " + mutant_diff(workspace, name).replace("\n", "\n    "))
    for name in result.stale:
        print(f"  listed as explained but killed or gone, remove it from guards.toml: {name}")
    print(flush=True)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mutation", description=__doc__)
    parser.add_argument("command", choices=["run", "list"], help="run mutmut, or list the guards")
    parser.add_argument("modules", nargs="*", help="guard modules (path or dotted); default all")
    parser.add_argument(
        "--guards", type=Path, default=GUARDS_FILE,
        help="the guards file (default mutation/guards.toml; another one, e.g. an older list of "
        "tests, to count what those tests kill)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="mutants tested at once"
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
