"""`kevolve run-job`: the entry a runner calls (a GitHub Actions job, or any host).

Runs one job's search on this machine, writes the result file, and posts it back to the bot when
told where. Needs only kevolve's core and the host's torch and triton, never the web stack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import (
    EXIT_VERDICT,
    add_executor_arguments,
    device_name,
    executor_error,
    positive,
    usage_error,
    whole,
)
from kevolve.bot.commands.optimize import PAUSED, add_llm_arguments, llm_config, paused_line
from kevolve.bot.progress import ProgressLine
from kevolve.bot.settings import cli_settings
from kevolve.harness.search.status import StopKind
from kevolve.runners.intake import read_stop
from kevolve.runners.job import API_KEY_VARS, JobError, JobSpec, run_job, with_llm
from kevolve.runners.post import post_result
from kevolve.runners.runner import RunnerError

TOKEN_VAR = "KEVOLVE_JOB_TOKEN"  # the token never comes as a flag: flags show in process lists


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "run-job",
        help="run one search job here and post its result to the bot",
        description="Run one job's search in a checkout, write the SearchResult JSON and, with "
        "--bot-url, post it to the bot with the dispatch's token, read from --token-file (which "
        f"is removed before the search starts) or ${TOKEN_VAR}.",
    )
    p.add_argument("--job-id", type=int, required=True, help="the bot's job number")
    p.add_argument("--op", required=True, help="the op to search")
    p.add_argument("--hardware", required=True, help="the hardware label this runner serves")
    p.add_argument("--budget", type=whole, default=40, help="candidates to judge (default 40)")
    p.add_argument("--minutes", type=positive, help="stop after this many minutes")
    p.add_argument("--checkout", type=Path, default=Path("."), help="the repo (default .)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N or auto")
    p.add_argument("--state", type=Path, help="search state (default .kevolve/job-N.sqlite)")
    add_executor_arguments(p)
    p.add_argument("--lessons", type=Path, help="a lessons file to recall from and add to")
    add_llm_arguments(p)
    p.add_argument("--out", type=Path, default=Path("kevolve-result.json"), help="result file")
    p.add_argument("--bot-url", help="post the result to this bot (needs the job's token)")
    p.add_argument(
        "--token-file",
        type=Path,
        help="a file holding the job's token; read, then removed before the search runs",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """0 when the job ran (and its result was posted), 1 when posting failed, 2 on a bad job."""
    try:
        token = _take_token(args.token_file)
    except OSError as exc:
        return usage_error(f"cannot read the job's token from {args.token_file}: {exc.strerror}")
    if args.bot_url and not token:
        return usage_error(f"--bot-url needs the job's token in ${TOKEN_VAR} or --token-file FILE")
    if mismatch := executor_error(args):
        return usage_error(mismatch)
    settings = cli_settings()
    try:
        llm = llm_config(args, settings)
    except ValueError as exc:
        return usage_error(str(exc))
    spec = JobSpec(
        job_id=args.job_id,
        checkout=str(args.checkout.resolve()),
        op=args.op,
        hardware=args.hardware,
        budget=args.budget,
        state=str(args.state or Path(".kevolve") / f"job-{args.job_id}.sqlite"),
        cache_dir=str(settings.cache_dir),
        device=args.device,
        minutes=args.minutes,
        executor=args.executor,
        ray_address=args.ray_address,
        lessons=str(args.lessons) if args.lessons else None,
    )
    spec = with_llm(spec, llm, args.llm_share)
    # The LLM key (an Actions secret in the step's env) goes to the search alone: out of our
    # environment before anything runs, so no judge of the repo's code inherits it.
    keys = {k: os.environ.pop(k) for k in API_KEY_VARS if k in os.environ}
    progress = ProgressLine(args.budget, every_s=settings.progress_every_s)
    try:
        result = run_job(spec, {**os.environ, **keys}, on_progress=progress)
    except JobError as exc:
        return usage_error(str(exc))
    finally:
        progress.close()
    args.out.write_text(json.dumps(result, indent=2))
    print(f"kevolve run-job: job {args.job_id} evaluated {result['evaluated']}; wrote {args.out}")
    # Paused by the kind the search gives (an engine that pauses always lists the prompts).
    if read_stop(result) is StopKind.PAUSED:
        print(paused_line(list(result["waiting"]), llm), file=sys.stderr)
        return PAUSED
    if not args.bot_url:
        return 0
    try:
        status = post_result(args.bot_url, args.job_id, token, result)
    except RunnerError as exc:
        print(f"kevolve run-job: error: {exc}")
        return EXIT_VERDICT
    print(f"kevolve run-job: posted to {args.bot_url} ({status})")
    return 0


def _take_token(path: Path | None) -> str:
    """The job's token from `path` (then removed) or the environment (then dropped from it), so
    nothing the search runs inherits or finds it."""
    env_token = os.environ.pop(TOKEN_VAR, "")
    if path is None:
        return env_token.strip()
    token = path.read_text(encoding="ascii", errors="replace").strip()
    path.unlink()
    return token
