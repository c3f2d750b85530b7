"""Rule-based entry and exit signals, evaluated at bar close on completed bars only."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.indicators import ema, rsi
from core.component import AgentContext, Component, Decision, Stage, next_at_or_after
from core.market import MarketData, per_bar
from core.records import Position


class EmaCrossSignalConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fast: int = Field(default=12, ge=2)  # EMA periods on close, SMA-seeded like TA-Lib
    slow: int = Field(default=26, ge=3)
    allow_short: bool = False
    exit_on_cross: bool = True  # False: positions leave only through stops and targets
    rsi_period: int = Field(default=14, ge=2)
    rsi_long_max: float = Field(default=100.0, ge=0, le=100)  # no long entry above this RSI
    rsi_short_min: float = Field(default=0.0, ge=0, le=100)  # no short entry below this RSI

    @model_validator(mode="after")
    def _fast_below_slow(self) -> EmaCrossSignalConfig:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be shorter than slow ({self.slow})")
        return self


class EmaCrossSignal(Component):
    """Enter when the fast EMA crosses the slow one; exit when it crosses back."""

    stage = Stage.SIGNAL
    Config = EmaCrossSignalConfig
    config: EmaCrossSignalConfig

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        c = self.config
        self._cross: dict[str, list[int]] = {}
        self._crossings: dict[str, list[int]] = {}  # the bars with a cross, in order
        self._rsi: dict[str, list[float]] = {}
        for symbol, data in market.symbols.items():
            fast, slow = ema(data.bars.close, c.fast), ema(data.bars.close, c.slow)
            above = fast > slow  # NaN compares False: no cross during warm-up
            valid = ~np.isnan(fast) & ~np.isnan(slow)
            cross = np.zeros(len(above), dtype=np.int64)
            flips = valid[1:] & valid[:-1] & (above[1:] != above[:-1])  # bar i against bar i - 1
            cross[1:][flips] = np.where(above[1:][flips], 1, -1)
            self._cross[symbol] = cross.tolist()
            self._crossings[symbol] = np.flatnonzero(cross).tolist()
            self._rsi[symbol] = per_bar(rsi(data.bars.close, c.rsi_period))

    def warmup_bars(self, timeframe_ms: int) -> int:
        return self.config.slow  # both EMAs on this bar and the one before: a cross can be seen

    def next_event(self, symbol: str, i: int, position: Position | None) -> int:
        return next_at_or_after(self._crossings[symbol], i)

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        cross = self._cross[d.symbol][d.i]
        if not cross:
            return
        c = self.config
        if d.position is not None:
            if cross == -d.position.side and c.exit_on_cross:
                d.exit, d.reason = True, "ema cross against the position"
            return
        r = self._rsi[d.symbol][d.i]
        if cross > 0 and not r > c.rsi_long_max:
            d.entry, d.reason = 1, f"ema{c.fast} crossed above ema{c.slow}"
        elif cross < 0 and c.allow_short and not r < c.rsi_short_min:
            d.entry, d.reason = -1, f"ema{c.fast} crossed below ema{c.slow}"
