"""Binance through ccxt: the one border where ccxt's errors become ours, with bounded retries.

``make_client`` builds the raw sync ccxt exchange (``binance`` for spot, ``binanceusdm`` for
USDT-M perpetuals) from the ``exchange`` config. ``BinanceClient`` wraps it with the calls Ratchet
makes (markets, server time, candles, funding), each translated and retried::

    ccxt error                                   ours                   retried
    DDoSProtection, RateLimitExceeded (429/418)  RateLimited            yes, after Retry-After
    NetworkError, RequestTimeout, 5xx, BadResponse  ExchangeUnavailable  yes, exponential back-off
    AuthenticationError, PermissionDenied        AuthenticationFailed   no
    BadRequest, BadSymbol, InvalidOrder, ...     ExchangeRejected       no
    any other ccxt error                         ExchangeError          no
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import ccxt

from components.exchange.connection import ConnectionConfig
from components.market.timeframes import iso_utc
from core.errors import (
    AuthenticationFailed,
    ConfigError,
    ExchangeError,
    ExchangeRejected,
    ExchangeUnavailable,
    RateLimited,
)

__all__ = ["ApiKeys", "BinanceClient", "RetryNote", "RetryPolicy", "connect", "make_client", "translate"]

log = logging.getLogger("ratchet.exchange")
T = TypeVar("T")

# kind -> (ccxt class, the only market type its load_markets fetches, ccxt defaultType)
_EXCHANGES = {"spot": ("binance", "spot", "spot"), "futures": ("binanceusdm", "linear", "swap")}
# Binance serves up to 1000 spot and 1500 futures klines per request, but ccxt's fetch_ohlcv
# caps every request at 1000 (and cuts a longer reply to 1000), so 1000 is the page size.
KLINE_LIMIT = 1000
FUNDING_LIMIT = 1000  # /fapi/v1/fundingRate
_REJECTED = (ccxt.BadRequest, ccxt.OperationRejected, ccxt.InsufficientFunds, ccxt.InvalidOrder,
             ccxt.NotSupported, ccxt.ArgumentsRequired, ccxt.InvalidAddress)


@dataclass(frozen=True)
class ApiKeys:
    """Binance API credentials, from the environment only; never printed."""

    api_key: str
    secret: str = field(repr=False)


def make_client(kind: str, connection: ConnectionConfig, *, keys: ApiKeys | None = None) -> ccxt.Exchange:
    """A sync ccxt exchange for ``kind`` ('spot' or 'futures'), offline until first used.

    Rate limiting is on; ``load_markets`` fetches only the kind's exchangeInfo; ``base_url``
    replaces scheme and host of every API URL (sandbox and demo ones too) and wins over ``testnet``,
    which switches to ccxt's sandbox (Binance testnet) URLs.
    """
    if kind not in _EXCHANGES:
        raise ConfigError(f"unknown market kind {kind!r}: expected spot or futures")
    class_name, market_type, default_type = _EXCHANGES[kind]
    settings: dict[str, Any] = {
        "enableRateLimit": True,
        "timeout": connection.timeout_ms,
        "options": {
            "defaultType": default_type,
            "fetchMarkets": {"types": [market_type]},
            "fetchCurrencies": False,  # a signed /sapi call; markets carry what we need
            "fetchMargins": False,
        },
    }
    if connection.rate_limit_ms is not None:
        settings["rateLimit"] = connection.rate_limit_ms
    if keys is not None:
        settings["apiKey"], settings["secret"] = keys.api_key, keys.secret
    exchange = getattr(ccxt, class_name)(settings)
    if connection.base_url is not None:
        exchange.urls = _rebased(exchange.urls, connection.base_url)
    elif connection.testnet and kind == "futures":
        exchange.enable_demo_trading(True)  # ccxt refuses the retired USDT-M testnet: demo trading replaced it
    elif connection.testnet:
        exchange.set_sandbox_mode(True)
    return exchange


def _rebased(urls: dict[str, Any], base_url: str) -> dict[str, Any]:
    """ccxt's ``urls`` with scheme and host of every API URL (live, test, demo) set to ``base_url``."""

    def rebase(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: rebase(url) for key, url in value.items()}
        if isinstance(value, str) and value.startswith(("http://", "https://")):
            parts = urlsplit(value)
            return base_url + parts.path + (f"?{parts.query}" if parts.query else "")
        return value

    api_keys = ("api", "test", "demo")
    return {key: rebase(value) if key in api_keys or key.startswith("apiBackup") else value
            for key, value in urls.items()}


@dataclass(frozen=True)
class RetryPolicy:
    """How many times, and how long between, a retryable request is tried again."""

    retries: int = 5
    backoff_s: float = 0.5
    max_backoff_s: float = 60.0

    @classmethod
    def from_connection(cls, connection: ConnectionConfig) -> RetryPolicy:
        return cls(connection.retries, connection.backoff_ms / 1000, connection.max_backoff_ms / 1000)

    def wait_s(self, failure: ExchangeUnavailable, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based); Retry-After wins when given."""
        if isinstance(failure, RateLimited) and failure.retry_after_s is not None:
            return failure.retry_after_s
        return min(self.max_backoff_s, self.backoff_s * 2**retry)


def translate(exc: ccxt.BaseError, what: str, headers: Mapping[str, str] | None = None) -> ExchangeError:
    """The Ratchet error for a ccxt error raised while doing ``what``; reads Retry-After from headers."""
    detail = _detail(exc)
    if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
        retry_after = _retry_after_s(headers or {})
        wait = "" if retry_after is None else f"; Retry-After {retry_after:g} s"
        return RateLimited(f"{what}: rate limited ({detail}{wait})", retry_after)
    if isinstance(exc, ccxt.AuthenticationError):
        return AuthenticationFailed(f"{what}: authentication failed ({detail})")
    if isinstance(exc, ccxt.NetworkError | ccxt.BadResponse):
        return ExchangeUnavailable(f"{what}: {_unavailable(exc)} ({detail})")
    if isinstance(exc, _REJECTED):
        return ExchangeRejected(f"{what}: refused ({detail})")
    return ExchangeError(f"{what}: {detail}")


def _detail(exc: ccxt.BaseError) -> str:
    """Binance's own ``msg (code N)`` when the message carries its JSON error, else ccxt's text."""
    text = str(exc)
    found = re.search(r"\{.*\}", text)
    if found:
        try:
            body = json.loads(found.group(0))
        except ValueError:
            body = None
        if isinstance(body, dict) and "msg" in body:
            return f"{body['msg']} (Binance code {body.get('code')})"
    return text or type(exc).__name__


def _unavailable(exc: ccxt.BaseError) -> str:
    if isinstance(exc, ccxt.RequestTimeout):
        return "no answer within the timeout"
    if isinstance(exc, ccxt.ExchangeNotAvailable):
        return "exchange unavailable"
    if isinstance(exc, ccxt.BadResponse):
        return "unreadable answer"
    return "network error"


def _retry_after_s(headers: Mapping[str, str]) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110); None when absent or unreadable."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


Price = Literal["last", "mark"]
RetryNote = Callable[[ExchangeUnavailable, int, float], None]  # (failure, retry number from 1, wait s)


def _log_retry(failure: ExchangeUnavailable, retry: int, wait_s: float) -> None:
    log.info("%s; retry %d in %.3g s", failure, retry, wait_s)


class BinanceClient:
    """The calls Ratchet makes to Binance, each translated to our errors and retried per policy."""

    def __init__(self, exchange: ccxt.Exchange, kind: str, policy: RetryPolicy | None = None, *,
                 sleep: Callable[[float], None] = time.sleep, on_retry: RetryNote | None = None):
        self.exchange = exchange
        self.kind = kind
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        self._on_retry = on_retry or _log_retry

    def close(self) -> None:
        """Close the HTTP connections ccxt keeps open."""
        self.exchange.session.close()

    def __enter__(self) -> BinanceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def venue(self) -> str:
        """'Binance futures (https://fapi.binance.com)': where requests go, for messages."""
        api = self.exchange.urls["api"]
        url = api["public"] if self.kind == "spot" else api["fapiPublic"]
        parts = urlsplit(url)
        return f"Binance {self.kind} ({parts.scheme}://{parts.netloc})"

    @property
    def timeframes(self) -> list[str]:
        """Kline intervals this market serves."""
        served = list(self.exchange.timeframes)
        return [tf for tf in served if not (self.kind == "futures" and tf == "1s")]  # no 1s on /fapi

    def call(self, what: str, request: Callable[[], T]) -> T:
        """``request()`` with ccxt errors translated; retryable ones tried again per the policy."""
        retry = 0
        while True:
            try:
                try:
                    return request()
                except ccxt.BaseError as exc:
                    raise translate(exc, f"{self.venue}: {what}", self.exchange.last_response_headers) from exc
            except ExchangeUnavailable as failure:
                wait = self.policy.wait_s(failure, retry)
                if retry >= self.policy.retries or wait > self.policy.max_backoff_s:
                    raise _gave_up(failure, retry + 1, wait, self.policy) from failure
                self._on_retry(failure, retry + 1, wait)
                self._sleep(wait)
                retry += 1

    def markets(self) -> dict[str, dict]:
        """ccxt markets by unified symbol, loaded once from exchangeInfo."""
        return self.call("exchangeInfo", self.exchange.load_markets)

    def server_time(self) -> int:
        """The exchange's clock, ms UTC: bars are closed when the exchange says so."""
        return int(self.call("server time", self.exchange.fetch_time))

    def candles(self, symbol: str, timeframe: str, since: int, *, until: int | None = None,
                price: Price = "last", limit: int = KLINE_LIMIT) -> list[list[float]]:
        """Up to ``limit`` klines opening in ``[since, until]``, oldest first, as ccxt rows
        ``[ts, open, high, low, close, volume]``. The newest may still be forming."""
        params: dict[str, Any] = {} if price == "last" else {"price": price}
        if until is not None:
            params["until"] = until
        series = "klines" if price == "last" else f"{price}-price klines"
        what = f"{series} {symbol} {timeframe} from {iso_utc(since)}"
        return self.call(what, lambda: self.exchange.fetch_ohlcv(symbol, timeframe, since, limit, params))

    def funding_history(self, symbol: str, since: int, *, until: int | None = None,
                        limit: int = FUNDING_LIMIT) -> list[tuple[int, float]]:
        """Settled funding ``(settlement ms, rate)`` in ``[since, until]``, oldest first."""
        params = {} if until is None else {"until": until}
        what = f"funding rates {symbol} from {iso_utc(since)}"
        rows = self.call(what, lambda: self.exchange.fetch_funding_rate_history(symbol, since, limit, params))
        return [(int(r["timestamp"]), float(r["fundingRate"])) for r in rows]

    def funding_rate(self, symbol: str) -> dict[str, Any]:
        """The premium index now: mark price, the rate of the coming settlement, its time."""
        return self.call(f"funding rate {symbol}", lambda: self.exchange.fetch_funding_rate(symbol))


def _gave_up(failure: ExchangeUnavailable, tries: int, wait: float, policy: RetryPolicy) -> ExchangeUnavailable:
    if wait > policy.max_backoff_s:
        why = f"asked to wait {wait:g} s, more than exchange.max_backoff_ms allows ({policy.max_backoff_s:g} s)"
    else:
        why = f"gave up after {tries} tr{'y' if tries == 1 else 'ies'}"
    message = f"{failure}; {why}"
    if isinstance(failure, RateLimited):
        return RateLimited(message, failure.retry_after_s)
    return ExchangeUnavailable(message)


def connect(kind: str, connection: ConnectionConfig, *, keys: ApiKeys | None = None,
            sleep: Callable[[float], None] = time.sleep, on_retry: RetryNote | None = None) -> BinanceClient:
    """``make_client`` wrapped in a BinanceClient retrying per the connection's policy."""
    return BinanceClient(make_client(kind, connection, keys=keys), kind,
                         RetryPolicy.from_connection(connection), sleep=sleep, on_retry=on_retry)
