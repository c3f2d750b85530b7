"""Market data as plain arrays: what every component and exchange reads.

All arrays are numpy, aligned by bar index. ``ts`` is the candle *open* time in int ms UTC;
a bar is complete (and visible to components) at ``ts + timeframe_ms``.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass
from typing import Literal

import numpy as np

MarketKind = Literal["spot", "futures"]


@dataclass(frozen=True)
class Bars:
    symbol: str  # ccxt unified: BTC/USDT (spot), BTC/USDT:USDT (USDT-M perpetual)
    timeframe: str  # 1m, 5m, 1h ...
    timeframe_ms: int
    ts: np.ndarray  # int64 open times
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True)
class FundingRates:
    symbol: str
    ts: np.ndarray  # int64 settlement times
    rate: np.ndarray  # fraction per interval: 0.0001 = 0.01 %


@dataclass(frozen=True)
class DataIssue:
    """A gap or duplicate found while loading, kept when the policy is ``skip``."""

    symbol: str
    ts: int
    kind: str  # gap | duplicate
    detail: str


@dataclass(frozen=True)
class SymbolData:
    bars: Bars
    mark: Bars | None = None  # mark-price candles, futures only
    funding: FundingRates | None = None  # futures only


@dataclass(frozen=True)
class MarketData:
    """Every symbol of one market on one shared bar index ``ts``.

    Bars before ``trade_from`` are warm-up history: components read them, the agent does not
    decide on them (a replay window that starts at ``market.start`` trades from its first bar).
    """

    kind: MarketKind
    timeframe: str
    timeframe_ms: int
    ts: np.ndarray
    symbols: dict[str, SymbolData]
    issues: tuple[DataIssue, ...] = ()
    trade_from: int = 0

    def __len__(self) -> int:
        return len(self.ts)


def per_bar(values: np.ndarray) -> array:
    """``values`` as a compact sequence of Python numbers, for scalar reads in the bar loop: 8 bytes a
    bar (``tolist()`` takes 32 for a float), the same values, reads ~20 ns slower than a list's.
    Integer arrays stay integers (int64), all others become float64."""
    if np.issubdtype(np.asarray(values).dtype, np.integer):
        return array("q", np.ascontiguousarray(values, dtype=np.int64).tobytes())
    return array("d", np.ascontiguousarray(values, dtype=np.float64).tobytes())
