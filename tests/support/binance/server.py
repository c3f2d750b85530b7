"""A loopback Binance REST server: a real HTTP server on 127.0.0.1, driven by the real ccxt client.

One object holds the state: the exchange clock, the faults, the route table and the request
log. Endpoints are plain functions ``handler(server, request) -> Reply`` in a table keyed by
(method, path); ``market_routes`` has the public market-data ones, and signed endpoints (orders,
account, positions) are added the same way (``server.route(...)``)::

    with FakeBinance(FakeClock(ts)) as exchange:
        client = connect("futures", ConnectionConfig(base_url=exchange.base_url))
        exchange.faults.rate_limit("/fapi/v1/klines", retry_after_s=1)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.binance.clock import FakeClock
from tests.support.binance.faults import Faults


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: dict[str, str]  # query string and form body, last value wins
    headers: dict[str, str]
    query: str = ""  # the raw query string and body, as sent: what a signature covers
    body: str = ""


@dataclass
class Reply:
    body: Any  # JSON-able, or a str sent as is
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


def binance_error(code: int, msg: str, status: int = 400) -> Reply:
    """Binance's JSON error, e.g. ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return Reply({"code": code, "msg": msg}, status)


Handler = Callable[["FakeBinance", Request], Reply]


@dataclass
class LoggedRequest:
    """One request as the server saw it: when it arrived (wall and exchange time) and what it answered."""

    method: str
    path: str
    params: dict[str, str]
    arrived_s: float  # time.monotonic() on arrival
    exchange_ms: int  # the exchange clock on arrival
    status: int | None = None  # None while unanswered


class FakeBinance:
    """The loopback exchange. ``start()`` binds 127.0.0.1 on a free port; ``base_url`` points ccxt at it."""

    def __init__(self, clock: FakeClock, *, routes: dict[tuple[str, str], Handler] | None = None):
        from tests.support.binance.market_routes import ROUTES

        self.clock = clock
        self.faults = Faults()
        self.routes: dict[tuple[str, str], Handler] = dict(ROUTES if routes is None else routes)
        self._log: list[LoggedRequest] = []
        self._changed = threading.Condition()
        self._closing = threading.Event()
        self._http: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> FakeBinance:
        http = ThreadingHTTPServer(("127.0.0.1", 0), _HttpHandler)
        http.daemon_threads = True
        http.fake = self  # type: ignore[attr-defined]
        self._http = http
        self._thread = threading.Thread(target=http.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fake-binance", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving; stalled and held requests are let go at once."""
        self._closing.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    def __enter__(self) -> FakeBinance:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closing(self) -> threading.Event:
        """Set once the server closes: a handler waiting on something lets go."""
        return self._closing

    @property
    def base_url(self) -> str:
        assert self._http is not None, "start() the server first"
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}"

    def route(self, method: str, path: str) -> Callable[[Handler], Handler]:
        """Decorator adding an endpoint: ``@server.route("POST", "/fapi/v1/order")``."""

        def add(handler: Handler) -> Handler:
            self.routes[(method, path)] = handler
            return handler

        return add

    # -- the request log ------------------------------------------------------------------------
    def requests(self, path: str | None = None) -> list[LoggedRequest]:
        """Requests so far, oldest first (only those to ``path`` when given)."""
        with self._changed:
            return [r for r in self._log if path is None or r.path == path]

    def wait_for(self, seen: Callable[[LoggedRequest], bool], timeout_s: float = 10.0) -> LoggedRequest:
        """The first logged request for which ``seen`` holds, waiting for it to arrive."""
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                found = next((r for r in self._log if seen(r)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no such request within {timeout_s} s; seen: {self._log[-5:]}")
                self._changed.wait(left)

    # -- serving ----------------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply:
        """Log the request, apply the fault it hits (if any), then answer from the route table."""
        entry = LoggedRequest(request.method, request.path, request.params, time.monotonic(), self.clock.now())
        with self._changed:
            self._log.append(entry)
            self._changed.notify_all()
        reply = self._answer(request)
        with self._changed:
            entry.status = reply.status
            self._changed.notify_all()
        return reply

    def _answer(self, request: Request) -> Reply:
        fault = self.faults.take(request.path, request.params)
        if fault is not None:
            if fault.hold is not None:
                while not (fault.hold.wait(0.05) or self._closing.is_set()):
                    pass
            if fault.stall_s:
                self._closing.wait(fault.stall_s)
            if fault.status is not None:
                return Reply(fault.body, fault.status, dict(fault.headers))
        handler = self.routes.get((request.method, request.path))
        if handler is None:
            return Reply("<html><body><h1>404 Not Found</h1></body></html>", 404)
        return handler(self, request)


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Binance serves ccxt's requests session
    disable_nagle_algorithm = True  # headers and body go out as they are written, not 40 ms apart (delayed ACK)

    def _serve(self) -> None:
        fake: FakeBinance = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params.update(parse_qsl(body, keep_blank_values=True))
        request = Request(self.command, url.path, params, dict(self.headers.items()), url.query, body)
        reply = fake.handle(request)
        body = reply.body if isinstance(reply.body, str) else json.dumps(reply.body, separators=(",", ":"))
        data = body.encode()
        try:
            self.send_response(reply.status)
            kind = "application/json" if not isinstance(reply.body, str) else "text/html"
            self.send_header("Content-Type", f"{kind};charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (a timeout test)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet: the request log on the server object is what tests read."""
