"""Charts as inline SVG, drawn on the server: no script and no library is needed to see them.

Colours come from the stylesheet through classes (`v-correct`, `best`, ...), so a page can keep
a strict content security policy (no inline styles).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 52, 52, 26, 38
TICKS = 5


@dataclass(frozen=True)
class ChartPoint:
    """One folded (or stored, not yet folded) verdict on the best-so-far chart."""

    index: int  # 1-based, in the order the search judged
    seconds: float | None  # wall time when its generation finished; None: not folded yet
    candidate: str
    verdict: str
    score: float | None  # speedup (1.0 for a correct untimed candidate); None: not correct
    best: float | None  # the best score so far
    limit: float | None = None  # the best's share of the roofline limit, 0..1, when timed


@dataclass(frozen=True)
class Interval:
    """One evaluation on the timeline: its lane, start and length, and the GPU's part."""

    lane: int
    start_s: float
    length_s: float
    gpu_s: float
    verdict: str
    candidate: str


class _Scale:
    """A linear map from a data range onto a pixel range."""

    def __init__(self, low: float, high: float, start: float, end: float) -> None:
        self.low, self.high = low, high if high > low else low + 1.0
        self.start, self.end = start, end

    def __call__(self, value: float) -> float:
        """The pixel position of `value`, to a tenth of a pixel."""
        share = (value - self.low) / (self.high - self.low)
        return round(self.start + share * (self.end - self.start), 1)

    def ticks(self, whole: bool = False) -> list[float]:
        """Evenly spaced values across the range, ends included; whole numbers only if asked."""
        step = (self.high - self.low) / (TICKS - 1)
        values = [self.low + i * step for i in range(TICKS)]
        return sorted({float(round(v)) for v in values}) if whole else values


def progress_svg(points: Sequence[ChartPoint], axis: str = "candidates") -> str:
    """The best-so-far chart: a step line of the best score over candidates ("candidates") or
    wall seconds ("seconds"), each verdict a dot, and the best's % of the limit when known."""
    if not points:
        return _empty("no verdicts yet")
    xs = [_x_value(p, axis, points) for p in points]
    scores = [v for p in points for v in (p.score, p.best) if v is not None]
    x = _Scale(0.0 if axis == "seconds" else 1.0, max(xs), LEFT, WIDTH - RIGHT)
    y = _Scale(0.0, max([1.2, *scores]) * 1.1, HEIGHT - BOTTOM, TOP)
    label = "wall seconds" if axis == "seconds" else "candidates judged"
    timed = any(p.score not in (None, 1.0) for p in points)  # untimed: every score is 1.0
    parts = [_axes(x, y, label, "speedup" if timed else "score")]
    limits = [(xv, p.limit) for xv, p in zip(xs, points, strict=True) if p.limit is not None]
    if limits:
        share = _Scale(0.0, 1.0, HEIGHT - BOTTOM, TOP)
        line = " ".join(f"{x(xv)},{share(v)}" for xv, v in limits)
        parts.append(f'<polyline class="limit" points="{line}"/>')
        parts.append(_right_axis(share))
    parts.append(_step_line(x, y, xs, [p.best for p in points]))
    for xv, p in zip(xs, points, strict=True):
        parts.append(_dot(x(xv), y(p.score) if p.score is not None else y(0.0), p))
    return _svg(parts, f'data-points="{len(points)}" data-axis="{escape(axis)}"')


def verdict_svg(counts: Mapping[str, int]) -> str:
    """One bar per verdict, its count beside it."""
    shown = [(verdict, n) for verdict, n in counts.items() if n > 0]
    if not shown:
        return _empty("no verdicts yet", height=40)
    most = max(n for _, n in shown)
    row, height = 22, 22 * len(shown) + 8
    parts = []
    for i, (verdict, n) in enumerate(shown):
        width = max(2.0, round(440 * n / most, 1))
        top = 4 + i * row
        parts.append(
            f'<text x="0" y="{top + 14}" class="label">{escape(verdict)}</text>'
            f'<rect x="130" y="{top}" width="{width}" height="16" class="v-{_slug(verdict)}"/>'
            f'<text x="{136 + width}" y="{top + 13}" class="count">{n}</text>'
        )
    return _svg(parts, f'data-verdicts="{len(shown)}"', WIDTH, height)


def timeline_svg(intervals: Sequence[Interval], lanes: int, wall_s: float = 0.0) -> str:
    """The evaluations over `wall_s` seconds, one row per judge slot; the GPU's share darker."""
    if not intervals:
        return _empty("no evaluations yet", height=60)
    end = max(wall_s, *(i.start_s + i.length_s for i in intervals))
    x = _Scale(0.0, end, LEFT, WIDTH - RIGHT)
    row = 18
    height = TOP + row * max(1, lanes) + BOTTOM
    parts = [_time_axis(x, height - BOTTOM)]
    for lane in range(lanes):
        top = TOP + lane * row + 13
        parts.append(f'<text x="4" y="{top}" class="label">judge {lane + 1}</text>')
    for i in intervals:
        left, right = x(i.start_s), x(i.start_s + i.length_s)
        top = TOP + i.lane * row
        title = f"<title>{escape(i.candidate)}: {escape(i.verdict)}, {i.length_s:.1f} s</title>"
        parts.append(
            f'<rect x="{left}" y="{top}" width="{max(1.0, right - left)}" height="{row - 4}" '
            f'class="v-{_slug(i.verdict)}">{title}</rect>'
        )
        if i.gpu_s > 0:
            gpu = max(1.0, x(i.start_s + min(i.gpu_s, i.length_s)) - left)
            parts.append(
                f'<rect x="{left}" y="{top + row - 8}" width="{gpu}" height="4" class="gpu"/>'
            )
    return _svg(parts, f'data-intervals="{len(intervals)}"', WIDTH, height)


def trend_svg(values: Sequence[float]) -> str:
    """A small line of values over time (a repo page's trend per op)."""
    if len(values) < 2:
        return ""
    x = _Scale(0.0, float(len(values) - 1), 2, 118)
    y = _Scale(min(values) * 0.95, max(values) * 1.05, 26, 2)
    line = " ".join(f"{x(float(i))},{y(v)}" for i, v in enumerate(values))
    return (
        f'<svg class="trend" viewBox="0 0 120 28" width="120" height="28" role="img" '
        f'data-values="{len(values)}"><polyline class="best" points="{line}"/></svg>'
    )


def _x_value(point: ChartPoint, axis: str, points: Sequence[ChartPoint]) -> float:
    """Where a point sits on the x axis; a point not folded yet sits at the newest time."""
    if axis != "seconds":
        return float(point.index)
    if point.seconds is not None:
        return point.seconds
    return max((p.seconds for p in points if p.seconds is not None), default=0.0)


def _axes(x: _Scale, y: _Scale, x_label: str, y_label: str) -> str:
    """The left and bottom axes with their ticks and labels."""
    base, parts = HEIGHT - BOTTOM, []
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{base}"/>')
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>')
    for value in y.ticks():
        parts.append(
            f'<line class="grid" x1="{LEFT}" y1="{y(value)}" x2="{WIDTH - RIGHT}" '
            f'y2="{y(value)}"/><text x="{LEFT - 6}" y="{y(value) + 4}" class="tick end">'
            f"{value:.2f}</text>"
        )
    for value in x.ticks(whole=x_label.startswith("candidates")):
        parts.append(
            f'<text x="{x(value)}" y="{base + 16}" class="tick mid">{_number(value)}</text>'
        )
    parts.append(
        f'<text x="{(LEFT + WIDTH - RIGHT) / 2}" y="{HEIGHT - 4}" class="label mid">'
        f"{escape(x_label)}</text>"
        f'<text x="{LEFT}" y="{TOP - 12}" class="label mid">{escape(y_label)}</text>'
    )
    return "".join(parts)


def _right_axis(share: _Scale) -> str:
    """The right axis: % of the roofline limit."""
    right = WIDTH - RIGHT
    ticks = "".join(
        f'<text x="{right + 6}" y="{share(v) + 4}" class="tick limit-tick">{v:.0%}</text>'
        for v in share.ticks()
    )
    return f'<text x="{right}" y="{TOP - 12}" class="label mid">% of limit</text>{ticks}'


def _time_axis(x: _Scale, base: float) -> str:
    """The bottom axis of the timeline, in seconds."""
    ticks = "".join(
        f'<text x="{x(v)}" y="{base + 16}" class="tick mid">{_number(v)} s</text>'
        for v in x.ticks()
    )
    return f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>{ticks}'


def _step_line(x: _Scale, y: _Scale, xs: Sequence[float], bests: Sequence[float | None]) -> str:
    """The best-so-far as a step line (flat until the next improvement)."""
    path: list[str] = []
    last: float | None = None
    for xv, best in zip(xs, bests, strict=True):
        if best is None:
            continue
        if last is None:
            path.append(f"M{x(xv)},{y(best)}")
        else:
            path.append(f"H{x(xv)}V{y(best)}")
        last = best
    return f'<path class="best" d="{"".join(path)}"/>' if path else ""


def _dot(cx: float, cy: float, p: ChartPoint) -> str:
    """One verdict: a dot at its score, or a cross on the axis when it was not correct."""
    score = "" if p.score is None else f", {p.score:.3f}x"
    title = f"<title>#{p.index} {escape(p.candidate)}: {escape(p.verdict)}{score}</title>"
    kind = f"v-{_slug(p.verdict)}"
    if p.score is None:
        return (
            f'<path class="miss {kind}" d="M{cx - 3},{cy - 3}l6,6m0,-6l-6,6" '
            f'data-candidate="{escape(p.candidate)}">{title}</path>'
        )
    return (
        f'<circle class="dot {kind}" cx="{cx}" cy="{cy}" r="3.5" '
        f'data-candidate="{escape(p.candidate)}">{title}</circle>'
    )


def _empty(message: str, height: int = 80) -> str:
    """A chart with nothing to draw yet, saying so."""
    text = f'<text x="{WIDTH / 2}" y="{height / 2}" class="label mid">{escape(message)}</text>'
    return _svg([text], 'data-points="0"', WIDTH, height)


def _svg(parts: Sequence[str], data: str, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The root element around `parts`, scaling to its container."""
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'preserveAspectRatio="xMinYMin meet" {data}>{"".join(parts)}</svg>'
    )


def _number(value: float) -> str:
    """A tick value: whole numbers plain, others to one decimal."""
    return f"{value:.0f}" if abs(value - round(value)) < 0.05 or value >= 100 else f"{value:.1f}"


def _slug(verdict: str) -> str:
    """A verdict as a class name (letters, digits and dashes only)."""
    return "".join(c if c.isalnum() else "-" for c in verdict.lower())[:40]
