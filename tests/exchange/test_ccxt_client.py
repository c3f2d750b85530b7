"""The ccxt client factory and its border: URLs from config, ccxt errors as ours, bounded retries."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from components.exchange.ccxt_client import connect, make_client
from components.exchange.connection import ConnectionConfig
from core.errors import AuthenticationFailed, ExchangeRejected, ExchangeUnavailable, RateLimited
from tests.support.binance import FakeBinance, FakeClock

JAN_1 = 1704067200000
HOUR = 3_600_000
PERP = "BTC/USDT:USDT"


@pytest.fixture
def exchange() -> Iterator[FakeBinance]:
    with FakeBinance(FakeClock(JAN_1 + 24 * HOUR)) as server:
        yield server


def quick(exchange: FakeBinance, **settings) -> ConnectionConfig:
    """A connection to the loopback exchange with tiny delays, so retries cost milliseconds."""
    return ConnectionConfig(**{"base_url": exchange.base_url, "rate_limit_ms": 1, "retries": 2, "backoff_ms": 1,
                               **settings})


def every_url(urls: object) -> list[str]:
    if isinstance(urls, dict):
        return [u for value in urls.values() for u in every_url(value)]
    return [urls] if isinstance(urls, str) else []


@pytest.mark.parametrize("kind", ["spot", "futures"])
def test_base_url_replaces_scheme_and_host_of_every_api_url_and_wins_over_testnet(kind: str) -> None:
    live = make_client(kind, ConnectionConfig())
    local = make_client(kind, ConnectionConfig(base_url="http://127.0.0.1:9/proxy/", testnet=True))

    for group in ("api", "test", "demo"):
        paths = [u.split("binance.com", 1)[-1].split("binance.vision", 1)[-1].split("binancefuture.com", 1)[-1]
                 for u in every_url(live.urls[group])]
        assert every_url(local.urls[group]) == [f"http://127.0.0.1:9/proxy{p}" for p in paths]
    assert local.urls["www"] == live.urls["www"]
    assert local.enableRateLimit and local.timeout == 10_000


def test_testnet_selects_binance_demo_trading_for_usdt_m_and_the_spot_testnet() -> None:
    futures = make_client("futures", ConnectionConfig(testnet=True, timeout_ms=2500))
    spot = make_client("spot", ConnectionConfig(testnet=True))

    assert futures.urls["api"]["fapiPublic"] == "https://demo-fapi.binance.com/fapi/v1"  # the USDT-M testnet retired
    assert futures.urls["api"]["fapiPrivate"] == "https://demo-fapi.binance.com/fapi/v1"
    assert spot.urls["api"]["public"] == "https://testnet.binance.vision/api/v3"
    assert futures.timeout == 2500


@pytest.mark.parametrize(("kind", "path"), [("spot", "/api/v3/exchangeInfo"), ("futures", "/fapi/v1/exchangeInfo")])
def test_load_markets_asks_only_for_its_own_kind(exchange: FakeBinance, kind: str, path: str) -> None:
    with connect(kind, quick(exchange)) as client:
        client.markets()

    assert [r.path for r in exchange.requests()] == [path]


def test_a_5xx_is_retried_with_doubling_backoff_until_it_succeeds(exchange: FakeBinance) -> None:
    exchange.faults.error("/fapi/v1/time", 503, times=2)
    notes: list[tuple[str, int, float]] = []

    with connect("futures", quick(exchange, backoff_ms=2), on_retry=lambda failure, retry, wait: notes.append(
            (type(failure).__name__, retry, wait))) as client:
        assert client.server_time() == JAN_1 + 24 * HOUR

    assert [r.status for r in exchange.requests("/fapi/v1/time")] == [503, 503, 200]
    assert notes == [("ExchangeUnavailable", 1, 0.002), ("ExchangeUnavailable", 2, 0.004)]


def test_retries_are_bounded_and_the_error_says_how_many_were_made(exchange: FakeBinance) -> None:
    exchange.faults.error("/api/v3/time", 502, times=None)

    with connect("spot", quick(exchange, retries=3)) as client, \
            pytest.raises(ExchangeUnavailable, match=r"server time: exchange unavailable .*gave up after 4 tries"):
        client.server_time()

    assert len(exchange.requests("/api/v3/time")) == 4


def test_a_timeout_is_retried(exchange: FakeBinance) -> None:
    exchange.faults.stall("/fapi/v1/time", seconds=2.0)

    with connect("futures", quick(exchange, timeout_ms=200)) as client:
        assert client.server_time() == JAN_1 + 24 * HOUR

    assert len(exchange.requests("/fapi/v1/time")) == 2


def test_an_exchange_that_does_not_answer_fails_naming_where_it_was_asked() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    config = ConnectionConfig(base_url=f"http://127.0.0.1:{port}", retries=1, backoff_ms=1)
    with connect("spot", config) as client, pytest.raises(ExchangeUnavailable) as failure:
        client.markets()

    assert f"Binance spot (http://127.0.0.1:{port}): exchangeInfo: network error" in str(failure.value)
    assert "gave up after 2 tries" in str(failure.value)


def test_a_ban_longer_than_the_longest_backoff_fails_at_once_with_its_retry_after(exchange: FakeBinance) -> None:
    exchange.faults.rate_limit("/fapi/v1/exchangeInfo", retry_after_s=7200, status=418, times=None)

    with connect("futures", quick(exchange, max_backoff_ms=60_000)) as client, \
            pytest.raises(RateLimited, match=r"Retry-After 7200 s\).*more than exchange.max_backoff_ms") as failure:
        client.markets()

    assert failure.value.retry_after_s == 7200
    assert len(exchange.requests()) == 1


def test_refusals_are_not_retried(exchange: FakeBinance) -> None:
    exchange.faults.reject("/fapi/v1/klines", -1121, "Invalid symbol.", times=None)
    exchange.faults.reject("/fapi/v1/premiumIndex", -2015, "Invalid API-key, IP, or permissions for action.",
                           status=401)

    with connect("futures", quick(exchange)) as client:
        with pytest.raises(ExchangeRejected, match=r"klines BTC/USDT:USDT 1h .*Invalid symbol\. \(Binance code -1121"):
            client.candles(PERP, "1h", JAN_1)
        with pytest.raises(AuthenticationFailed, match="Invalid API-key"):
            client.funding_rate(PERP)

    assert len(exchange.requests("/fapi/v1/klines")) == 1 and len(exchange.requests("/fapi/v1/premiumIndex")) == 1
