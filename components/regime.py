"""Market regime labels per bar, computed causally over whole arrays.

Volatility: ATR as a fraction of close, ranked against its own previous ``lookback`` bars.
Trend: fast EMA against slow EMA, with a relative band that counts as 'range'.
Bars still in warm-up carry ``WARMUP`` (-128, int8's minimum), never a real label: test
``labels != WARMUP`` before reading ``labels < 0`` as 'low' or 'down'.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.indicators import atr, ema, rolling_percentile_rank

WARMUP = -128
LOW, NORMAL, HIGH = -1, 0, 1
DOWN, RANGE, UP = -1, 0, 1

REGIME_NAMES: dict[str, dict[int, str]] = {
    "volatility": {LOW: "low", NORMAL: "normal", HIGH: "high", WARMUP: "warmup"},
    "trend": {DOWN: "down", RANGE: "range", UP: "up", WARMUP: "warmup"},
}


class RegimeConfig(BaseModel):
    """Parameters of both regime labels; periods and lookbacks count bars of the timeframe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    atr_period: int = Field(14, ge=1, description="Wilder ATR period (the classic 14).")
    vol_lookback: int = Field(
        720, ge=2, description="Bars ATR% is ranked against: 720 = 30 days of 1h bars."
    )
    low_pct: float = Field(
        0.2, ge=0.0, le=1.0, description="Rank at or below this is low volatility (bottom 20%)."
    )
    high_pct: float = Field(
        0.8, ge=0.0, le=1.0, description="Rank at or above this is high volatility (top 20%)."
    )
    trend_fast: int = Field(50, ge=1, description="Fast EMA period.")
    trend_slow: int = Field(200, ge=2, description="Slow EMA period.")
    trend_band: float = Field(
        0.005, ge=0.0, description="|fast/slow - 1| within this (0.5%) is a range, not a trend."
    )

    @model_validator(mode="after")
    def _ordered(self) -> RegimeConfig:
        if self.low_pct >= self.high_pct:
            raise ValueError(f"low_pct {self.low_pct} must be below high_pct {self.high_pct}")
        if self.trend_fast >= self.trend_slow:
            raise ValueError(
                f"trend_fast {self.trend_fast} must be shorter than trend_slow {self.trend_slow}"
            )
        return self


def volatility_regime(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    *,
    atr_period: int,
    lookback: int,
    low_pct: float,
    high_pct: float,
) -> np.ndarray:
    """-1 low, 0 normal, 1 high volatility; WARMUP for the first ``atr_period + lookback`` bars.

    The rank of bar i is the share of the previous ``lookback`` ATR% values <= today's, so
    'high' means today's ATR% is at or above ``high_pct`` of the recent past.
    """
    if not 0.0 <= low_pct < high_pct <= 1.0:
        raise ValueError(f"need 0 <= low_pct < high_pct <= 1, got {low_pct} and {high_pct}")
    atr_pct = atr(high, low, close, atr_period) / np.asarray(close, dtype=np.float64)
    rank = rolling_percentile_rank(atr_pct, lookback)
    labels = np.full(len(rank), NORMAL, dtype=np.int8)
    labels[rank <= low_pct] = LOW
    labels[rank >= high_pct] = HIGH
    labels[np.isnan(rank)] = WARMUP
    return labels


def trend_regime(close: np.ndarray, *, fast: int, slow: int, band: float) -> np.ndarray:
    """+1 up, -1 down, 0 range: fast EMA above / below slow EMA by more than ``band`` (relative).

    WARMUP until the slow EMA exists (the first ``slow - 1`` bars).
    """
    if fast >= slow:
        raise ValueError(f"fast {fast} must be shorter than slow {slow}")
    if band < 0:
        raise ValueError(f"band must be >= 0, got {band}")
    fast_line, slow_line = ema(close, fast), ema(close, slow)
    spread = fast_line / slow_line - 1.0
    labels = np.full(len(spread), RANGE, dtype=np.int8)
    labels[spread > band] = UP
    labels[spread < -band] = DOWN
    labels[np.isnan(spread)] = WARMUP
    return labels
