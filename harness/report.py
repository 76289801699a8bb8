"""An `Evaluation` as text for a terminal: verdict, correctness table, timing table, notes."""

from __future__ import annotations

from kevolve.harness.evaluation import CaseCheck, CaseTiming, Evaluation, Timing


def render(ev: Evaluation) -> str:
    """The whole human-readable report."""
    lines = [f"{ev.problem}: {ev.verdict.value.upper()} — {ev.reason}", ""]
    if ev.checks:
        lines += ["Correctness", *table(_CHECK_HEAD, [_check_row(c) for c in ev.checks]), ""]
    if ev.timings:
        lines += [
            "Timing (ms, median [q10-q90]; speedup = baseline / candidate, 95% CI)",
            *table(_TIME_HEAD, [_time_row(t) for t in ev.timings]),
            "",
        ]
    if ev.hardware and ev.timed:
        hw = ev.hardware
        lines.append(
            f"Device: {hw.get('name')} (sm {hw.get('capability')}), driver "
            f"{hw.get('driver')}, CUDA {hw.get('cuda')}, torch {hw.get('torch')}, "
            f"triton {hw.get('triton')}"
        )
    for kernel in ev.kernels:
        if kernel.n_regs is not None:
            lines.append(
                f"Kernel {kernel.name}: {kernel.n_regs} registers, "
                f"{kernel.n_spills} spills, {kernel.shared_bytes} B shared memory"
            )
    lines += [f"FLAG: {f}" for f in ev.flags]
    lines += [f"Note: {n}" for n in ev.notes]
    extra = [d for d in ev.diagnostics if d.message != ev.reason]
    lines += [f"{d.kind}{f' (line {d.line})' if d.line else ''}: {d.message}" for d in extra]
    return "\n".join(lines).rstrip() + "\n"


_CHECK_HEAD = ["shape", "dtype", "trials", "max abs err", "max rel err", "rel norm", "result"]
_TIME_HEAD = [
    "shape",
    "dtype",
    "candidate",
    "baseline",
    "speedup",
    "eager ref",
    "GB/s",
    "TFLOP/s",
    "roofline",
]


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A plain aligned text table."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [
        fmt.format(*head),
        fmt.format(*("-" * w for w in widths)),
        *(fmt.format(*r) for r in rows),
    ]


def _check_row(c: CaseCheck) -> list[str]:
    result = "ok" if c.passed else f"FAIL ({c.mismatches} mismatches)" if c.mismatches else "FAIL"
    return [
        _shape(c.shape),
        c.dtype,
        str(c.trials),
        f"{c.max_abs:.2e}",
        f"{c.max_rel:.2e}",
        f"{c.rel_norm:.2e}",
        result,
    ]


def _time_row(t: CaseTiming) -> list[str]:
    ci = f" [{t.speedup_ci[0]:.3f}-{t.speedup_ci[1]:.3f}]" if t.speedup_ci else ""
    return [
        _shape(t.shape),
        t.dtype,
        _timing(t.candidate),
        _timing(t.baseline),
        f"{t.speedup:.3f}x{ci}" if t.speedup else "-",
        _timing(t.reference),
        f"{t.achieved_gbps:.0f}" if t.achieved_gbps else "-",
        f"{t.achieved_tflops:.1f}" if t.achieved_tflops else "-",
        f"{100 * t.roofline_fraction:.0f}%" if t.roofline_fraction else "-",
    ]


def _timing(t: Timing | None) -> str:
    return f"{t.median_ms:.4f} [{t.q10_ms:.4f}-{t.q90_ms:.4f}]" if t else "-"


def _shape(shape: list[int]) -> str:
    return "x".join(map(str, shape)) or "(as given)"
