"""`kevolve optimize`: run (or resume) a search for one op and write its result."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import (
    add_executor_arguments,
    add_problem_arguments,
    count,
    device_name,
    executor_error,
    load_problem,
    positive,
    usage_error,
    whole,
)
from kevolve.bot.progress import ProgressLine
from kevolve.bot.settings import CliSettings, cli_settings
from kevolve.harness.evaluate import EvalOptions, HarnessError
from kevolve.harness.profile import Profiling
from kevolve.harness.search.campaign import LLM_SHARE, OptimizeOptions, optimize
from kevolve.harness.search.cluster import ClusterError
from kevolve.harness.search.engine import SearchConfig
from kevolve.harness.search.llm import LLMConfig, parse_prices
from kevolve.harness.search.result import MIN_SPEEDUP, render_markdown
from kevolve.harness.search.store import StateMismatch
from kevolve.harness.spec.load import SpecError
from kevolve.runners.job import weighted_models

PAUSED = 75  # EX_TEMPFAIL: the search stopped to wait for replies; run it again to go on


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    p = sub.add_parser(
        "optimize",
        help="search for a faster kernel for one op",
        description="Evolve faster kernels with LLM and tuner proposals, judged "
        "by the harness. Re-running the same command resumes the search.",
    )
    add_problem_arguments(p)
    p.add_argument("--budget", type=whole, default=40, help="candidates to judge (default 40)")
    p.add_argument("--minutes", type=positive, help="stop after this many minutes")
    p.add_argument(
        "--patience",
        type=whole,
        default=6,
        help="stop after this many generations without improvement (default 6)",
    )
    p.add_argument("--state", type=Path, help="SQLite state file (default .kevolve/<op>.sqlite)")
    p.add_argument(
        "--lessons",
        type=Path,
        help="what searches learned, per op family and hardware: recalled into prompts and "
        "added to after each search (default: lessons.sqlite beside the state file)",
    )
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N or auto")
    p.add_argument(
        "--no-profile",
        action="store_true",
        help="never profile: by default, with an LLM and Nsight Compute's ncu on the PATH, the "
        "correct kernel each prompt asks to improve is profiled once and its figures go into "
        "the prompt",
    )
    p.add_argument(
        "--parallel",
        type=whole,
        help="evaluations in flight (default: on a GPU one per CPU core, at most 16, else 2; "
        "with --executor ray, the cluster's GPUs, or its CPU slots with --device cpu)",
    )
    add_executor_arguments(p)
    add_llm_arguments(p)
    p.add_argument("--max-tokens", type=whole, help="stop after this many LLM tokens")
    p.add_argument(
        "--per-generation",
        type=whole,
        default=4,
        help="candidates a generation plans at least (default 4; more when more evaluations "
        "are in flight)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the search")
    p.add_argument(
        "--timeout", type=positive, default=120.0, help="seconds per candidate step (default 120)"
    )
    p.add_argument(
        "--min-speedup",
        type=float,
        default=MIN_SPEEDUP,
        help=f"the publish gate's gain at the low end of the 95%% intervals (default "
        f"{MIN_SPEEDUP})",
    )
    p.add_argument("--out", type=Path, help="write the SearchResult JSON here")
    p.add_argument("--json", action="store_true", help="print the result JSON, not markdown")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Exit 0 when the search ran to a stop rule, 2 on bad input."""
    settings = cli_settings()
    try:
        problem = load_problem(args)
        llm = llm_config(args, settings)
    except (SpecError, ValueError) as exc:
        return usage_error(str(exc))
    if args.min_speedup < 1.0:
        return usage_error(f"--min-speedup must be at least 1.0, not {args.min_speedup:g}")
    if mismatch := executor_error(args):
        return usage_error(mismatch)
    state = args.state or Path(".kevolve") / f"{problem.name}.sqlite"
    options = OptimizeOptions(
        search=SearchConfig(
            budget=args.budget,
            minutes=args.minutes,
            patience=args.patience,
            per_generation=args.per_generation,
            max_tokens=args.max_tokens,
            parallel=args.parallel,
            seed=args.seed,
            hardware=args.device,
        ),
        evaluation=EvalOptions(
            device=args.device, timeout=args.timeout, cache_dir=settings.cache_dir
        ),
        state=state,
        lessons=args.lessons or state.parent / "lessons.sqlite",
        llm=llm,
        llm_share=args.llm_share,
        min_speedup=args.min_speedup,
        executor=args.executor,
        ray_address=args.ray_address,
        profiling=None if args.no_profile else Profiling(),
    )
    progress = ProgressLine(args.budget, every_s=settings.progress_every_s)
    try:
        result = optimize(problem, options, on_progress=progress)
    except (StateMismatch, ClusterError) as exc:
        return usage_error(str(exc))
    except HarnessError as exc:
        print(
            f"kevolve: error: {exc}. Every finished evaluation is kept in {options.state}: "
            f"run the same command again to resume",
            file=sys.stderr,
        )
        return 1
    finally:
        progress.close()
    data = result.to_dict()
    if args.out:
        args.out.write_text(json.dumps(data, indent=2))
    if result.waiting:
        print(paused_line(result.waiting, llm), file=sys.stderr)
        return PAUSED
    print(json.dumps(data, indent=2) if args.json else render_markdown(result))
    return 0


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    """The LLM's flags: one transport, its models, prices, the cost cap and repair turns."""
    g = p.add_argument_group("LLM (one transport: an endpoint, a command or a reply queue)")
    g.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (or KEVOLVE_LLM_BASE_URL)")
    g.add_argument(
        "--llm-command",
        help="run this command per prompt: the prompt on stdin, the reply on stdout (or "
        "KEVOLVE_LLM_COMMAND); it gets PATH, HOME, LANG and the variables named in "
        "KEVOLVE_LLM_COMMAND_ENV, nothing else",
    )
    g.add_argument(
        "--llm-queue",
        type=Path,
        help="write prompts to DIR/prompts and read replies from DIR/replies; the search "
        f"stops with exit status {PAUSED} while replies are missing and resumes when rerun",
    )
    g.add_argument(
        "--llm-model",
        help="model, or 'a:0.7,b:0.3' for an ensemble (or KEVOLVE_LLM_MODEL); with a command "
        "or a queue, names the model slots (default: the transport's name)",
    )
    g.add_argument(
        "--llm-price",
        action="append",
        default=[],
        metavar="MODEL=IN,OUT",
        help="USD per million input and output tokens of a model (repeatable)",
    )
    g.add_argument("--max-usd", type=positive, help="stop once the LLM cost reaches this")
    g.add_argument(
        "--llm-share",
        type=float,
        default=LLM_SHARE,
        help=f"share of proposals the LLM makes, the tuner the rest (default {LLM_SHARE}; "
        "1 for the LLM alone)",
    )
    g.add_argument(
        "--repairs",
        type=count,
        default=2,
        help="turns a failed LLM candidate gets to be fixed, with its exact failure (default 2)",
    )


def llm_config(args: argparse.Namespace, settings: CliSettings) -> LLMConfig | None:
    """The LLM settings from flags, then the environment; None when no transport is named."""
    base_url = args.llm_base_url or settings.llm_base_url
    command = args.llm_command or settings.llm_command
    queue = args.llm_queue
    model = args.llm_model or settings.llm_model
    if not 0 < args.llm_share <= 1:
        raise ValueError(f"--llm-share must be in (0, 1], not {args.llm_share:g}")
    if args.repairs < 0:
        raise ValueError(f"--repairs must be 0 or more, not {args.repairs}")
    if args.max_usd is not None and args.max_usd <= 0:
        raise ValueError(f"--max-usd must be above 0, not {args.max_usd:g}")
    prices = parse_prices(args.llm_price)
    named = [
        flag
        for flag, v in (
            ("--llm-base-url", base_url),
            ("--llm-command", command),
            ("--llm-queue", queue),
        )
        if v
    ]
    if not named:
        if model:
            raise ValueError(
                "--llm-model names a model but no transport. Fix: add --llm-base-url, "
                "--llm-command or --llm-queue"
            )
        return None
    if len(named) > 1:
        raise ValueError(f"{' and '.join(named)} both name an LLM transport. Fix: keep one")
    if base_url and not model:
        raise ValueError(
            "an LLM endpoint needs a model; --llm-model is missing. "
            "Fix: pass it, or set KEVOLVE_LLM_MODEL"
        )
    argv = tuple(shlex.split(command)) if command else ()
    if argv and "/" in argv[0]:  # a path: the same program wherever the search runs from
        argv = (str(Path(argv[0]).resolve()), *argv[1:])
    queue = queue.resolve() if queue else None
    default = "queue" if queue else Path(argv[0]).name if argv else ""
    return LLMConfig(
        models=parse_models(model) if model else ((default, 1.0),),
        base_url=base_url or "",
        api_key=settings.llm_api_key if base_url else "",
        command=argv,
        command_env=settings.llm_command_env,
        queue=queue,
        timeout_s=settings.llm_timeout_s if command else 120.0,
        prices=prices,
        max_usd=args.max_usd,
        repairs=args.repairs,
    )


def paused_line(waiting: list[str], llm: LLMConfig | None) -> str:
    """What a paused search says: how many replies, where they go, how to go on."""
    where = llm.queue if llm and llm.queue else Path(".")
    count = f"{len(waiting)} replies" if len(waiting) != 1 else "1 reply"
    return (
        f"kevolve: paused: waiting for {count} in {where / 'replies'} (prompts in "
        f"{where / 'prompts'}, e.g. {waiting[0]}.md); write each reply whole as <key>.md there "
        "(a temporary name, then a rename) and run the same command again"
    )


def parse_models(text: str) -> tuple[tuple[str, float], ...]:
    """'a' or 'a:0.7,b:0.3' as (name, weight) pairs, refusing an empty name."""
    models = weighted_models(text)
    if not models or not all(name for name, _ in models):
        raise ValueError(
            f"--llm-model {text!r} names an empty model. Fix: write models as "
            f"'name' or 'name:0.7,other:0.3'"
        )
    return models
