"""Feeds: where an agent's bars come from. Replay reads stored parquet; paper and live poll ccxt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from components.market.loader import load_market
from components.market.quality import GapPolicy
from components.market.timeframes import iso_utc, timeframe_ms
from core.errors import DataError
from core.market import MarketData


class StoredFeed:
    """Bundled or downloaded bars for a window, with warm-up history from before its start.

    ``warmup_bars`` bars before ``start_ms`` are loaded when the data has them (freqtrade's
    startup candles), so the agent trades from the window's first bar.
    """

    live = False

    def __init__(self, kind: str, symbols: list[str], timeframe: str, *, on_gap: GapPolicy,
                 start_ms: int | None, end_ms: int | None, data_dir: str | Path | None,
                 warmup_bars: int) -> None:
        self._kind, self._symbols, self._timeframe = kind, symbols, timeframe
        self._on_gap, self._start, self._end, self._dir = on_gap, start_ms, end_ms, data_dir
        self._warmup = warmup_bars

    def history(self) -> MarketData:
        start = self._start
        load_from = None if start is None else start - self._warmup * timeframe_ms(self._timeframe)
        try:
            market = load_market(self._kind, self._symbols, self._timeframe, on_gap=self._on_gap,
                                 start_ms=load_from, end_ms=self._end, data_dir=self._dir)
        except DataError as exc:
            if start is None or not self._warmup:
                raise
            raise DataError(f"{exc} (the window includes the {self._warmup} warm-up bars before market.start "
                            f"{iso_utc(start)}; market.warmup_bars sets how many)") from None
        trade_from = 0 if start is None else int(np.searchsorted(market.ts, start))
        if trade_from == len(market):
            raise DataError(f"no {self._kind} {self._timeframe} bars from {iso_utc(start)}: the data of "
                            f"{', '.join(self._symbols)} ends at {iso_utc(int(market.ts[-1]))}")
        return replace(market, trade_from=trade_from)

    def poll(self, market: MarketData, now: int) -> MarketData:
        return market  # every bar was known at start
