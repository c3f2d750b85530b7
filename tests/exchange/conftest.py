"""Real Binance bars for exchange tests, read straight from the bundled parquet files.

A missing file fails the tests that need it, naming the file: the data ships in the package,
so its absence is a packaging loss to see, not a reason to skip.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from core.market import Bars, FundingRates, MarketData, SymbolData

_HOUR_MS = 3_600_000


def data_file(name: str) -> Path:
    """The bundled file ``name``; a failure naming it when the package lacks it."""
    path = BUNDLED_DATA_DIR / name
    if not path.is_file():
        pytest.fail(f"bundled market data file {name} is missing from {BUNDLED_DATA_DIR} "
                    "(a packaging loss)", pytrace=False)
    return path


def _columns(name: str) -> dict[str, np.ndarray]:
    table = pq.read_table(data_file(name))
    return {column: table.column(column).to_numpy() for column in table.column_names}


def _bars(name: str, symbol: str) -> Bars:
    c = _columns(name)
    return Bars(symbol, "1h", _HOUR_MS, c["ts"], c["open"], c["high"], c["low"], c["close"],
                c["volume"])


def _futures_symbol(base: str) -> SymbolData:
    stem = f"binance_futures_{base}-USDT-USDT"
    symbol = f"{base}/USDT:USDT"
    funding = _columns(f"{stem}_funding_8h.parquet")
    return SymbolData(
        bars=_bars(f"{stem}_1h.parquet", symbol),
        mark=_bars(f"{stem}_mark_1h.parquet", symbol),
        funding=FundingRates(symbol, funding["ts"], funding["rate"]),
    )


def load_futures_market() -> MarketData:
    """BTC and ETH USDT-M perpetuals, 1h, 2022-01-01 .. 2026-05-16, with mark and funding."""
    symbols = {f"{base}/USDT:USDT": _futures_symbol(base) for base in ("BTC", "ETH")}
    ts = symbols["BTC/USDT:USDT"].bars.ts
    assert np.array_equal(ts, symbols["ETH/USDT:USDT"].bars.ts)
    return MarketData("futures", "1h", _HOUR_MS, ts, symbols)


@pytest.fixture(scope="session")
def futures_market() -> MarketData:
    return load_futures_market()


@pytest.fixture(scope="session")
def spot_market() -> MarketData:
    """BTC and ETH spot, 1h, same window (2023-03-24 13:00 is missing, as on Binance)."""
    symbols = {
        f"{base}/USDT": SymbolData(_bars(f"binance_spot_{base}-USDT_1h.parquet", f"{base}/USDT"))
        for base in ("BTC", "ETH")
    }
    ts = symbols["BTC/USDT"].bars.ts
    return MarketData("spot", "1h", _HOUR_MS, ts, symbols)


def _bar_index(market: MarketData, when: str) -> int:
    ts = int(datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp() * 1000)
    i = int(np.searchsorted(market.ts, ts))
    assert market.ts[i] == ts, f"no bar opens at {when}"
    return i


@pytest.fixture(scope="session")
def bar_index():
    """``bar_index(market, '2022-06-10 00:00')``: index of the bar opening then (UTC)."""
    return _bar_index
