"""Faults a test injects into the loopback exchange: failing requests and misbehaving candles.

Request faults match a path (and optionally a subset of query parameters), skip the first
``skip`` matches and hit the next ``times`` (None: every one). Candle faults act on what the
klines endpoints serve: a gap is never served, a late candle only ``delay_ms`` after it closes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from tests.support.binance.data import market_id

RATE_LIMIT_MSG = ("Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
                  "Please use the websocket for live updates to avoid polling the API.")
BANNED_MSG = "Way too many requests; IP(127.0.0.1) banned until {until}. Please use the websocket for live updates."


@dataclass
class RequestFault:
    path: str
    params: dict[str, str] = field(default_factory=dict)
    skip: int = 0
    times: int | None = 1
    status: int | None = None  # reply with this status instead of the endpoint's answer
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    stall_s: float = 0.0  # wait this long first (past the client's timeout: a timeout)
    hold: threading.Event | None = None  # wait until set (or the server closes)
    seen: int = 0

    def matches(self, path: str, params: dict[str, str]) -> bool:
        return path == self.path and all(params.get(k) == v for k, v in self.params.items())


@dataclass(frozen=True)
class CandleFault:
    kind: str  # spot | futures
    market_id: str
    series: str  # candles | mark
    ts: int  # open time of the candle
    delay_ms: int | None  # None: a gap, never served


class Faults:
    """Every fault of one server; thread-safe (handlers read it while the test adds to it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[RequestFault] = []
        self._candles: list[CandleFault] = []

    # -- request faults -------------------------------------------------------------------------
    def error(self, path: str, status: int = 503, *, times: int | None = 1, skip: int = 0,
              params: dict[str, str] | None = None) -> RequestFault:
        """Answer ``status`` (a 5xx by default) with an empty body."""
        return self._add(RequestFault(path, params or {}, skip, times, status=status, body=""))

    def reject(self, path: str, code: int, msg: str, status: int = 400, *, times: int | None = 1,
               skip: int = 0, params: dict[str, str] | None = None) -> RequestFault:
        """Answer Binance's JSON error ``{"code": code, "msg": msg}``."""
        return self._add(RequestFault(path, params or {}, skip, times, status=status,
                                      body={"code": code, "msg": msg}))

    def rate_limit(self, path: str, retry_after_s: float | None = 1, *, status: int = 429,
                   times: int | None = 1, skip: int = 0, params: dict[str, str] | None = None) -> RequestFault:
        """429 (or 418, an IP ban) with Binance's -1003 body and a Retry-After header."""
        msg = RATE_LIMIT_MSG if status == 429 else BANNED_MSG.format(until="a while")
        headers = {} if retry_after_s is None else {"Retry-After": f"{retry_after_s:g}"}
        return self._add(RequestFault(path, params or {}, skip, times, status=status,
                                      body={"code": -1003, "msg": msg}, headers=headers))

    def stall(self, path: str, seconds: float, *, times: int | None = 1, skip: int = 0,
              params: dict[str, str] | None = None) -> RequestFault:
        """Answer normally, but only after ``seconds``: a timeout for a client that waits less."""
        return self._add(RequestFault(path, params or {}, skip, times, stall_s=seconds))

    def hold(self, path: str, *, skip: int = 0, params: dict[str, str] | None = None) -> threading.Event:
        """Leave every matching request after the first ``skip`` unanswered until the event is set."""
        event = threading.Event()
        self._add(RequestFault(path, params or {}, skip, None, hold=event))
        return event

    def take(self, path: str, params: dict[str, str]) -> RequestFault | None:
        """The fault this request hits, counting it; None when it goes through."""
        hit = None
        with self._lock:
            for fault in self._requests:
                if not fault.matches(path, params):
                    continue
                fault.seen += 1  # every matching fault counts the request, so skips stay predictable
                active = fault.seen > fault.skip and (fault.times is None or fault.seen <= fault.skip + fault.times)
                if active and hit is None:
                    hit = fault
        return hit

    def _add(self, fault: RequestFault) -> RequestFault:
        with self._lock:
            self._requests.append(fault)
        return fault

    # -- candle faults --------------------------------------------------------------------------
    def gap(self, symbol: str, ts: int, *, series: str = "candles") -> None:
        """The candle opening at ``ts`` is never served (an exchange outage)."""
        self._add_candle(symbol, ts, series, None)

    def late(self, symbol: str, ts: int, delay_ms: int, *, series: str = "candles") -> None:
        """The candle opening at ``ts``, and every later one, are served only ``delay_ms`` after it closes."""
        self._add_candle(symbol, ts, series, delay_ms)

    def candle_faults(self, kind: str, mid: str, series: str) -> list[CandleFault]:
        with self._lock:
            return [f for f in self._candles if (f.kind, f.market_id, f.series) == (kind, mid, series)]

    def _add_candle(self, symbol: str, ts: int, series: str, delay_ms: int | None) -> None:
        kind = "futures" if ":" in symbol else "spot"
        with self._lock:
            self._candles.append(CandleFault(kind, market_id(kind, symbol), series, ts, delay_ms))
