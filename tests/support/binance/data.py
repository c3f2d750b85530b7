"""What the loopback exchange knows: its listed symbols with real filters, and the bundled candles.

Candles come from the bundled files (``components.market.loader``). An interval the bundle lacks
is built from the coarsest bundled timeframe that divides it (1h -> 4h, 5m -> 15m), as Binance
aggregates: first open, highest high, lowest low, last close, summed volume.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from components.market.catalog import catalog, pair_to_symbol, symbol_to_pair
from components.market.loader import load_bars, load_funding
from components.market.timeframes import timeframe_ms

HOUR = 3_600_000
WEEK_ORIGIN = 4 * 86_400_000  # Binance weeks open on Monday; 1970-01-05 was the first one
SPOT_INTERVALS = ("1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")
FUTURES_INTERVALS = SPOT_INTERVALS[1:]  # /fapi serves no 1s klines


@dataclass(frozen=True)
class SymbolSpec:
    """One listed market, with the filters Binance publishes for it (strings, as Binance sends them)."""

    base: str
    quote: str
    tick_size: str
    step_size: str
    min_qty: str
    max_qty: str
    market_max_qty: str
    min_notional: str
    min_price: str = "0.01"
    max_price: str = "1000000.00"
    onboard_ms: int = 1569398400000  # 2019-09-25, when USDT-M listed BTC and ETH

    @property
    def id(self) -> str:
        return self.base + self.quote

    def precision(self, value: str) -> int:
        """Decimals a filter value is written with: '0.10' -> 2 (BTCUSDT's pricePrecision), '1' -> 0."""
        return len(value.split(".")[1]) if "." in value else 0


# Filters as Binance lists them (spot and USDT-M exchangeInfo, 2024-2025).
SPECS: dict[str, dict[str, SymbolSpec]] = {
    "spot": {
        "BTCUSDT": SymbolSpec("BTC", "USDT", "0.01", "0.00001", "0.00001", "9000", "110", "5"),
        "ETHUSDT": SymbolSpec("ETH", "USDT", "0.01", "0.0001", "0.0001", "9000", "2500", "5"),
        "SOLUSDT": SymbolSpec("SOL", "USDT", "0.01", "0.001", "0.001", "9000000", "26000", "5"),
        "XRPUSDT": SymbolSpec("XRP", "USDT", "0.0001", "0.1", "0.1", "9222449", "1400000", "5", "0.0001"),
        "ADAUSDT": SymbolSpec("ADA", "USDT", "0.0001", "0.1", "0.1", "900000", "1200000", "5", "0.0001"),
    },
    "futures": {
        "BTCUSDT": SymbolSpec("BTC", "USDT", "0.10", "0.001", "0.001", "1000", "120", "100", "261.10", "809484"),
        "ETHUSDT": SymbolSpec("ETH", "USDT", "0.01", "0.001", "0.001", "10000", "2000", "20", "39.86", "306177"),
    },
}


@dataclass(frozen=True)
class Candles:
    """Candles of one series on one interval: open times and values, sorted."""

    step: int
    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


def unified(kind: str, market_id: str) -> str:
    """'BTCUSDT' -> 'BTC/USDT' (spot) or 'BTC/USDT:USDT' (futures)."""
    spec = SPECS[kind][market_id]
    pair = f"{spec.base}-{spec.quote}" + (f"-{spec.quote}" if kind == "futures" else "")
    return pair_to_symbol(kind, pair)


def market_id(kind: str, symbol: str) -> str:
    """'BTC/USDT:USDT' -> 'BTCUSDT'."""
    return "".join(symbol_to_pair(kind, symbol).split("-")[:2])


def listed(kind: str) -> list[SymbolSpec]:
    """Symbols the exchange lists: those with both a spec and bundled candles."""
    bundled = {f.symbol for f in catalog().files() if f.kind == kind and f.series == "candles"}
    return [spec for mid, spec in SPECS[kind].items() if unified(kind, mid) in bundled]


@functools.cache
def candles(kind: str, mid: str, interval: str, series: str = "candles") -> Candles | None:
    """Bundled candles of ``series`` ('candles' or 'mark') at ``interval``; None when none can be built."""
    step = timeframe_ms(interval)
    symbol = unified(kind, mid)
    sources = sorted(
        (timeframe_ms(f.timeframe), f.timeframe, f.path)
        for f in catalog().files()
        if f.kind == kind and f.symbol == symbol and f.series == series and step % timeframe_ms(f.timeframe) == 0
    )
    if not sources:
        return None
    source_step, timeframe, path = sources[-1]
    bars, _ = load_bars(path, symbol, timeframe, on_gap="skip")
    source = Candles(source_step, bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume)
    return source if source_step == step else _aggregated(source, step, interval)


def _aggregated(source: Candles, step: int, interval: str) -> Candles:
    origin = WEEK_ORIGIN if interval.endswith("w") else 0
    opens = (source.ts - origin) // step * step + origin
    first = np.flatnonzero(np.r_[True, opens[1:] != opens[:-1]])
    last = np.r_[first[1:] - 1, len(opens) - 1]
    return Candles(
        step, opens[first], source.open[first], np.maximum.reduceat(source.high, first),
        np.minimum.reduceat(source.low, first), source.close[last], np.add.reduceat(source.volume, first),
    )


@functools.cache
def funding(mid: str) -> tuple[np.ndarray, np.ndarray] | None:
    """Bundled funding settlements (ms, rate) of a perpetual; None when not bundled."""
    symbol = unified("futures", mid)
    files = [f.path for f in catalog().files() if f.series == "funding" and f.symbol == symbol]
    if not files:
        return None
    rates = load_funding(files[0], symbol)
    return rates.ts, rates.rate


def decimal(value: float) -> str:
    """Binance's decimal string, at least 8 places, exact: ``float(decimal(x)) == x``."""
    text = np.format_float_positional(value, unique=True, trim="-")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(8, '0')}"
