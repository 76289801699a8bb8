"""The dashboard put together: for `kevolve serve` from the bot's settings, for `kevolve ui`
from a state file or folder; and mounted on a FastAPI app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from kevolve.bot.dashboard import pages, searchpage, signin
from kevolve.bot.dashboard.access import Access, GitHubAccess, LocalAccess
from kevolve.bot.dashboard.catalog import FolderCatalog, JobCatalog
from kevolve.bot.dashboard.oauth import OAuthApp
from kevolve.bot.dashboard.portal import PREFIX, Dashboard
from kevolve.bot.dashboard.redaction import Redactor
from kevolve.bot.dashboard.renderer import Renderer
from kevolve.bot.settings import BotSettings
from kevolve.bot.storage import Storage
from kevolve.harness.assets import template_dir


def bot_dashboard(settings: BotSettings, storage: Storage) -> Dashboard | None:
    """`kevolve serve`'s dashboard, or None when KEVOLVE_DASHBOARD=off; a ValueError naming the
    fix when it should sign people in but the App's OAuth client is not configured."""
    mode, client = settings.dashboard, settings.github_client_id
    if mode == "auto":
        mode = "github" if client and settings.github_client_secret else "local"
    if mode == "off":
        return None
    if mode == "github" and not (client and settings.github_client_secret):
        raise ValueError(
            "KEVOLVE_DASHBOARD=github signs people in with the App's OAuth client: set "
            "KEVOLVE_GITHUB_CLIENT_ID and KEVOLVE_GITHUB_CLIENT_SECRET_FILE (the App's settings "
            "page on GitHub shows the client id and makes client secrets)"
        )
    access: Access = LocalAccess()
    if mode == "github":
        web, api = settings.github_url, settings.github_api_url
        access = GitHubAccess(OAuthApp(client or "", settings.github_client_secret, web, api))
    known = (
        settings.webhook_secret,
        settings.llm_api_key,
        settings.github_client_secret,
        urlsplit(settings.database_url).password or "",
    )
    return Dashboard(
        catalog=JobCatalog(storage, settings.workdir),
        access=access,
        renderer=Renderer(template_dir("dashboard"), Redactor(known)),
        storage=storage,
        bot_labels=settings.hardware,
        github_url=settings.github_url,
        public_url=settings.bot_url,
        fleet_poll_s=settings.fleet_poll_s,
    )


def folder_dashboard(root: Path, open_to_all: bool = False) -> Dashboard:
    """`kevolve ui`'s dashboard of one state file or a folder of them (no GitHub)."""
    return Dashboard(
        catalog=FolderCatalog(root),
        access=LocalAccess(open_to_all),
        renderer=Renderer(template_dir("dashboard"), Redactor()),
    )


def mount(app: FastAPI, board: Dashboard) -> None:
    """Serve the dashboard's pages under /dashboard on `app`."""
    app.state.dashboard = board
    app.include_router(pages.router)
    app.include_router(searchpage.router)
    app.include_router(signin.router)


def ui_app(board: Dashboard) -> FastAPI:
    """An app that serves only the dashboard, its root sending browsers there."""
    app = FastAPI(title="kevolve ui", docs_url=None, redoc_url=None, openapi_url=None)
    mount(app, board)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """The dashboard is the whole site."""
        return RedirectResponse(f"{PREFIX}/", 307)

    return app
