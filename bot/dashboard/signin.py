"""Sign-in with GitHub (the App's OAuth web flow) and sign-out, for an exposed dashboard.

The state GitHub hands back must match the one this browser was given in a short-lived cookie;
the page to return to is always a dashboard path, never an address from outside.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from kevolve.bot.dashboard.access import (
    SESSION_COOKIE,
    SESSION_S,
    SIGNIN_S,
    STATE_COOKIE,
    GitHubAccess,
)
from kevolve.bot.dashboard.oauth import OAuthError
from kevolve.bot.dashboard.portal import PREFIX, Dashboard, board_of
from kevolve.bot.dashboard.renderer import SECURITY_HEADERS

router = APIRouter(prefix=PREFIX)
CALLBACK = "/signin/callback"
Board = Annotated[Dashboard, Depends(board_of)]


@router.get("/signin", include_in_schema=False)
def signin(request: Request, board: Board, next: str = "") -> Response:
    """Send the browser to GitHub to sign in, remembering where to come back to."""
    access = board.access
    if not isinstance(access, GitHubAccess):
        return RedirectResponse(f"{PREFIX}/", 303, SECURITY_HEADERS)
    target, state = access.begin(_inside(next), _callback(board, request))
    answer = RedirectResponse(target, 303, SECURITY_HEADERS)
    _cookie(answer, board, request, STATE_COOKIE, state, int(SIGNIN_S))
    return answer


@router.get(CALLBACK, include_in_schema=False)
def callback(request: Request, board: Board, code: str = "", state: str = "") -> Response:
    """GitHub's redirect: trade the code for a session, then back to the page asked for."""
    access = board.access
    if not isinstance(access, GitHubAccess):
        return RedirectResponse(f"{PREFIX}/", 303, SECURITY_HEADERS)
    remembered = request.cookies.get(STATE_COOKIE, "")
    try:
        if not code or not state:
            raise OAuthError("GitHub sent no code back: sign in again")
        session, back_to = access.finish(state, remembered, code, _callback(board, request))
    except OAuthError as exc:
        return board.renderer.page("refused", 403, board=board, viewer=None, message=str(exc))
    answer = RedirectResponse(back_to, 303, SECURITY_HEADERS)
    _cookie(answer, board, request, SESSION_COOKIE, session, int(SESSION_S))
    answer.delete_cookie(STATE_COOKIE, path=PREFIX)
    return answer


@router.post("/signout", include_in_schema=False)
def signout(request: Request, board: Board) -> Response:
    """Forget the session (and its token)."""
    if isinstance(board.access, GitHubAccess):
        board.access.end(request.cookies.get(SESSION_COOKIE, ""))
    answer = board.renderer.page(
        "refused", 200, board=board, viewer=None, message="Signed out.", signed_out=True
    )
    answer.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return answer


def _inside(path: str) -> str:
    """`path` when it is a dashboard page, else the dashboard's home (no open redirect)."""
    ok = path.startswith(f"{PREFIX}/") and not path.startswith("//") and "\\" not in path
    return path if ok and "://" not in path else f"{PREFIX}/"


def _callback(board: Dashboard, request: Request) -> str:
    """The address GitHub sends the browser back to."""
    return board.home_url(request) + CALLBACK


def _cookie(
    answer: Response, board: Dashboard, request: Request, name: str, value: str, age: int
) -> None:
    """Set an HttpOnly, same-site cookie for the dashboard's paths (Secure over https)."""
    secure = board.home_url(request).startswith("https://")
    answer.set_cookie(
        name, value, max_age=age, path=PREFIX, httponly=True, samesite="lax", secure=secure
    )
