"""An `Evaluation` as text for a terminal: verdict, correctness table, timing table, notes."""

from __future__ import annotations

from kevolve.harness.evaluation import (
    CaseCheck,
    CaseTiming,
    CompileMode,
    Evaluation,
    Timing,
    shape_cell,
    shape_heading,
)


def render(ev: Evaluation) -> str:
    """The whole human-readable report."""
    lines = [f"{ev.problem}: {ev.verdict.value.upper()} — {ev.reason}", ""]
    dims = ev.dims
    if ev.checks:
        lines += [
            "Correctness (an element passes when |err| <= atol * rms(ref) + rtol * |ref|; "
            "the output when its relative norm error <= norm)",
            *table(_check_head(dims), [_check_row(c, dims) for c in ev.checks]),
            "",
        ]
    if ev.timings:
        lines += [
            "Timing (ms, median [q10-q90]; speedup = baseline / candidate, 95% CI; eager, "
            "compile and max-autotune are the reference in PyTorch, torch.compile and "
            "torch.compile mode max-autotune-no-cudagraphs; vs compile = the faster of them / "
            "candidate)",
            *table(_time_head(dims), [_time_row(t, dims) for t in ev.timings]),
            "",
        ]
        lines += _compile_lines(ev.timings, dims)
    lines += _device_lines(ev)
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


def table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A plain aligned text table."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [
        fmt.format(*head),
        fmt.format(*("-" * w for w in widths)),
        *(fmt.format(*r) for r in rows),
    ]


def _check_head(dims: list[str]) -> list[str]:
    return [
        shape_heading(dims),
        "dtype",
        "trials",
        "max abs err",
        "max rel err",
        "rel norm",
        "rtol / atol / norm",
        "result",
    ]


def _time_head(dims: list[str]) -> list[str]:
    return [
        shape_heading(dims),
        "dtype",
        "eager",
        "compile",
        "max-autotune",
        "baseline",
        "candidate",
        "speedup",
        "vs compile",
        "GB/s",
        "TFLOP/s",
        "roofline",
    ]


def _check_row(c: CaseCheck, dims: list[str]) -> list[str]:
    result = "ok" if c.passed else f"FAIL ({c.mismatches} mismatches)" if c.mismatches else "FAIL"
    tol = c.tolerance
    return [
        shape_cell(c.shape, dims),
        c.dtype,
        str(c.trials),
        f"{c.max_abs:.2e}",
        f"{c.max_rel:.2e}",
        f"{c.rel_norm:.2e}",
        f"{tol.rtol:.1e} / {tol.atol:.1e} / {tol.norm:.1e}" if tol else "-",
        result,
    ]


def _time_row(t: CaseTiming, dims: list[str]) -> list[str]:
    ci = f" [{t.speedup_ci[0]:.3f}-{t.speedup_ci[1]:.3f}]" if t.speedup_ci else ""
    versus = t.speedup_vs_compile()
    return [
        shape_cell(t.shape, dims),
        t.dtype,
        _timing(t.reference),
        _compiled(t, CompileMode.DEFAULT),
        _compiled(t, CompileMode.MAX_AUTOTUNE),
        _timing(t.baseline),
        _timing(t.candidate),
        f"{t.speedup:.3f}x{ci}" if t.speedup else "-",
        f"{versus:.3f}x" if versus else "-",
        f"{t.achieved_gbps:.0f}" if t.achieved_gbps else "-",
        f"{t.achieved_tflops:.1f}" if t.achieved_tflops else "-",
        f"{100 * t.roofline_fraction:.0f}%" if t.roofline_fraction else "-",
    ]


def _compiled(t: CaseTiming, mode: CompileMode) -> str:
    """One torch.compile cell: its timing, '-' when not run, 'failed' when it could not be."""
    arm = t.compiled_in(mode)
    if arm is None:
        return "-"
    return _timing(arm.timing) if arm.timing else "failed"


def _compile_lines(timings: list[CaseTiming], dims: list[str]) -> list[str]:
    """Why a torch.compile arm failed, its compile seconds, and the cases the candidate lost."""
    lines = []
    for t in timings:
        case = f"{shape_cell(t.shape, dims)} {t.dtype}"
        for arm in t.compiled:
            what = f"torch.compile ({arm.mode}) on {case}"
            if arm.error:
                lines.append(f"{what}: — {arm.error}")
            elif arm.compile_s is not None:
                lines.append(f"{what}: compiled in {arm.compile_s:.1f} s (not timed)")
    behind = [t for t in timings if (v := t.speedup_vs_compile()) is not None and v < 1.0]
    if behind:
        lines.append(
            f"SLOWER THAN TORCH.COMPILE on {len(behind)} of {len(timings)} timed cases: "
            "torch.compile(reference) beats the candidate there"
        )
    if not any(t.compiled for t in timings):
        lines.append("torch.compile was not timed (the compile arm was off)")
    return [*lines, ""] if lines else []


def _device_lines(ev: Evaluation) -> list[str]:
    """The device and the versions, on every device (the CPU too)."""
    hw = ev.hardware
    if not hw:
        return []
    versions = f"torch {hw.get('torch') or 'unknown'}, triton {hw.get('triton') or 'unknown'}"
    if hw.get("device") == "cuda":
        return [
            f"Device: {hw.get('name')} (sm {hw.get('capability')}), driver "
            f"{hw.get('driver')}, CUDA {hw.get('cuda')}, {versions}"
        ]
    name = f"CPU {hw.get('cpu')}" if hw.get("cpu") else "CPU"
    return [f"Device: {name} (Triton interpreter), {versions}"]


def _timing(t: Timing | None) -> str:
    return f"{t.median_ms:.4f} [{t.q10_ms:.4f}-{t.q90_ms:.4f}]" if t else "-"
