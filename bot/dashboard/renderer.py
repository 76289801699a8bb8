"""`Renderer`: the dashboard's Jinja2 templates, their filters, and safe response headers.

Every value a template prints passes the redactor (the environment's `finalize`), so no page
can show a secret whatever a template forgets. Pages forbid inline script and style, framing
and sending the referrer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from kevolve.bot.dashboard.redaction import Redactor
from kevolve.bot.jobrecord import JobStatus
from markupsafe import Markup

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}


class Renderer:
    """Renders the dashboard's pages."""

    def __init__(
        self, folder: Path, redact: Redactor, clock: Callable[[], datetime] | None = None
    ) -> None:
        self._redact = redact
        self._clock = clock or (lambda: datetime.now(UTC))
        self.env = Environment(
            loader=FileSystemLoader(folder),
            autoescape=True,
            undefined=StrictUndefined,
            finalize=self._finalize,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters.update(
            ago=self.ago,
            seconds=seconds,
            speedup=speedup,
            ms=milliseconds,
            shape=shape,
            usd=usd,
            share=share,
            svg=Markup,
        )
        self.env.globals.update(JobStatus=JobStatus)  # pages compare a job's status with it

    def page(self, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        """A whole page from `name`.html.j2."""
        return HTMLResponse(self.text(name, **context), status, headers=SECURITY_HEADERS)

    def text(self, name: str, **context: Any) -> str:
        """A template rendered to text (a page, or a fragment a script puts into one)."""
        return self.env.get_template(f"{name}.html.j2").render(**context)

    def ago(self, moment: datetime | None) -> str:
        """How long ago `moment` was, in words."""
        if moment is None:
            return "never"
        past = (self._clock() - moment).total_seconds()
        if abs(past) < 5:
            return "just now"
        return f"{seconds(abs(past))} {'ago' if past > 0 else 'from now'}"

    def _finalize(self, value: Any) -> Any:
        """Every printed value, with secrets masked (SVG and other markup stay markup)."""
        if isinstance(value, Markup):
            return Markup(self._redact(str(value)))
        if isinstance(value, str):
            return self._redact(value)
        return value


def seconds(value: float | None) -> str:
    """A duration in words: 42 s, 3 min 5 s, 2 h 10 min."""
    if value is None:
        return "—"
    total = round(value)
    if total < 60:
        return f"{value:.0f} s" if value >= 1 else f"{value:.2f} s"
    if total < 3600:
        return f"{total // 60} min {total % 60} s"
    return f"{total // 3600} h {total % 3600 // 60} min"


def speedup(value: float | None) -> str:
    """A speedup as `1.23×`, or a dash."""
    return "—" if value is None else f"{value:.2f}×"


def milliseconds(value: float | None) -> str:
    """A time in milliseconds, or a dash."""
    return "—" if value is None else f"{value:.4g} ms"


def shape(dims: Sequence[int]) -> str:
    """A shape as `64x128`."""
    return "x".join(str(d) for d in dims) if dims else "(as given)"


def usd(value: float | None) -> str:
    """A cost in US dollars."""
    return "—" if value is None else f"${value:.4f}"


def share(value: float | None) -> str:
    """A fraction as a percentage."""
    return "—" if value is None else f"{value:.0%}"
