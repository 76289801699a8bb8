"""`kevolve optimize`: run (or resume) a search for one op and write its result."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kevolve.bot.commands.common import (
    add_executor_arguments,
    add_problem_arguments,
    device_name,
    executor_error,
    load_problem,
    usage_error,
)
from kevolve.bot.progress import ProgressLine
from kevolve.bot.settings import CliSettings, cli_settings
from kevolve.harness.evaluate import EvalOptions, HarnessError
from kevolve.harness.search.campaign import OptimizeOptions, optimize
from kevolve.harness.search.cluster import ClusterError
from kevolve.harness.search.engine import SearchConfig
from kevolve.harness.search.llm import LLMConfig
from kevolve.harness.search.result import render_markdown
from kevolve.harness.search.store import StateMismatch
from kevolve.harness.spec.load import SpecError


def add_parser(sub: Any) -> None:
    """Register the subcommand and its arguments."""
    p = sub.add_parser(
        "optimize",
        help="search for a faster kernel for one op",
        description="Evolve faster kernels with LLM and tuner proposals, judged "
        "by the harness. Re-running the same command resumes the search.",
    )
    add_problem_arguments(p)
    p.add_argument("--budget", type=int, default=40, help="candidates to judge (default 40)")
    p.add_argument("--minutes", type=float, help="stop after this many minutes")
    p.add_argument(
        "--patience",
        type=int,
        default=6,
        help="stop after this many generations without improvement (default 6)",
    )
    p.add_argument("--state", type=Path, help="SQLite state file (default .kevolve/<op>.sqlite)")
    p.add_argument("--device", default="auto", type=device_name, help="cpu, cuda, cuda:N or auto")
    p.add_argument(
        "--parallel",
        type=int,
        help="evaluations in flight (default: on a GPU one per CPU core, at most 16, else 2; "
        "with --executor ray, the cluster's GPUs, or its CPU slots with --device cpu)",
    )
    add_executor_arguments(p)
    p.add_argument("--llm-base-url", help="OpenAI-compatible endpoint (or KEVOLVE_LLM_BASE_URL)")
    p.add_argument(
        "--llm-model", help="model, or 'a:0.7,b:0.3' for an ensemble (or KEVOLVE_LLM_MODEL)"
    )
    p.add_argument("--max-tokens", type=int, help="stop after this many LLM tokens")
    p.add_argument("--seed", type=int, default=0, help="seed of the search")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per candidate step")
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
    if args.budget < 1 or (args.parallel is not None and args.parallel < 1):
        return usage_error("--budget and --parallel must be at least 1")
    if mismatch := executor_error(args):
        return usage_error(mismatch)
    options = OptimizeOptions(
        search=SearchConfig(
            budget=args.budget,
            minutes=args.minutes,
            patience=args.patience,
            max_tokens=args.max_tokens,
            parallel=args.parallel,
            seed=args.seed,
            hardware=args.device,
        ),
        evaluation=EvalOptions(
            device=args.device, timeout=args.timeout, cache_dir=settings.cache_dir
        ),
        state=args.state or Path(".kevolve") / f"{problem.name}.sqlite",
        llm=llm,
        executor=args.executor,
        ray_address=args.ray_address,
    )
    progress = ProgressLine(args.budget)
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
    print(json.dumps(data, indent=2) if args.json else render_markdown(result))
    return 0


def llm_config(args: argparse.Namespace, settings: CliSettings) -> LLMConfig | None:
    """The LLM settings from flags, then the environment; None when no endpoint is named."""
    base_url = args.llm_base_url or settings.llm_base_url
    model = args.llm_model or settings.llm_model
    if not base_url and not model:
        return None
    if not base_url or not model:
        missing = "--llm-base-url" if not base_url else "--llm-model"
        raise ValueError(
            f"an LLM needs both an endpoint and a model; {missing} is missing. "
            f"Fix: pass it, or set KEVOLVE_LLM_BASE_URL / KEVOLVE_LLM_MODEL"
        )
    return LLMConfig(base_url=base_url, models=parse_models(model), api_key=settings.llm_api_key)


def parse_models(text: str) -> tuple[tuple[str, float], ...]:
    """'a' or 'a:0.7,b:0.3' as (name, weight) pairs; a name may itself hold colons."""
    models = []
    for part in (p.strip() for p in text.split(",")):
        name, _, weight = part.rpartition(":")
        try:
            models.append((name, float(weight)) if name else (part, 1.0))
        except ValueError:
            models.append((part, 1.0))  # e.g. "qwen2.5-coder:32b": the colon is the name's
    if not all(name for name, _ in models):
        raise ValueError(
            f"--llm-model {text!r} names an empty model. Fix: write models as "
            f"'name' or 'name:0.7,other:0.3'"
        )
    return tuple(models)
