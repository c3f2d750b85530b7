"""Volatility and trend regime labels per bar, and the entry gate they drive."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.regime import WARMUP, RegimeConfig, trend_regime, volatility_regime
from core.component import AgentContext, Component, Decision, Stage, next_at_or_after
from core.market import MarketData
from core.records import Position

VOL_NAMES = {-1: "low", 0: "normal", 1: "high"}
TREND_NAMES = {-1: "down", 0: "range", 1: "up"}


class RegimeDetectorConfig(RegimeConfig):
    """The regime parameters, plus how long a new label must hold before it counts."""

    min_bars: int = Field(default=6, ge=1)


def _debounce(labels: np.ndarray, min_bars: int) -> list[int]:
    """A label change counts only once it has held ``min_bars`` bars (causal).

    Warm-up bars read as normal/range; the detector's ready index keeps trading out of them.
    """
    labels = np.where(labels == WARMUP, 0, labels)
    out: list[int] = []
    current, candidate, run = 0, 0, 0
    for x in labels.tolist():
        if x == candidate:
            run += 1
        else:
            candidate, run = x, 1
        if candidate != current and run >= min_bars:
            current = candidate
        out.append(current)
    return out


class RegimeDetector(Component):
    """Labels each bar low/normal/high volatility and up/down/range trend; gates entries."""

    stage = Stage.REGIME
    Config = RegimeDetectorConfig
    config: RegimeDetectorConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self._last: dict[str, tuple[int, int]] = {}  # the labels last reported per symbol

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        c = self.config
        self._vol: dict[str, list[int]] = {}
        self._trend: dict[str, list[int]] = {}
        self._changes: dict[str, list[int]] = {}  # bars whose (volatility, trend) label differs from the bar before
        for symbol, data in market.symbols.items():
            b = data.bars
            vol = volatility_regime(b.high, b.low, b.close, atr_period=c.atr_period,
                                    lookback=c.vol_lookback, low_pct=c.low_pct, high_pct=c.high_pct)
            trend = trend_regime(b.close, fast=c.trend_fast, slow=c.trend_slow, band=c.trend_band)
            self._vol[symbol] = _debounce(vol, c.min_bars)
            self._trend[symbol] = _debounce(trend, c.min_bars)
            shared.setdefault(symbol, {}).update(vol_regime=self._vol[symbol], trend_regime=self._trend[symbol])
            v, t = self._vol[symbol], self._trend[symbol]
            self._changes[symbol] = [k for k in range(1, len(v)) if v[k] != v[k - 1] or t[k] != t[k - 1]]

    def warmup_bars(self, timeframe_ms: int) -> int:
        c = self.config
        return max(c.vol_lookback + c.atr_period, c.trend_slow)

    def next_event(self, symbol: str, i: int, position: Position | None) -> int:
        last = self._last.get(symbol)
        if last is None or last != (self._vol[symbol][i], self._trend[symbol][i]):
            return i  # the first look at a symbol, or a change since the last look
        return next_at_or_after(self._changes[symbol], i)

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        vol, trend = self._vol[d.symbol][d.i], self._trend[d.symbol][d.i]
        d.vol_regime, d.trend_regime = vol, trend
        last = self._last.get(d.symbol)
        if last != (vol, trend):
            self._last[d.symbol] = (vol, trend)
            if last is not None:
                ctx.adjust(
                    "regime_change",
                    {"symbol": d.symbol, "volatility": VOL_NAMES[last[0]], "trend": TREND_NAMES[last[1]]},
                    {"symbol": d.symbol, "volatility": VOL_NAMES[vol], "trend": TREND_NAMES[trend]},
                    "regime label changed", {"bar_close_ts": d.now},
                )


class RegimeGateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    entry_vol_regimes: tuple[Literal["low", "normal", "high"], ...] = ("low", "normal", "high")
    trade_with_trend: bool = True  # no longs in a down trend, no shorts in an up trend
    # inside: keep entries in the traded regimes; outside: keep only the ones the gate would drop
    # (conservative discovery: learn about regimes the agent has not proven itself in)
    admit: Literal["inside", "outside"] = "inside"


class RegimeGate(Component):
    """Keeps entry signals inside (or, for discovery, only outside) the regimes the agent trades."""

    stage = Stage.GATE
    Config = RegimeGateConfig
    config: RegimeGateConfig
    acts_on_entries_only = True

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        self._allowed_vol = {k for k, v in VOL_NAMES.items() if v in self.config.entry_vol_regimes}

    def rejection(self, d: Decision) -> str | None:
        """Why the traded regimes exclude this entry, or None if they allow it."""
        if d.vol_regime not in self._allowed_vol:
            return f"volatility regime {VOL_NAMES[d.vol_regime]} not traded"
        if self.config.trade_with_trend and d.entry * d.trend_regime < 0:
            return f"against the {TREND_NAMES[d.trend_regime]} trend"
        return None

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry:
            return
        why = self.rejection(d)
        if self.config.admit == "inside" and why is not None:
            d.entry, d.reason = 0, why
        elif self.config.admit == "outside":
            if why is None:
                d.entry, d.reason = 0, "inside the traded regimes: not a discovery"
            else:
                d.reason = f"discovery: {why}"
