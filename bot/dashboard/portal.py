"""`Dashboard`: what every page needs (its searches, access policy, renderer, the bot's
database), and the door each request passes: who looks, and what they may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from kevolve.bot.dashboard.access import Access, Caller, Viewer
from kevolve.bot.dashboard.catalog import Catalog, SearchEntry
from kevolve.bot.dashboard.renderer import SECURITY_HEADERS, Renderer
from kevolve.bot.storage import Storage

PREFIX = "/dashboard"


@dataclass
class Dashboard:
    """One dashboard: `kevolve serve`'s (with the bot's database) or `kevolve ui`'s."""

    catalog: Catalog
    access: Access
    renderer: Renderer
    storage: Storage | None = None  # the bot's jobs and fleet; None for local state files
    bot_labels: tuple[str, ...] = ()
    github_url: str | None = None  # GitHub's web address, for links to runs and pulls
    public_url: str | None = None  # where people reach the bot (the sign-in's return address)
    fleet_poll_s: float = 0.0

    def visitor(self, request: Request) -> Viewer | Response:
        """The request's viewer, or the answer for one who may not look: a redirect to sign in,
        or a refusal that says why (it names nothing of what the dashboard holds)."""
        viewer = self.access.viewer(caller(request))
        if viewer is not None:
            return viewer
        if self.access.signs_in:
            back = quote(request.url.path, safe="/")
            return RedirectResponse(f"{PREFIX}/signin?next={back}", 303, SECURITY_HEADERS)
        return self.renderer.page(
            "refused",
            403,
            board=self,
            viewer=None,
            message="This dashboard answers only on the host it runs on (a loopback address, "
            "not through a proxy). To see it from elsewhere, have the operator turn on "
            "GitHub sign-in (KEVOLVE_DASHBOARD=github).",
        )

    def visible(self, viewer: Viewer, repos: Iterable[str]) -> set[str]:
        """The repos among `repos` the viewer may see."""
        return self.access.readable(viewer, repos)

    def can_see(self, viewer: Viewer, entry: SearchEntry) -> bool:
        """Whether the viewer may see a search: a local one always, a job's when its repo is
        visible to them."""
        return entry.repo is None or entry.repo in self.visible(viewer, [entry.repo])

    def home_url(self, request: Request) -> str:
        """Where people reach the dashboard from outside: the public URL, else this request's."""
        base = self.public_url or str(request.base_url)
        return base.rstrip("/") + PREFIX


def caller(request: Request) -> Caller:
    """What the access policy needs of a request."""
    return Caller(
        client=request.client.host if request.client else None,
        host=request.headers.get("host", ""),
        headers={k.lower(): v for k, v in request.headers.items()},
        cookies=dict(request.cookies),
    )


def board_of(request: Request) -> Dashboard:
    """The dashboard the app serves."""
    board: Dashboard = request.app.state.dashboard
    return board
