"""The overview pages: repos (or local searches), one repo, the fleet, and the static files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from kevolve.bot.dashboard.catalog import SearchEntry
from kevolve.bot.dashboard.charts import trend_svg
from kevolve.bot.dashboard.overview import SchedulePlan, overview, schedule_plan
from kevolve.bot.dashboard.portal import PREFIX, Dashboard, board_of
from kevolve.bot.dashboard.renderer import SECURITY_HEADERS
from kevolve.bot.dashboard.roster import fleet
from kevolve.bot.fleet_store import FleetStore
from kevolve.bot.pull_store import PullStore
from kevolve.bot.storage import Storage

router = APIRouter(prefix=PREFIX)
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"dashboard.css": "text/css", "dashboard.js": "text/javascript"}
Board = Annotated[Dashboard, Depends(board_of)]


@router.get("", include_in_schema=False)
def bare(board: Board) -> Response:
    """The dashboard's address without its slash."""
    return RedirectResponse(f"{PREFIX}/", 308)


@router.get("/", include_in_schema=False)
def home(request: Request, board: Board) -> Response:
    """The repos with their ops by hardware; locally, the searches."""
    viewer = board.visitor(request)
    if isinstance(viewer, Response):
        return viewer
    if board.storage is None:
        return searches(request, board)
    jobs = board.storage.jobs()
    visible = board.visible(viewer, {j.repo for j in jobs})
    rows = overview(jobs, visible, PullStore(board.storage.engine).closed())
    plans = _plans(board.storage, [row.repo for row in rows])
    trends = {(r.repo, c.op, c.hardware): trend_svg(c.trend) for r in rows for c in r.cells}
    return board.renderer.page(
        "repos", board=board, viewer=viewer, rows=rows, plans=plans, trends=trends
    )


@router.get("/searches", include_in_schema=False)
def searches(request: Request, board: Board) -> Response:
    """Every search the viewer may see, newest last."""
    viewer = board.visitor(request)
    if isinstance(viewer, Response):
        return viewer
    entries = board.catalog.entries()
    visible = board.visible(viewer, {e.repo for e in entries if e.repo})
    shown = [e for e in entries if e.repo is None or e.repo in visible]
    return board.renderer.page("searches", board=board, viewer=viewer, entries=shown)


@router.get("/repos/{owner}/{name}", include_in_schema=False)
def repo(owner: str, name: str, request: Request, board: Board) -> Response:
    """One repo: its ops by hardware with their cases, pull requests and jobs."""
    viewer = board.visitor(request)
    if isinstance(viewer, Response):
        return viewer
    full = f"{owner}/{name}"
    jobs = board.storage.jobs(full) if board.storage is not None else []
    if not jobs or full not in board.visible(viewer, [full]):
        return _missing(board, viewer, "No such repo here.")
    closed = PullStore(board.storage.engine).closed(full) if board.storage is not None else []
    [row] = overview(jobs, closed=closed)
    entries: dict[int, list[SearchEntry]] = {}
    for entry in board.catalog.entries():
        if entry.repo == full and entry.job is not None:
            entries.setdefault(entry.job.id, []).append(entry)
    trends = {(full, c.op, c.hardware): trend_svg(c.trend) for c in row.cells}
    return board.renderer.page(
        "repo",
        board=board,
        viewer=viewer,
        row=row,
        plan=_plans(board.storage, [full])[full] if board.storage is not None else None,
        jobs=list(reversed(jobs)),
        entries=entries,
        trends=trends,
    )


@router.get("/fleet", include_in_schema=False)
def fleet_page(request: Request, board: Board) -> Response:
    """The hardware labels, runners and their runs, waiting and running jobs, failures."""
    viewer = board.visitor(request)
    if isinstance(viewer, Response):
        return viewer
    if board.storage is None:
        return _missing(board, viewer, "A local dashboard has no fleet: it shows state files.")
    repos = {j.repo for j in board.storage.jobs()}
    visible = None if viewer.login is None else board.visible(viewer, repos)
    seen = fleet(board.storage, board.bot_labels, visible)
    return board.renderer.page("fleet", board=board, viewer=viewer, fleet=seen)


@router.get("/static/{name}", include_in_schema=False)
def static(name: str) -> Response:
    """The stylesheet and the script (no other file)."""
    if name not in ASSETS:
        return Response("no such file", 404, media_type="text/plain")
    headers = {**SECURITY_HEADERS, "Cache-Control": "max-age=300"}
    return Response((STATIC / name).read_bytes(), media_type=ASSETS[name], headers=headers)


def _plans(storage: Storage, repos: list[str]) -> dict[str, SchedulePlan]:
    """Each repo's schedule and its next run, as the fleet poller stored them."""
    store, now = FleetStore(storage.engine, storage.now), storage.now()
    return {repo: schedule_plan(store.schedule_mark(repo), now) for repo in repos}


def _missing(board: Dashboard, viewer: object, message: str) -> Response:
    """A 404 page (the same whether a thing does not exist or the viewer may not see it)."""
    return board.renderer.page("refused", 404, board=board, viewer=viewer, message=message)
