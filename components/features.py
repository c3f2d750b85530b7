"""Causal indicator features every other component reads (EMA, ATR, RSI)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.indicators import atr, ema, rsi
from core.component import Component, Stage
from core.market import MarketData, per_bar


class IndicatorFeaturesConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ema_fast: int = Field(default=20, ge=2)  # bars
    ema_slow: int = Field(default=50, ge=3)
    atr_period: int = Field(default=14, ge=2)  # Wilder smoothing, as TA-Lib
    rsi_period: int = Field(default=14, ge=2)


class IndicatorFeatures(Component):
    """Computes the indicator series once per run and shares them as ``shared[symbol][name]``."""

    stage = Stage.FEATURES
    Config = IndicatorFeaturesConfig
    config: IndicatorFeaturesConfig

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        c = self.config
        for symbol, data in market.symbols.items():
            b = data.bars
            series = {
                "ema_fast": ema(b.close, c.ema_fast),
                "ema_slow": ema(b.close, c.ema_slow),
                "atr": atr(b.high, b.low, b.close, c.atr_period),
                "rsi": rsi(b.close, c.rsi_period),
            }
            shared.setdefault(symbol, {}).update({k: per_bar(v) for k, v in series.items()})

    def warmup_bars(self, timeframe_ms: int) -> int:
        c = self.config  # SMA-seeded EMA: first value at n - 1; Wilder ATR and RSI at n
        return max(c.ema_fast, c.ema_slow, c.atr_period + 1, c.rsi_period + 1)
