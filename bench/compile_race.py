"""How fast are the demo kernels, and a search's winners, against PyTorch eager and torch.compile?

For every demo op (or `--ops`) at every production shape and `--dtypes` dtype, one process runs
these contestants on the same seeded inputs: `eager` (the PyTorch reference), `compile`
(`torch.compile(reference)`), `max-autotune` (mode "max-autotune-no-cudagraphs"), `demo` (the demo
repo's own Triton kernel) and, with `--found OP=path`, `kevolve` (a search winner: a whole kernel
module exposing the op's entry function).

Each contestant's first call is checked against eager with `torch.testing.assert_close`; one that
raises or disagrees is reported as failed and not timed. The wall time of that first call is
recorded: for the torch.compile modes it is the compile time (a throwaway compile first pays
Inductor's one-time start-up; Inductor's on-disk caches shorten compiles on a rerun). Both modes
compile with `dynamic=False` after `torch._dynamo.reset()`, so each case gets kernels specialized
to its shape, as a fixed-shape production model would, rather than the dynamic-shape recompile
Dynamo makes on a second shape. After a warm-up, R rounds time C calls of each contestant, the
order rotating every round so that clock and thermal drift hit all alike;
`harness.judge.timing.Timer` flushes L2, covers the host launch and synchronizes the device
around every call. Reported per
contestant: median ms [q10-q90]; speed against the best torch.compile mode (its median over the
contestant's, so >1 is faster); and the share of the device's measured ceiling from
`harness.judge.hardware` (cached under --cache): GB/s (inputs read plus outputs written) over
copy GB/s for row ops, TFLOP/s over bf16 matmul TFLOP/s for ops that declare FLOPs.

    PYTHONPATH=. python3 bench/compile_race.py [--ops softmax,rmsnorm] [--dtypes bfloat16,float16]
        [--found softmax=found/softmax.py] [--rounds 10] [--calls 10] [--out race.json]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn

import torch
import torch._dynamo

ROOT = Path(__file__).resolve().parent.parent

from kevolve.harness.evaluation import Timing  # noqa: E402
from kevolve.harness.judge.benchmark import ROOFLINE_SLACK  # noqa: E402
from kevolve.harness.judge.hardware import Ceilings, cached_ceilings, fingerprint  # noqa: E402
from kevolve.harness.judge.inputs import InputMaker, Trial, load_attr, load_module  # noqa: E402
from kevolve.harness.judge.stats import summarize  # noqa: E402
from kevolve.harness.judge.timing import Timer, TimingConfig, TimingUnavailable  # noqa: E402
from kevolve.harness.spec.checks import did_you_mean  # noqa: E402
from kevolve.harness.spec.load import load_problems  # noqa: E402
from kevolve.harness.spec.problem import DTYPES, Problem, Shape  # noqa: E402

DEMO = ROOT / "examples" / "demo"
PROG = "compile_race"
# torch.compile modes by contestant name; None is torch.compile's default mode.
COMPILE_MODES: dict[str, str | None] = {
    "compile": None,
    "max-autotune": "max-autotune-no-cudagraphs",
}
# (atol, rtol) against eager in the case's dtype: a few roundings of the output dtype, since eager
# and a fused kernel round intermediates differently (bf16 u = 3.9e-3, fp16 u = 4.9e-4).
TOLERANCES: dict[str, tuple[float, float]] = {
    "bfloat16": (2e-2, 2e-2),
    "float16": (1e-2, 1e-2),
    "float32": (1e-4, 1e-4),
    "float64": (1e-7, 1e-7),
}
_EXACT = (0.0, 0.0)

Fn = Callable[..., object]


class UsageError(Exception):
    """Bad command-line input; `main` prints it as one line and exits 2."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors become `UsageError` (one line, no usage dump)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


@dataclass
class Entry:
    """One contestant on one case: its check, first-call time, samples and scores."""

    name: str
    error: str | None = None
    first_call_s: float | None = None
    samples_ms: list[float] = field(default_factory=list)
    timing: Timing | None = None
    vs_best_compile: float | None = None
    achieved: float | None = None  # GB/s for row ops, TFLOP/s for ops with FLOPs
    ceiling_fraction: float | None = None


@dataclass
class Case:
    """One op at one shape and dtype, with its work and every contestant's entry."""

    op: str
    shape: list[int]
    dtype: str
    bytes: int
    flops: int | None
    entries: list[Entry] = field(default_factory=list)

    @property
    def unit(self) -> str:
        """The unit of `Entry.achieved` for this case."""
        return "TFLOP/s" if self.flops else "GB/s"


# --- command line -------------------------------------------------------------------------------


def select_ops(requested: str, declared: Sequence[str]) -> list[str]:
    """The op names in a comma list ("" means all declared), checked against the declared ones."""
    names = [n.strip() for n in requested.split(",") if n.strip()]
    for name in names:
        _require_op("--ops", name, declared)
    return names or list(declared)


def parse_dtypes(requested: str) -> list[str]:
    """The dtype names in a comma list, each one kevolve knows."""
    names = [n.strip() for n in requested.split(",") if n.strip()]
    if not names:
        raise UsageError("--dtypes is empty; pass e.g. --dtypes bfloat16,float16")
    for name in names:
        if name not in DTYPES:
            raise UsageError(
                f"--dtypes: unknown dtype '{name}'; {did_you_mean(name, DTYPES)}"
                f"choose from: {', '.join(DTYPES)}"
            )
    return names


def parse_found(
    values: Sequence[str], declared: Sequence[str], selected: Sequence[str]
) -> dict[str, Path]:
    """The `--found OP=path` values as {op: path}, each op declared, selected, given once."""
    found: dict[str, Path] = {}
    for value in values:
        op, sep, path_text = value.partition("=")
        op, path_text = op.strip(), path_text.strip()
        if not sep or not op or not path_text:
            raise UsageError(
                f"--found '{value}' is not OP=path; pass e.g. --found softmax=found/softmax.py"
            )
        _require_op("--found", op, declared)
        if op not in selected:
            raise UsageError(f"--found names op '{op}', which --ops leaves out; add it to --ops")
        if op in found:
            raise UsageError(f"--found gives op '{op}' twice; pass one module per op")
        path = Path(path_text)
        if not path.is_file():
            raise UsageError(
                f"--found {op}: '{path}' is not a file; pass the path of the winner's kernel module"
            )
        found[op] = path
    return found


def _require_op(flag: str, name: str, declared: Sequence[str]) -> None:
    """Raise a `UsageError` unless the op is declared."""
    if name not in declared:
        raise UsageError(
            f"{flag}: no demo op named '{name}'; {did_you_mean(name, declared)}"
            f"choose from: {', '.join(declared)}"
        )


def _positive_int(text: str) -> int:
    """A positive int argument."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a positive integer")
    return value


def _parser() -> _Parser:
    """The command-line parser."""
    parser = _Parser(prog=PROG, description="Demo kernels against PyTorch eager and torch.compile.")
    parser.add_argument("--ops", default="", help="comma list of demo ops (default: all)")
    parser.add_argument("--dtypes", default="bfloat16", help="comma list (default: bfloat16)")
    parser.add_argument(
        "--found",
        action="append",
        default=[],
        metavar="OP=PATH",
        help="a search winner's kernel module for OP (repeatable)",
    )
    parser.add_argument("--rounds", type=_positive_int, default=10)
    parser.add_argument("--calls", type=_positive_int, default=10, help="calls per round")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "kevolve")
    parser.add_argument("--out", type=Path, default=None, help="write all results as JSON here")
    return parser


def case_plan(problem: Problem, dtypes: Sequence[str]) -> list[tuple[Shape, str]]:
    """The (shape, dtype) cases to race for an op: its production shapes, the dtypes it declares."""
    return [(s, d) for s in problem.shapes for d in dtypes if d in problem.dtypes]


# --- scoring and rendering ----------------------------------------------------------------------


def rotated(names: Sequence[str], round_index: int) -> list[str]:
    """The contestants in this round's order: the list rotated left by the round index."""
    shift = round_index % len(names) if names else 0
    return [*names[shift:], *names[:shift]]


def tensor_bytes(values: Sequence[object]) -> int:
    """Bytes held by the tensors among the values; other values count nothing."""
    return sum(v.numel() * v.element_size() for v in values if isinstance(v, torch.Tensor))


def check(output: object, expected: tuple[object, ...], dtype: str) -> str | None:
    """None if the output matches eager within the dtype's tolerance, else a one-line reason."""
    atol, rtol = TOLERANCES.get(dtype, _EXACT)
    try:
        torch.testing.assert_close(_as_tuple(output), expected, atol=atol, rtol=rtol)
    except AssertionError as exc:
        return "wrong output: " + " ".join(str(exc).split())
    return None


def best_compile_ms(entries: Sequence[Entry]) -> float | None:
    """The lowest median among the torch.compile modes that were timed, or None."""
    medians = [e.timing.median_ms for e in entries if e.name in COMPILE_MODES and e.timing]
    return min(medians, default=None)


def rate(case: Case, median_ms: float, ceilings: Ceilings) -> tuple[float, float]:
    """(achieved rate, fraction of ceiling): TFLOP/s of matmul for ops with FLOPs, else GB/s."""
    seconds = median_ms / 1e3
    if case.flops:
        tflops = case.flops / seconds / 1e12
        return tflops, tflops / ceilings.matmul_tflops
    gbps = case.bytes / seconds / 1e9
    return gbps, gbps / ceilings.copy_gbps


def score(case: Case, ceilings: Ceilings) -> None:
    """Fill each timed entry's speed against the best compile mode and its share of the ceiling."""
    best = best_compile_ms(case.entries)
    for entry in case.entries:
        if entry.timing is None:
            continue
        median_ms = entry.timing.median_ms
        entry.vs_best_compile = best / median_ms if best is not None else None
        entry.achieved, entry.ceiling_fraction = rate(case, median_ms, ceilings)


HEAD = [
    "shape",
    "dtype",
    "contestant",
    "median ms [q10-q90]",
    "vs best compile",
    "of ceiling",
    "first call s",
    "status",
]
_STATUS_CHARS = 120


def header(hardware: Mapping[str, object], ceilings: Ceilings) -> str:
    """One line naming the card, driver, CUDA, torch and Triton, and the measured ceilings."""
    h = hardware
    return (
        f"{h.get('name')} | driver {h.get('driver')} | CUDA {h.get('cuda')} | "
        f"torch {h.get('torch')} | triton {h.get('triton')} | ceilings: copy "
        f"{ceilings.copy_gbps:.0f} GB/s, bf16 matmul {ceilings.matmul_tflops:.0f} TFLOP/s"
    )


def render_op(op: str, cases: Sequence[Case]) -> str:
    """A markdown section for one op: a heading and a row per contestant per case."""
    rows = [_row(case, entry) for case in cases for entry in case.entries]
    return "\n".join([f"### {op}", "", *_markdown(HEAD, rows)])


def _row(case: Case, entry: Entry) -> list[str]:
    """One table row."""
    t = entry.timing
    ceiling = "-"
    if entry.ceiling_fraction is not None and entry.achieved is not None:
        achieved = f"{entry.achieved:.1f}" if case.flops else f"{entry.achieved:.0f}"
        ceiling = f"{100 * entry.ceiling_fraction:.0f}% ({achieved} {case.unit})"
    return [
        "x".join(map(str, case.shape)),
        case.dtype,
        entry.name,
        f"{t.median_ms:.4f} [{t.q10_ms:.4f}-{t.q90_ms:.4f}]" if t else "-",
        f"{entry.vs_best_compile:.2f}x" if entry.vs_best_compile is not None else "-",
        ceiling,
        f"{entry.first_call_s:.2f}" if entry.first_call_s is not None else "-",
        _status(entry),
    ]


def _status(entry: Entry) -> str:
    """ok, FAILED with its reason (shortened), or a warning for a time faster than the ceiling."""
    if entry.error is not None:
        reason = entry.error
        if len(reason) > _STATUS_CHARS:
            reason = reason[: _STATUS_CHARS - 3] + "..."
        return f"FAILED: {reason}"
    if entry.ceiling_fraction is not None and entry.ceiling_fraction > ROOFLINE_SLACK:
        return "above the ceiling: timing suspect"
    return "ok"


def _markdown(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Lines of a markdown table, pipes in cells escaped."""

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return [line(head), "|" + "|".join("---" for _ in head) + "|", *(line(r) for r in rows)]


# --- racing on the GPU --------------------------------------------------------------------------


def race_op(
    problem: Problem,
    plan: Sequence[tuple[Shape, str]],
    found: Path | None,
    timer: Timer,
    ceilings: Ceilings,
    rounds: int,
) -> list[Case]:
    """Every planned case of one op, raced and scored."""
    lineup = _lineup(problem, found)
    maker = InputMaker(problem, timer.device)
    return [
        _race_case(problem, shape, dtype, maker, lineup, timer, ceilings, rounds)
        for shape, dtype in plan
    ]


@dataclass(frozen=True)
class _Lineup:
    """One op's eager reference and its Triton kernels by contestant name (or why one failed)."""

    reference: Fn
    kernels: dict[str, Fn | str]


def _lineup(problem: Problem, found: Path | None) -> _Lineup:
    """The op's reference, demo kernel and, if given, the found module's entry."""
    prefix = f"_race_{problem.name}"
    demo = f"{problem.kernel}:{problem.entry}"
    kernels = {"demo": _load(lambda: load_attr(problem, demo, f"{prefix}_demo"))}
    if found is not None:
        kernels["kevolve"] = _load(
            lambda: getattr(load_module(found.resolve(), f"{prefix}_found"), problem.entry)
        )
    return _Lineup(load_attr(problem, problem.reference, f"{prefix}_reference"), kernels)


def _contestants(lineup: _Lineup) -> dict[str, Fn | str]:
    """All contestants in table order, the torch.compile modes freshly wrapped."""
    # A fresh Dynamo cache per case: every case compiles cold, for its own shape only.
    torch._dynamo.reset()
    compiled = {
        name: _load(functools.partial(torch.compile, lineup.reference, mode=mode, dynamic=False))
        for name, mode in COMPILE_MODES.items()
    }
    return {"eager": lineup.reference, **compiled, **lineup.kernels}


def _race_case(
    problem: Problem,
    shape: Shape,
    dtype: str,
    maker: InputMaker,
    lineup: _Lineup,
    timer: Timer,
    ceilings: Ceilings,
    rounds: int,
) -> Case:
    """Check, warm up and time every contestant on one case's inputs; the scored case."""
    print(f"{PROG}: racing {problem.name} {list(shape)} {dtype}", file=sys.stderr, flush=True)
    inputs = maker(shape, dtype, Trial(0, "normal"))
    expected = _as_tuple(lineup.reference(*inputs))
    flops = load_attr(problem, problem.flops, "_race_flops")(shape) if problem.flops else None
    case = Case(
        problem.name,
        list(shape),
        dtype,
        tensor_bytes([*inputs, *expected]),
        int(flops) if flops is not None else None,
    )
    ready: dict[str, Callable[[], object]] = {}
    for name, fn in _contestants(lineup).items():
        entry = Entry(name)
        case.entries.append(entry)
        if isinstance(fn, str):
            entry.error = fn
        else:
            call = functools.partial(fn, *inputs)
            if _first_call(entry, call, expected, dtype, timer.device):
                ready[name] = call
        if entry.error is not None:
            print(f"{PROG}: {name} failed: {entry.error}", file=sys.stderr, flush=True)
    samples = _time_rounds(ready, timer, rounds)
    for entry in case.entries:
        if entry.name in samples:
            entry.samples_ms = samples[entry.name]
            entry.timing = summarize(entry.samples_ms)
    score(case, ceilings)
    return case


def _first_call(
    entry: Entry,
    call: Callable[[], object],
    expected: tuple[object, ...],
    dtype: str,
    device: torch.device,
) -> bool:
    """Run the first call (compiling), record its wall time and check it; True if it passed."""
    start = time.perf_counter()
    try:
        output = call()
        torch.cuda.synchronize(device)
    except Exception as exc:  # noqa: BLE001 - a contestant that cannot run fails alone
        entry.error = _describe(exc)
        return False
    entry.first_call_s = time.perf_counter() - start
    entry.error = check(output, expected, dtype)
    return entry.error is None


def _time_rounds(
    calls: Mapping[str, Callable[[], object]], timer: Timer, rounds: int
) -> dict[str, list[float]]:
    """Per-call event times of each contestant over rotating rounds, after a warm-up."""
    for call in calls.values():
        timer.warm_up(call, _no_prepare)
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in rotated(names, r):
            times = timer.time_calls(calls[name], _no_prepare, timer.config.calls_per_round)
            samples[name] += times.event_ms
    return samples


def _load(loader: Callable[[], Fn]) -> Fn | str:
    """The loaded callable, or why loading it failed."""
    try:
        return loader()
    except Exception as exc:  # noqa: BLE001 - a module that fails to load fails its contestant alone
        return _describe(exc)


def _describe(exc: BaseException) -> str:
    """An exception as one line: its type and its message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


def _as_tuple(value: object) -> tuple[object, ...]:
    """A call's outputs as a tuple."""
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _no_prepare(_: int) -> None:
    """Every call reuses the case's inputs: nothing to refresh."""


# --- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Race the selected ops; 0 when done, 2 (with a one-line error) on bad input."""
    try:
        return _run(_parser().parse_args(argv))
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    """Validate everything before touching the GPU, then race op by op and report."""
    problems = {p.name: p for p in load_problems(DEMO)}
    ops = select_ops(args.ops, list(problems))
    found = parse_found(args.found, list(problems), ops)
    dtypes = parse_dtypes(args.dtypes)
    plans = {op: case_plan(problems[op], dtypes) for op in ops}
    if args.out and not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: no directory '{args.out.parent}'; create it first")
    if not any(plans.values()):
        raise UsageError(f"no selected op declares any of --dtypes {','.join(dtypes)}")
    for op in ops:
        left_out = [d for d in dtypes if d not in problems[op].dtypes]
        if left_out:
            print(f"{PROG}: {op} does not declare {', '.join(left_out)}; skipped", file=sys.stderr)
    timer = _timer(args.device, args.calls)
    ceilings = cached_ceilings(timer.device, args.cache)
    _prime_compiler(timer.device)
    hardware = {**fingerprint(timer.device), "ceilings": asdict(ceilings)}
    print(header(hardware, ceilings), flush=True)
    cases: list[Case] = []
    for op in ops:
        op_cases = race_op(problems[op], plans[op], found.get(op), timer, ceilings, args.rounds)
        print("\n" + render_op(op, op_cases), flush=True)
        cases += op_cases
    if args.out:
        args.out.write_text(
            json.dumps(_report(args, ops, dtypes, found, hardware, cases), indent=2)
        )
    return 0


def _prime_compiler(device: torch.device) -> None:
    """Pay Inductor's one-time start-up on a throwaway function, outside every compile time."""
    # A broken compiler is not this function's to report: each case records it as a failure.
    with contextlib.suppress(Exception):
        torch.compile(_plus_one, dynamic=False)(torch.ones(8, device=device))
        torch.cuda.synchronize(device)


def _plus_one(x: torch.Tensor) -> torch.Tensor:
    """A function to compile once so that later compile times exclude Inductor's start-up."""
    return x + 1


def _report(
    args: argparse.Namespace,
    ops: Sequence[str],
    dtypes: Sequence[str],
    found: Mapping[str, Path],
    hardware: Mapping[str, object],
    cases: Sequence[Case],
) -> dict[str, object]:
    """Everything the run measured, JSON-ready."""
    config = {
        "ops": list(ops),
        "dtypes": list(dtypes),
        "rounds": args.rounds,
        "calls": args.calls,
        "found": {op: str(path) for op, path in found.items()},
        "tolerances": {d: {"atol": a, "rtol": r} for d, (a, r) in TOLERANCES.items()},
    }
    return {
        "hardware": dict(hardware),
        "config": config,
        "cases": [{**asdict(c), "unit": c.unit} for c in cases],
    }


def _timer(device_name: str, calls: int) -> Timer:
    """The harness timer on the named CUDA device, or a `UsageError` saying why there is none."""
    try:
        device = torch.device(device_name)
    except RuntimeError as exc:
        raise UsageError(f"--device {device_name}: {exc}") from exc
    try:
        return Timer(device, TimingConfig(calls_per_round=calls))
    except TimingUnavailable as exc:
        raise UsageError(
            f"--device {device_name}: no CUDA device to time on; run on a GPU host"
        ) from exc


if __name__ == "__main__":
    sys.exit(main())
