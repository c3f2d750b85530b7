"""Loopback Discord webhook and Telegram Bot API servers that speak the real request/reply formats.

Each records every request with the server's own monotonic arrival time (for retry timing), checks
it as the real API would (path, token, chat, payload, length limits) and answers with the API's
reply shapes: Discord 204 / 429 ``retry_after`` / 4xx ``{"message", "code"}``, Telegram
``{"ok": true, "result"}`` / ``{"ok": false, "error_code", "description", "parameters"}``.
Tests script the replies to valid requests (5xx, 429, a slow or held reply); invalid requests
always get the API's error.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

HOLD_LIMIT_S = 10.0  # a held reply is released after this at the latest, so no test hangs


@dataclass(frozen=True)
class Received:
    at: float  # time.monotonic() when the request arrived, read by the server
    path: str
    content_type: str
    body: Any  # the parsed JSON, None if it was not JSON


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-serialisable; None for an empty body
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # answer this late (longer than the client's timeout: a timeout)
    hold: threading.Event | None = None  # answer only once this is set


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that timed out and hung up is expected here, not an error worth a traceback."""


class LoopbackApi:
    """A threaded HTTP server on 127.0.0.1 with a reply script; use as a context manager."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answered: list[Received] = []  # requests whose reply has been written
        self._script: deque[Reply] = deque()
        self._changed = threading.Condition()
        self._holds: list[threading.Event] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                request = Received(time.monotonic(), self.path, self.headers.get("Content-Type", ""), body)
                reply = api._arrive(request)
                if reply.hold is not None:
                    reply.hold.wait(HOLD_LIMIT_S)
                if reply.delay_s:
                    time.sleep(reply.delay_s)  # the protocol under test: a reply slower than the timeout
                payload = b"" if reply.body is None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if payload:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                with api._changed:
                    api.answered.append(request)
                    api._changed.notify_all()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet tests
                pass

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *replies: Reply) -> None:
        """Answer the next valid requests with these replies, in order; then the default."""
        with self._changed:
            self._script.extend(replies)
            self._holds += [r.hold for r in replies if r.hold is not None]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Block until ``count`` requests have arrived; the requests so far."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{type(self).__name__} got {len(self.received)} requests, expected {count}")
            return list(self.received)

    def wait_answered(self, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.answered) >= count, timeout):
                raise AssertionError(f"{type(self).__name__} answered {len(self.answered)}, expected {count}")

    def close(self) -> None:
        for hold in self._holds:
            hold.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _arrive(self, request: Received) -> Reply:
        with self._changed:
            self.received.append(request)
            self._changed.notify_all()
            refusal = self._refuse(request)
            if refusal is not None:
                return refusal
            return self._script.popleft() if self._script else self._accept(request)

    def _refuse(self, request: Received) -> Reply | None:
        """The API's error for an invalid request, or None."""
        raise NotImplementedError

    def _accept(self, request: Received) -> Reply:
        raise NotImplementedError


class DiscordWebhookServer(LoopbackApi):
    """``POST /api/webhooks/{id}/{token}`` with ``{"content": ...}`` -> 204 No Content."""

    def __init__(self, webhook_id: str = "1122334455667788990", token: str = "loopback-webhook-token") -> None:
        self.webhook_id, self.token = webhook_id, token
        super().__init__()

    @property
    def webhook_url(self) -> str:
        return f"{self.origin}/api/webhooks/{self.webhook_id}/{self.token}"

    def contents(self) -> list[str]:
        return [r.body["content"] for r in self.received]

    @staticmethod
    def rate_limited(retry_after: float) -> Reply:
        """Discord's 429: seconds (a float) in the body, whole seconds in Retry-After."""
        return Reply(429, {"message": "You are being rate limited.", "retry_after": retry_after, "global": False},
                     {"Retry-After": str(math.ceil(retry_after)), "X-RateLimit-Scope": "shared",
                      "X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "0",
                      "X-RateLimit-Reset-After": f"{retry_after:.3f}"})

    def _refuse(self, request: Received) -> Reply | None:
        if request.path.split("?")[0] != f"/api/webhooks/{self.webhook_id}/{self.token}":
            return Reply(404, {"message": "Unknown Webhook", "code": 10015})
        content = request.body.get("content") if isinstance(request.body, dict) else None
        if not request.content_type.startswith("application/json") or not isinstance(content, str) or not content:
            return Reply(400, {"message": "Cannot send an empty message", "code": 50006})
        if utf16_units(content) > 2000:
            return Reply(400, {"message": "Invalid Form Body", "code": 50035, "errors": {"content": {"_errors": [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}})
        return None

    def _accept(self, request: Received) -> Reply:
        return Reply(204)


class TelegramBotServer(LoopbackApi):
    """``POST /bot{token}/sendMessage`` with ``{"chat_id", "text"}`` -> 200 ``{"ok": true, "result"}``."""

    def __init__(self, token: str = "123456789:AAloopback-bot-token", chat_id: str = "-1001234567890") -> None:
        self.token, self.chat_id = token, chat_id
        self._message_ids = iter(range(1, 1_000_000))
        super().__init__()

    @property
    def api_base(self) -> str:
        return self.origin

    def texts(self) -> list[str]:
        return [r.body["text"] for r in self.received]

    @staticmethod
    def flood(retry_after: int) -> Reply:
        """Telegram's flood control: whole seconds in ``parameters.retry_after``."""
        body = {"ok": False, "error_code": 429, "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after}}
        return Reply(429, body, {"Retry-After": str(retry_after)})

    @staticmethod
    def error(code: int, description: str) -> Reply:
        return Reply(code, {"ok": False, "error_code": code, "description": description})

    def _refuse(self, request: Received) -> Reply | None:
        match = re.fullmatch(r"/bot([^/]+)/(\w+)", request.path)
        if match is None:
            return self.error(404, "Not Found")
        if match[1] != self.token:
            return self.error(401, "Unauthorized")
        if match[2] != "sendMessage":
            return self.error(404, "Not Found: method not found")
        body = request.body if isinstance(request.body, dict) else {}
        if str(body.get("chat_id")) != self.chat_id:
            return self.error(400, "Bad Request: chat not found")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            return self.error(400, "Bad Request: message text is empty")
        if utf16_units(text) > 4096:
            return self.error(400, "Bad Request: message is too long")
        return None

    def _accept(self, request: Received) -> Reply:
        return Reply(200, {"ok": True, "result": {
            "message_id": next(self._message_ids), "date": int(time.time()),
            "chat": {"id": int(self.chat_id), "title": "ratchet alerts", "type": "supergroup"},
            "text": request.body["text"]}})
