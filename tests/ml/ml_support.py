"""Test data for the ML tests: real BTC 5m bars, planted-signal bars, a tiny retrainer."""

from __future__ import annotations

import dataclasses

import numpy as np

from components.features import IndicatorFeatures, IndicatorFeaturesConfig
from components.market.catalog import BUNDLED_DATA_DIR
from components.market.loader import load_bars
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.trade_labels import ExitSeries
from components.ml.training import TrainingConfig
from components.regime_detector import RegimeDetector, RegimeDetectorConfig
from core.market import Bars, MarketData, SymbolData

FIVE_MIN = 300_000
START_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC
TINY_TRAINING = TrainingConfig(
    window=8, width=8, epochs=3, batch_size=128, max_samples=1500, threads=1
)


def read_bars(name: str, symbol: str) -> Bars:
    """A bundled 5m candle file as Bars."""
    return load_bars(BUNDLED_DATA_DIR / name, symbol, "5m", on_gap="fail")[0]


def planted_bars(days: int, seed: int, symbol: str = "SYN/USDT", drift: float = 6e-4) -> Bars:
    """Price drifts up in the first half of each UTC day and down in the second, plus noise.

    The sign of the next hour's return is then predictable from the time-of-day features.
    A negative ``drift`` plants the opposite pattern.
    """
    rng = np.random.default_rng(seed)
    n = days * 288
    ts = START_MS + FIVE_MIN * np.arange(n, dtype=np.int64)
    first_half = ((ts % 86_400_000) < 43_200_000).astype(np.float64)
    steps = drift * (2 * first_half - 1) + 1e-3 * rng.standard_normal(n)
    close = 100 * np.exp(np.cumsum(steps))
    open_ = np.concatenate(([100.0], close[:-1]))
    wick = np.abs(rng.standard_normal(n)) * 5e-4
    high = np.maximum(open_, close) * (1 + wick)
    low = np.minimum(open_, close) * (1 - wick)
    volume = np.exp(rng.standard_normal(n))
    return Bars(symbol, "5m", FIVE_MIN, ts, open_, high, low, close, volume)


def tiny_retrainer(members: tuple[str, ...] = ("cnn", "attention_mlp"), **overrides) -> Retrainer:
    """Small enough to train in about a second on planted_bars(10, ...)."""
    config = {
        "label": "bar",
        "horizon": 6,
        "fee": 0.0,
        "window_days": 8,
        "stacking_fraction": 0.15,
        "holdout_fraction": 0.2,
        "members": members,
        "training": TINY_TRAINING.model_copy(update={"epochs": 5}),
        **overrides,
    }
    return Retrainer(RetrainerConfig(**config))


def end_ts(bars: Bars) -> int:
    """The moment the last bar closes."""
    return int(bars.ts[-1]) + bars.timeframe_ms


def perturb_after(bars: Bars, t: int, seed: int) -> Bars:
    """Same bars up to ``t``; every later bar rescaled (a valid candle still) and given another volume."""
    rng = np.random.default_rng(seed)
    scale = np.ones(len(bars))
    scale[t + 1 :] = np.exp(rng.normal(0, 0.05, len(bars) - t - 1))
    volume = bars.volume.copy()
    volume[t + 1 :] = rng.exponential(volume.mean(), len(bars) - t - 1)
    return dataclasses.replace(bars, open=bars.open * scale, high=bars.high * scale, low=bars.low * scale,
                               close=bars.close * scale, volume=volume)


def agent_exit_series(bars_by_symbol: dict[str, Bars], vol_lookback: int = 2016) -> dict[str, ExitSeries]:
    """ATR and volatility regime per bar, as the hybrid agent's features and regime components share them."""
    first = next(iter(bars_by_symbol.values()))
    market = MarketData("spot", first.timeframe, first.timeframe_ms, first.ts,
                        {s: SymbolData(b) for s, b in bars_by_symbol.items()})
    shared: dict = {}
    IndicatorFeatures("features", IndicatorFeaturesConfig()).prepare(market, shared)
    RegimeDetector("regime", RegimeDetectorConfig(vol_lookback=vol_lookback, low_pct=0.25, high_pct=0.75)
                   ).prepare(market, shared)
    return {s: ExitSeries.from_shared(shared, s) for s in bars_by_symbol}
