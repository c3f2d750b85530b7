"""load_market puts every symbol, its mark candles and its funding on one shared bar index."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from components.market.loader import load_market
from components.market.timeframes import iso_utc
from core.errors import DataError

PERPS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
SPOT_1H = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT", "ADA/USDT"]
PERP_FILES = [
    f"binance_futures_{coin}-USDT-USDT_{series}.parquet"
    for coin in ("BTC", "ETH")
    for series in ("1h", "mark_1h", "funding_8h")
]
HOUR = 3_600_000
START = 1640995200000  # 2022-01-01 00:00 UTC, first bundled bar
HALT = 1679662800000  # 2023-03-24 13:00 UTC, missing from every spot 1h file


def test_perps_share_one_index_with_mark_candles_and_funding() -> None:
    market = load_market("futures", PERPS, "1h", on_gap="fail")

    assert len(market) == 38322 and market.issues == ()
    assert list(market.symbols) == PERPS
    for data in market.symbols.values():
        assert data.bars.ts is market.ts or np.array_equal(data.bars.ts, market.ts)
        assert np.array_equal(data.mark.ts, market.ts)
        assert 0.99 < np.median(data.mark.close / data.bars.close) < 1.01
        assert np.any(data.mark.close != data.bars.close)
        assert data.funding.ts[0] >= market.ts[0]
        assert data.funding.ts[-1] < market.ts[-1] + HOUR


def test_funding_is_cut_to_the_bars_window() -> None:
    market = load_market(
        "futures", PERPS, "1h", on_gap="fail", start_ms=START + 5 * HOUR, end_ms=START + 29 * HOUR
    )

    assert len(market) == 24
    hours = (market.symbols["BTC/USDT:USDT"].funding.ts - START) // HOUR
    assert hours.tolist() == [8, 16, 24]


def test_spot_halt_fails_the_market_or_is_recorded_once_per_symbol() -> None:
    with pytest.raises(DataError, match="2023-03-24T13:00:00Z"):
        load_market("spot", SPOT_1H, "1h", on_gap="fail")

    market = load_market("spot", SPOT_1H, "1h", on_gap="skip")

    assert len(market) == 38321 and HALT not in market.ts
    assert sorted((i.symbol, i.ts, i.kind) for i in market.issues) == sorted(
        (s, HALT, "gap") for s in SPOT_1H
    )
    assert all(d.mark is None and d.funding is None for d in market.symbols.values())


def test_symbols_with_different_bar_times_fail_naming_both_and_the_first_difference(user_dir) -> None:
    data_dir = _perp_dir(user_dir, eth={"drop": range(10)})  # ETH starts 10 hours late

    with pytest.raises(DataError) as err:
        load_market("futures", PERPS, "1h", on_gap="fail", data_dir=data_dir)

    message = str(err.value)
    assert "BTC/USDT:USDT" in message and "ETH/USDT:USDT" in message
    assert "2022-01-01T00:00:00Z" in message


def test_skip_aligns_symbols_on_the_bars_they_share(user_dir) -> None:
    data_dir = _perp_dir(user_dir, eth={"drop": range(10)})

    market = load_market("futures", PERPS, "1h", on_gap="skip", data_dir=data_dir)

    assert len(market) == 38322 - 10 and market.ts[0] == START + 10 * HOUR
    misaligned = [(i.symbol, i.ts) for i in market.issues if i.kind == "misaligned"]
    assert misaligned == [("BTC/USDT:USDT", START + h * HOUR) for h in range(10)]
    btc = market.symbols["BTC/USDT:USDT"]
    assert np.array_equal(btc.bars.ts, market.ts) and np.array_equal(btc.mark.ts, market.ts)


def test_missing_mark_candles_fail_or_fall_back_to_last_price(user_dir) -> None:
    data_dir = _perp_dir(user_dir, btc_mark={"drop": range(-3, 0)})  # mark ends 3 hours early

    with pytest.raises(DataError, match="mark candles.*lack 3 bar"):
        load_market("futures", PERPS, "1h", on_gap="fail", data_dir=data_dir)

    market = load_market("futures", PERPS, "1h", on_gap="skip", data_dir=data_dir)

    btc = market.symbols["BTC/USDT:USDT"]
    bundled = load_market("futures", ["BTC/USDT:USDT"], "1h", on_gap="fail").symbols["BTC/USDT:USDT"]
    assert np.array_equal(btc.mark.close[:-3], bundled.mark.close[:-3])
    assert np.array_equal(btc.mark.close[-3:], btc.bars.close[-3:])
    assert not np.array_equal(btc.mark.close[-3:], bundled.mark.close[-3:])
    fallbacks = [i.ts for i in market.issues if i.kind == "mark_fallback"]
    assert fallbacks == market.ts[-3:].tolist()


@pytest.mark.parametrize("missing", ["binance_futures_ETH-USDT-USDT_mark_1h.parquet",
                                     "binance_futures_ETH-USDT-USDT_funding_8h.parquet"])
def test_a_perp_without_mark_or_funding_file_fails(user_dir, missing: str) -> None:
    data_dir = _perp_dir(user_dir)
    (data_dir / missing).unlink()

    with pytest.raises(DataError, match="ETH/USDT:USDT"):
        load_market("futures", PERPS, "1h", on_gap="skip", data_dir=data_dir)


def test_an_unknown_symbol_lists_the_available_ones() -> None:
    with pytest.raises(DataError, match="BNB/USDT.*ADA/USDT, BTC/USDT"):
        load_market("spot", ["BTC/USDT", "BNB/USDT"], "1h", on_gap="skip")


@pytest.mark.parametrize("symbols", [[], ["BTC/USDT", "BTC/USDT"]])
def test_an_empty_or_repeated_symbol_list_is_refused(symbols: list[str]) -> None:
    with pytest.raises(DataError, match="spot 1h"):
        load_market("spot", symbols, "1h", on_gap="skip")


def test_markets_load_from_the_bundled_package_data_by_default() -> None:
    market = load_market("spot", ["BTC/USDT", "ETH/USDT"], "5m", on_gap="fail")

    assert len(market) == 71712
    assert BUNDLED_DATA_DIR.name == "data" and BUNDLED_DATA_DIR.parent.name == "market"


def _perp_dir(user_dir, *, eth=None, btc_mark=None):
    """A user data dir holding both perps' files, ETH candles and BTC mark optionally edited."""
    edits = {
        "binance_futures_ETH-USDT-USDT_1h.parquet": eth or {},
        "binance_futures_BTC-USDT-USDT_mark_1h.parquet": btc_mark or {},
    }
    paths = [user_dir(name, **edits.get(name, {})) for name in PERP_FILES]
    return paths[0].parent


def test_a_window_outside_the_data_names_the_range_each_symbol_holds(user_dir) -> None:
    data_dir = _perp_dir(user_dir, eth={"drop": range(10)})  # ETH starts 10 hours late

    with pytest.raises(DataError) as err:
        load_market("futures", PERPS, "1h", on_gap="skip", end_ms=START + 5 * HOUR, data_dir=data_dir)

    message = str(err.value)
    assert "no futures 1h candles for ETH/USDT:USDT in the window [the beginning, 2022-01-01T05:00:00Z)" in message
    for coin, first in (("BTC", START), ("ETH", START + 10 * HOUR)):
        ts = pq.read_table(data_dir / f"binance_futures_{coin}-USDT-USDT_1h.parquet", columns=["ts"])
        last_close = ts.column("ts").to_numpy()[-1] + HOUR
        assert f"{coin}/USDT:USDT [{iso_utc(first)}, {iso_utc(last_close)})" in message
