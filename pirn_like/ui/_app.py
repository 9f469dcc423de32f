"""The explorer as a Starlette app over an opened ``RunHistory``."""

from __future__ import annotations

import logging
import secrets

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from pirn_like.protocols import RunHistory
from pirn_like.ui._auth import Gate
from pirn_like.ui._detail import run_page
from pirn_like.ui._lineage import lineage_page
from pirn_like.ui._list import runs_page
from pirn_like.ui._markup import CSP, page, text
from pirn_like.ui._queries import BadQuery, RunFilter, find_runs, hash_neighbours, load_run

__all__ = ["build_ui_app", "logger"]

logger = logging.getLogger("pirn_like.ui")
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def build_ui_app(history: RunHistory, *, token: str | None = None, auth: bool = True) -> Starlette:
    """The run explorer over ``history`` (already opened; the caller closes it).

    Read-only: ``GET /`` lists runs (query ``status``, ``trigger``, ``after``,
    ``before``, ``limit``), ``GET /runs/{run_id}`` shows one, ``GET /lineage?hash=``
    shows who produced and consumed a hash; any other method gets 405. With ``auth``
    (the default) every request needs ``token``; without one a token is generated and
    logged once. ``auth=False`` serves everyone and logs a warning. The token in use
    is ``app.state.token``.
    """
    if not auth and token is not None:
        raise ValueError("build_ui_app got a token and auth=False: drop one of them")
    if auth and token is None:
        token = secrets.token_urlsafe(32)
        logger.warning("run explorer token (generated): %s", token)
    if not auth:
        logger.warning("run explorer authentication is OFF: anyone who can reach it can read runs")
    views = _Views(history)
    app = Starlette(
        routes=[
            Route("/", views.runs, methods=["GET"]),
            Route("/runs/{run_id:path}", views.run, methods=["GET"]),
            Route("/lineage", views.lineage, methods=["GET"]),
        ]
    )
    app.add_middleware(Gate, token=token)
    app.state.token = token
    return app


class _Views:
    def __init__(self, history: RunHistory) -> None:
        self.history = history

    async def runs(self, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        try:
            wanted = RunFilter.from_query(request.query_params)
        except BadQuery as exc:
            return _problem(root, 400, str(exc))
        runs, more = await find_runs(self.history, wanted)
        return _html(runs_page(root, wanted, runs, more))

    async def run(self, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        run_id = str(request.path_params["run_id"])
        loaded = await load_run(self.history, run_id)
        if loaded is None:
            return _problem(root, 404, f"history has no run {run_id!r}")
        return _html(run_page(root, *loaded))

    async def lineage(self, request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        content_hash = request.query_params.get("hash") or None
        if content_hash is None:
            return _html(lineage_page(root, None, None))
        try:
            found = await hash_neighbours(self.history, content_hash)
        except BadQuery as exc:
            return _problem(root, 400, str(exc))
        return _html(lineage_page(root, content_hash, found))


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers=_HEADERS)


def _problem(root: str, status: int, message: str) -> HTMLResponse:
    body = f'<h1>{status}</h1><section><p class="error">{text(message)}</p></section>'
    return _html(page(str(status), body, root=root), status)
