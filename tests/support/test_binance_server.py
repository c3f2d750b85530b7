"""The loopback Binance server speaks Binance's formats to the real ccxt client, on a test-controlled clock."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from components.exchange.ccxt_client import BinanceClient, connect
from components.exchange.connection import ConnectionConfig
from components.market.catalog import catalog
from components.market.loader import load_bars, load_funding
from core.errors import ExchangeRejected
from tests.support.binance import FakeBinance, FakeClock, Reply, Request

HOUR = 3_600_000
JAN_1 = 1704067200000  # 2024-01-01 00:00 UTC
SPOT_BTC = "BTC/USDT"
PERP_BTC = "BTC/USDT:USDT"


def bundled(kind: str, symbol: str, timeframe: str, series: str = "candles"):
    files = [f.path for f in catalog().files()
             if (f.kind, f.symbol, f.timeframe, f.series) == (kind, symbol, timeframe, series)]
    return load_bars(files[0], symbol, timeframe, on_gap="skip")[0]


@pytest.fixture
def exchange() -> Iterator[FakeBinance]:
    with FakeBinance(FakeClock(JAN_1 + 50 * HOUR + 30 * 60_000)) as server:  # 2024-01-03 02:30
        yield server


@pytest.fixture
def clients(exchange: FakeBinance) -> Iterator[dict[str, BinanceClient]]:
    config = ConnectionConfig(base_url=exchange.base_url, rate_limit_ms=1, retries=0)
    with connect("spot", config) as spot, connect("futures", config) as futures:
        yield {"spot": spot, "futures": futures}


def test_ccxt_loads_the_bundled_symbols_with_binance_filters(clients: dict[str, BinanceClient],
                                                             exchange: FakeBinance) -> None:
    spot = clients["spot"].markets()
    perps = clients["futures"].markets()

    assert sorted(spot) == ["ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
    assert sorted(perps) == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    assert spot[SPOT_BTC]["precision"]["price"] == 0.01 and spot[SPOT_BTC]["precision"]["amount"] == 1e-05
    assert spot[SPOT_BTC]["limits"]["cost"]["min"] == 5.0
    assert spot["XRP/USDT"]["precision"]["price"] == 0.0001
    assert perps[PERP_BTC]["swap"] and perps[PERP_BTC]["linear"] and perps[PERP_BTC]["settle"] == "USDT"
    assert perps[PERP_BTC]["precision"]["price"] == 0.1 and perps[PERP_BTC]["precision"]["amount"] == 0.001
    assert perps[PERP_BTC]["limits"]["cost"]["min"] == 100.0
    assert clients["futures"].exchange.price_to_precision(PERP_BTC, 42000.1234) == "42000.1"
    assert [r.path for r in exchange.requests()] == ["/api/v3/exchangeInfo", "/fapi/v1/exchangeInfo"]


@pytest.mark.parametrize(("kind", "symbol"), [("spot", SPOT_BTC), ("futures", PERP_BTC)])
def test_klines_stop_at_the_exchange_clock_and_the_newest_is_still_forming(
        clients: dict[str, BinanceClient], exchange: FakeBinance, kind: str, symbol: str) -> None:
    rows = clients[kind].candles(symbol, "1h", JAN_1)
    real = bundled(kind, symbol, "1h")
    i = int(np.searchsorted(real.ts, JAN_1))

    assert [r[0] for r in rows] == list(range(JAN_1, JAN_1 + 51 * HOUR, HOUR))  # 02:00 opened, 03:00 not yet
    closed = np.array(rows[:-1])
    for column, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
        assert np.array_equal(closed[:, column], getattr(real, name)[i:i + 50])
    forming, final = rows[-1], i + 50
    assert forming[1] == real.open[final]
    assert forming[4] != real.close[final] and forming[5] < real.volume[final]
    assert forming[2] <= real.high[final] and forming[3] >= real.low[final]

    exchange.clock.advance(30 * 60_000)  # 03:00: the 02:00 candle has closed
    rows = clients[kind].candles(symbol, "1h", JAN_1 + 50 * HOUR)
    assert rows[0] == [JAN_1 + 50 * HOUR, *(float(getattr(real, n)[final]) for n in
                                            ("open", "high", "low", "close", "volume"))]


def test_mark_price_klines_carry_the_bundled_mark_candles(clients: dict[str, BinanceClient]) -> None:
    rows = clients["futures"].candles(PERP_BTC, "1h", JAN_1, until=JAN_1 + 9 * HOUR, price="mark")
    mark = bundled("futures", PERP_BTC, "1h", "mark")
    i = int(np.searchsorted(mark.ts, JAN_1))

    assert len(rows) == 10
    assert [r[4] for r in rows] == mark.close[i:i + 10].tolist()
    assert {r[5] for r in rows} == {0.0}


def test_an_interval_the_bundle_lacks_is_built_from_a_finer_one_as_binance_aggregates(
        clients: dict[str, BinanceClient]) -> None:
    four_hourly = np.array(clients["spot"].candles(SPOT_BTC, "4h", JAN_1, until=JAN_1 + 40 * HOUR))
    hourly = bundled("spot", SPOT_BTC, "1h")
    i = int(np.searchsorted(hourly.ts, JAN_1))
    groups = slice(i, i + 44)

    assert four_hourly[:, 0].tolist() == list(range(JAN_1, JAN_1 + 44 * HOUR, 4 * HOUR))
    assert np.array_equal(four_hourly[:, 1], hourly.open[groups][::4])
    assert np.array_equal(four_hourly[:, 2], hourly.high[groups].reshape(-1, 4).max(axis=1))
    assert np.array_equal(four_hourly[:, 3], hourly.low[groups].reshape(-1, 4).min(axis=1))
    assert np.array_equal(four_hourly[:, 4], hourly.close[groups][3::4])
    assert np.allclose(four_hourly[:, 5], hourly.volume[groups].reshape(-1, 4).sum(axis=1), rtol=1e-12)


def test_limits_and_symbols_are_checked_as_binance_checks_them(clients: dict[str, BinanceClient]) -> None:
    spot, futures = clients["spot"], clients["futures"]

    assert len(futures.call("klines", lambda: futures.exchange.fapiPublicGetKlines(
        {"symbol": "BTCUSDT", "interval": "1h", "startTime": JAN_1 - 2000 * HOUR, "limit": 1500}))) == 1500
    with pytest.raises(ExchangeRejected, match=r"parameter 'limit' is not valid\. \(Binance code -1130\)"):
        spot.call("klines", lambda: spot.exchange.publicGetKlines(
            {"symbol": "BTCUSDT", "interval": "1m", "limit": 1001}))
    with pytest.raises(ExchangeRejected, match=r"Invalid symbol\. \(Binance code -1121\)"):
        spot.call("klines", lambda: spot.exchange.publicGetKlines({"symbol": "DOGEUSDT", "interval": "1h"}))
    with pytest.raises(ExchangeRejected, match=r"Invalid interval\. \(Binance code -1120\)"):
        futures.call("klines", lambda: futures.exchange.fapiPublicGetKlines({"symbol": "BTCUSDT", "interval": "1s"}))


def test_funding_history_holds_settled_rates_and_the_premium_index_the_coming_one(
        clients: dict[str, BinanceClient], exchange: FakeBinance) -> None:
    funding = load_funding(catalog().funding(PERP_BTC), PERP_BTC)
    i = int(np.searchsorted(funding.ts, JAN_1))

    settled = clients["futures"].funding_history(PERP_BTC, JAN_1)
    now = clients["futures"].funding_rate(PERP_BTC)

    assert settled == list(zip(funding.ts[i:i + 7].tolist(), funding.rate[i:i + 7].tolist(), strict=True))
    assert settled[-1][0] == JAN_1 + 48 * HOUR  # the clock reads 02:30 on Jan 3: 08:00 has not settled
    assert now["fundingTimestamp"] == JAN_1 + 56 * HOUR and now["fundingRate"] == funding.rate[i + 7]
    assert now["timestamp"] == exchange.clock.now()
    request = exchange.requests("/fapi/v1/fundingRate")[0]
    assert request.params["symbol"] == "BTCUSDT" and request.params["startTime"] == str(JAN_1)


def test_a_gap_is_never_served_and_a_late_candle_only_after_its_delay(
        clients: dict[str, BinanceClient], exchange: FakeBinance) -> None:
    exchange.clock.set(JAN_1 + 10 * HOUR + 60_000)  # 10:01: the 09:00 candle closed a minute ago
    exchange.faults.gap(PERP_BTC, JAN_1 + 3 * HOUR)
    exchange.faults.late(PERP_BTC, JAN_1 + 9 * HOUR, delay_ms=5 * 60_000)

    def opens() -> list[int]:
        return [int(r[0] - JAN_1) // HOUR for r in clients["futures"].candles(PERP_BTC, "1h", JAN_1)]

    assert opens() == [0, 1, 2, 4, 5, 6, 7, 8]
    exchange.clock.set(JAN_1 + 10 * HOUR + 5 * 60_000)
    assert opens() == [0, 1, 2, 4, 5, 6, 7, 8, 9, 10]


def test_the_clock_is_set_advanced_or_run_at_a_multiple_of_wall_time() -> None:
    wall = [100.0]
    clock = FakeClock(JAN_1, wall=lambda: wall[0])

    wall[0] += 5
    assert clock.now() == JAN_1  # frozen until run
    clock.advance(HOUR)
    clock.run(3600)  # an hour of exchange time per wall second
    wall[0] += 0.5
    assert clock.now() == JAN_1 + HOUR + HOUR // 2
    clock.set(JAN_1)
    wall[0] += 2
    assert clock.now() == JAN_1 + 2 * HOUR
    clock.freeze()
    wall[0] += 2
    assert clock.now() == JAN_1 + 2 * HOUR


def test_a_route_added_to_the_table_is_served(exchange: FakeBinance) -> None:
    @exchange.route("GET", "/fapi/v1/ticker/price")
    def ticker(server: FakeBinance, request: Request) -> Reply:
        return Reply({"symbol": request.params["symbol"], "price": "42000.10", "time": server.clock.now()})

    with connect("futures", ConnectionConfig(base_url=exchange.base_url, rate_limit_ms=1)) as client:
        answer = client.exchange.fapiPublicGetTickerPrice({"symbol": "ETHUSDT"})

    assert answer == {"symbol": "ETHUSDT", "price": "42000.10", "time": exchange.clock.now()}
