"""The search page, its lineage node panel, and the live feed that keeps both current.

The page renders in full on the server (with `?node=ID`, the node's panel open). Its script
polls `live` with the version it shows; the answer is empty until the search changed, then it
carries the fresh chart, summary, tree and timeline. A tree node opens through `node`, a
fragment, without leaving the page.
"""

from __future__ import annotations

import re
from html import escape
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from kevolve.bot.dashboard.access import Viewer
from kevolve.bot.dashboard.ancestry import tree_svg
from kevolve.bot.dashboard.catalog import SearchEntry, Unreadable, load, version
from kevolve.bot.dashboard.charts import progress_svg, timeline_svg, verdict_svg
from kevolve.bot.dashboard.nodeview import node_view
from kevolve.bot.dashboard.portal import PREFIX, Dashboard, board_of
from kevolve.bot.dashboard.renderer import SECURITY_HEADERS
from kevolve.bot.dashboard.searchview import SearchView, search_view

router = APIRouter(prefix=f"{PREFIX}/search")
CANDIDATE = re.compile(r"[0-9a-f]{1,64}")
Board = Annotated[Dashboard, Depends(board_of)]


@router.get("/{key}", include_in_schema=False)
def search(key: str, request: Request, board: Board, node: str = "") -> Response:
    """One search: its charts, counts, islands, models, lineage tree and timeline."""
    found = _find(key, request, board)
    if isinstance(found, Response):
        return found
    viewer, entry = found
    loaded = load(entry)
    if not isinstance(loaded, tuple):  # nothing yet, or a stored result that does not fit
        unreadable = loaded.reason if isinstance(loaded, Unreadable) else None
        return board.renderer.page(
            "waiting",
            board=board,
            viewer=viewer,
            entry=entry,
            version=version(entry),
            unreadable=unreadable,
        )
    records, complete = loaded
    view = search_view(records, complete)
    chosen = node_view(records, node) if CANDIDATE.fullmatch(node) else None
    return board.renderer.page(
        "search",
        board=board,
        viewer=viewer,
        entry=entry,
        node=chosen,
        pull_body=_pull_body(entry),
        **_live_parts(board, entry, view, chosen.candidate.id if chosen else None),
    )


@router.get("/{key}/node/{candidate}", include_in_schema=False)
def node(key: str, candidate: str, request: Request, board: Board) -> Response:
    """One lineage node's panel, as a fragment of the search page."""
    found = _find(key, request, board)
    if isinstance(found, Response):
        return found
    _viewer, entry = found
    loaded = load(entry) if CANDIDATE.fullmatch(candidate) else None
    chosen = node_view(loaded[0], candidate) if isinstance(loaded, tuple) else None
    if chosen is None:
        return Response("no such candidate", 404, media_type="text/plain")
    html = board.renderer.text("node", node=chosen, entry=entry, board=board)
    return Response(html, media_type="text/html", headers=SECURITY_HEADERS)


@router.get("/{key}/live", include_in_schema=False)
def live(key: str, request: Request, board: Board, since: str = "", node: str = "") -> Response:
    """`{"version": ...}` while nothing changed since `since`; else the fresh page parts."""
    found = _find(key, request, board)
    if isinstance(found, Response):  # no session (401), not from this host (403), none (404)
        status = {303: 401}.get(found.status_code, found.status_code)
        return JSONResponse({"gone": True}, status, headers=SECURITY_HEADERS)
    _viewer, entry = found
    now = version(entry)
    loaded = None if now == since else load(entry)
    if not isinstance(loaded, tuple):
        return JSONResponse({"version": now if now == since else since}, headers=SECURITY_HEADERS)
    view = search_view(*loaded)
    parts = _live_parts(board, entry, view, node if CANDIDATE.fullmatch(node) else None)
    text, badge = board.renderer.text, escape(entry.status)
    body = {
        "version": now,
        "points": len(view.points),
        "status": f'<span class="status s-{badge}">{badge}</span>',
        "summary": text("summary", board=board, entry=entry, **parts),
        "progress": parts["progress"],
        "progress_time": parts["progress_time"],
        "tree": parts["tree"],
        "timeline": text("timeline", **parts),
    }
    return JSONResponse(body, headers=SECURITY_HEADERS)


def _find(key: str, request: Request, board: Dashboard) -> tuple[Viewer, SearchEntry] | Response:
    """The viewer and the search `key`, or the answer when there is none to show them."""
    viewer = board.visitor(request)
    if isinstance(viewer, Response):
        return viewer
    entry = board.catalog.entry(key)
    if entry is None or not board.can_see(viewer, entry):  # the same answer for both
        return board.renderer.page(
            "refused", 404, board=board, viewer=viewer, message="No such search here."
        )
    return viewer, entry


def _live_parts(
    board: Dashboard, entry: SearchEntry, view: SearchView, chosen: str | None
) -> dict[str, Any]:
    """What the page and the live feed show of a search, the SVG drawn."""
    base = f"{PREFIX}/search/{entry.key}"
    timeline = view.timeline
    return {
        "view": view,
        "version": version(entry),
        "progress": progress_svg(view.points, "candidates"),
        "progress_time": progress_svg(view.points, "seconds"),
        "verdicts": verdict_svg(view.counts),
        "tree": tree_svg(view.placed, lambda cid: f"{base}?node={cid}#node", view.best, chosen),
        "timeline": (
            timeline_svg(timeline.intervals, timeline.lanes, timeline.wall_s) if timeline else ""
        ),
    }


def _pull_body(entry: SearchEntry) -> str | None:
    """The pull request body `kevolve demo` rendered for this search, if any."""
    if entry.pull_body is None:
        return None
    try:
        return entry.pull_body.read_text(errors="replace")[:200_000]
    except OSError:
        return None
