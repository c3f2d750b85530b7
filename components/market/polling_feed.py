"""Paper and live: bars polled from Binance through ccxt, stored in the run folder as they close.

The run folder's ``market/`` holds what the agent has seen, in the loader's layout: warm-up
history fetched at the first start, then every bar the exchange's clock has closed since. A
restart tops the files up (bars missed while the process was down are fetched and replayed in
order), so the stored bars replay exactly with ``ratchet market.data_dir=RUN/market``.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from components.exchange.ccxt_client import BinanceClient
from components.market.download import DownloadRequest, download
from components.market.loader import load_market
from components.market.quality import GapPolicy
from components.market.timeframes import timeframe_ms
from core.market import MarketData, MarketKind

FEED_FILE = "feed.json"  # when the agent's first live bar opened: bars before it are warm-up history


class PollingFeed:
    """Closed bars from the exchange, stored under ``store_dir`` (the run folder's ``market/``)."""

    live = True

    def __init__(self, client: BinanceClient, kind: MarketKind, symbols: list[str], timeframe: str, *,
                 on_gap: GapPolicy, store_dir: Path, warmup_bars: int) -> None:
        self._client, self._kind, self._symbols, self._timeframe = client, kind, symbols, timeframe
        self._on_gap, self._dir, self._warmup = on_gap, store_dir, warmup_bars
        self._tf = timeframe_ms(timeframe)

    @property
    def trade_from_path(self) -> Path:
        return self._dir / FEED_FILE

    def history(self) -> MarketData:
        """Warm-up history at the first start; everything stored, topped up to now, on a restart."""
        if self.trade_from_path.exists():
            first_live = int(json.loads(self.trade_from_path.read_text())["first_live_bar"])
            self._fetch(start_ms=None)
        else:
            now = self._client.server_time()
            first_live = now // self._tf * self._tf  # the bar forming now is the first the agent trades
            self._fetch(start_ms=first_live - max(self._warmup, 1) * self._tf)
            self._dir.mkdir(parents=True, exist_ok=True)
            tmp = self.trade_from_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"first_live_bar": first_live}))
            tmp.replace(self.trade_from_path)
        self._first_live = first_live
        return self._load()

    def poll(self, market: MarketData, now: int) -> MarketData:
        self._fetch(start_ms=None)
        return self._load()

    def _fetch(self, start_ms: int | None) -> None:
        download(DownloadRequest(self._kind, tuple(self._symbols), self._timeframe, start_ms, None, self._on_gap,
                                 self._dir, checkpoint_s=0.0), self._client)

    def _load(self) -> MarketData:
        market = load_market(self._kind, self._symbols, self._timeframe, on_gap=self._on_gap, data_dir=self._dir)
        return replace(market, trade_from=int(np.searchsorted(market.ts, self._first_live)))
