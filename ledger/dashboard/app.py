"""The dashboard as an ASGI app (starlette): two pages and the JSON endpoints they poll.

Read-only: every request opens the ledgers it needs read-only and closes them. With a token set,
every request must carry it (`?token=`, the `X-Ratchet-Token` header, or `Authorization: Bearer`).
"""

from __future__ import annotations

import hmac
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from core.errors import LedgerError
from ledger.dashboard.pages import REFRESH_MS, index_page, run_page
from ledger.dashboard.runs import RunsFolder
from ledger.report.markup import plotly_js

SCRIPT = Path(__file__).with_name("static") / "dashboard.js"


class TokenGate(BaseHTTPMiddleware):
    """Refuse (401) any request that does not carry the dashboard's token."""

    def __init__(self, app, token: str) -> None:
        super().__init__(app)
        self.token = token.encode()

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        bearer = request.headers.get("authorization", "")
        given = (request.query_params.get("token") or request.headers.get("x-ratchet-token")
                 or (bearer[7:] if bearer.lower().startswith("bearer ") else ""))
        if not hmac.compare_digest(given.encode(), self.token):
            return PlainTextResponse("a token is required: add ?token=... to the address", status_code=401)
        return await call_next(request)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(runs_dir: Path, token: str | None = None, refresh_ms: int = REFRESH_MS) -> Starlette:
    """The dashboard over one runs folder; `token`, when given, is required on every request;
    the pages poll every `refresh_ms`."""
    runs = RunsFolder(runs_dir)

    async def index(request: Request) -> Response:
        return HTMLResponse(index_page(str(runs.root), request.query_params.get("token"), refresh_ms))

    async def run_html(request: Request) -> Response:
        try:
            run_dir = runs.resolve(request.path_params["run"])
        except FileNotFoundError as exc:
            return PlainTextResponse(str(exc), status_code=404)
        return HTMLResponse(run_page(runs.name(run_dir), request.query_params.get("token"), refresh_ms))

    async def api_runs(_: Request) -> Response:
        try:
            return JSONResponse({"runs": await run_in_threadpool(runs.index)})
        except LedgerError as exc:
            return _error(503, str(exc))

    async def api_live(request: Request) -> Response:
        return await _read(request, runs.live)

    async def api_view(request: Request) -> Response:
        return await _read(request, runs.view, request.path_params["view"])

    async def _read(request: Request, job, *args) -> Response:
        try:
            run_dir = runs.resolve(request.path_params["run"])
            return JSONResponse(await run_in_threadpool(job, run_dir, *args))
        except (FileNotFoundError, KeyError) as exc:
            return _error(404, str(exc).strip("'\""))
        except LedgerError as exc:  # e.g. locked by the agent before its first snapshot
            return _error(503, str(exc))

    async def plotly(_: Request) -> Response:
        return Response(plotly_js(), media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    async def script(_: Request) -> Response:
        return Response(SCRIPT.read_text(encoding="utf-8"), media_type="text/javascript")

    routes = [
        Route("/", index),
        Route("/runs/{run:path}", run_html),
        Route("/api/runs", api_runs),
        Route("/api/runs/{run:path}/live", api_live),
        Route("/api/runs/{run:path}/views/{view}", api_view),
        Route("/static/plotly.js", plotly),
        Route("/static/dashboard.js", script),
    ]
    middleware = [Middleware(TokenGate, token=token)] if token else []
    return Starlette(routes=routes, middleware=middleware)
