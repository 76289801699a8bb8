"""The local page of `kevolve app create`: it posts kevolve's manifest to GitHub, takes the code
GitHub sends the browser back with, and writes the App it exchanges that code for."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from kevolve.bot.app_files import AppFiles, AppFilesError
from kevolve.bot.app_manifest import EVENTS, PERMISSIONS, AppManifest
from kevolve.bot.conversion import ConversionError, NewApp, convert
from kevolve.harness.assets import template_dir

PAGES = template_dir("app")
CALLBACK_PATH = "/created"  # the manifest's redirect_url


@dataclass(frozen=True)
class SignupPlan:
    """What the page does: the manifest, GitHub's page for it and where the App goes."""

    manifest: AppManifest
    creation_url: str  # GitHub's page that takes the manifest, with `state`
    state: str  # GitHub sends it back with the code: a redirect without it is not ours
    page_token: str  # the start page answers only with it: the address the command printed
    org: str | None
    api_url: str
    files: AppFiles
    force: bool


@dataclass(frozen=True)
class SignupOutcome:
    """How the flow ended: the App written, or what went wrong."""

    app: NewApp | None
    error: str | None = None


def signup_app(plan: SignupPlan, finish: Callable[[SignupOutcome], None]) -> FastAPI:
    """The page's web app; `finish` is called once, when a code was exchanged or failed to be."""
    app = FastAPI(title="kevolve app create", docs_url=None, redoc_url=None, openapi_url=None)
    pages = Environment(loader=FileSystemLoader(PAGES), autoescape=True, undefined=StrictUndefined)
    used = threading.Lock()  # the first redirect with our state takes it; a code works once

    def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = pages.get_template(f"{name}.html.j2").render(**context)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    @app.get("/", response_class=HTMLResponse)
    def start(token: str = "") -> HTMLResponse:
        """The manifest, and the button that posts it to GitHub."""
        if not hmac.compare_digest(token.encode(), plan.page_token.encode()):
            message = "Open the address `kevolve app create` printed, with its token."
            return page("failed", 403, title="Not this address", message=message)
        return page(
            "start",
            manifest=plan.manifest.to_dict(),
            manifest_json=plan.manifest.to_json(),
            action=plan.creation_url,
            org=plan.org,
            directory=plan.files.key.parent,
            permissions=PERMISSIONS,
            events=EVENTS,
        )

    @app.get(CALLBACK_PATH, response_class=HTMLResponse)
    def created(code: str = "", state: str = "") -> HTMLResponse:
        """GitHub's redirect: exchange the code, write the App, say what is next."""
        if not hmac.compare_digest(state.encode(), plan.state.encode()):
            message = (
                "This redirect does not carry the state this page sent to GitHub, so it did not "
                "come from the registration started here; nothing was exchanged or written. "
                "Fix: register through the address `kevolve app create` printed."
            )
            return page("failed", 400, title="State mismatch", message=message)
        if not used.acquire(blocking=False):
            message = "This registration has been handled already; see the command's output."
            return page("failed", 409, title="Already handled", message=message)
        try:
            new = convert(plan.api_url, code)
            plan.files.write(new, plan.api_url, plan.force)
        except (ConversionError, AppFilesError) as exc:
            finish(SignupOutcome(None, str(exc)))
            return page("failed", 502, title="GitHub's App was not written", message=str(exc))
        finish(SignupOutcome(new))
        return page("created", app=new, files=plan.files)

    return app
