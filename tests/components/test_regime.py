"""Regime labels on real BTC/USDT 1h candles, 2022-2026: plausible, causal, configurable."""

from __future__ import annotations

from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from components.indicators import atr
from components.market.catalog import Catalog
from components.market.loader import load_bars
from components.regime import (
    DOWN,
    HIGH,
    LOW,
    NORMAL,
    RANGE,
    REGIME_NAMES,
    UP,
    WARMUP,
    RegimeConfig,
    trend_regime,
    volatility_regime,
)
from core.market import Bars

YEAR_2023_MS = 1672531200000  # 2023-01-01 00:00 UTC
DEFAULTS = RegimeConfig()


@cache
def btc_1h() -> Bars:
    bars, _ = load_bars(Catalog().candles("spot", "BTC/USDT", "1h"), "BTC/USDT", "1h", on_gap="skip")
    return bars


def vol_labels(high, low, close, config: RegimeConfig = DEFAULTS) -> np.ndarray:
    return volatility_regime(
        high, low, close, atr_period=config.atr_period, lookback=config.vol_lookback,
        low_pct=config.low_pct, high_pct=config.high_pct,
    )


def trend_labels(close, config: RegimeConfig = DEFAULTS) -> np.ndarray:
    return trend_regime(close, fast=config.trend_fast, slow=config.trend_slow, band=config.trend_band)


def shares(labels: np.ndarray) -> dict[int, float]:
    live = labels[labels != WARMUP]
    return {int(k): float(np.mean(live == k)) for k in (-1, 0, 1)}


def test_every_volatility_label_occurs_with_a_plausible_share() -> None:
    b = btc_1h()
    share = shares(vol_labels(b.high, b.low, b.close))

    assert 0.05 < share[HIGH] < 0.40
    assert 0.05 < share[LOW] < 0.40
    assert 0.30 < share[NORMAL] < 0.80


def test_every_trend_label_occurs_and_none_dominates() -> None:
    share = shares(trend_labels(btc_1h().close))
    assert all(0.10 < share[label] < 0.60 for label in (UP, DOWN, RANGE))


def test_the_2022_bear_market_is_mostly_down_trend() -> None:
    b = btc_1h()
    labels = trend_labels(b.close)[b.ts < YEAR_2023_MS]

    assert np.count_nonzero(labels == DOWN) > np.count_nonzero(labels == UP)


def test_high_volatility_bars_have_higher_atr_share_of_price_than_low_ones() -> None:
    b = btc_1h()
    labels = vol_labels(b.high, b.low, b.close)
    atr_pct = atr(b.high, b.low, b.close, DEFAULTS.atr_period) / b.close
    assert np.median(atr_pct[labels == HIGH]) > 1.5 * np.median(atr_pct[labels == LOW])


def test_warmup_bars_carry_the_sentinel_and_only_they_do() -> None:
    b = btc_1h()
    vol, trend = vol_labels(b.high, b.low, b.close), trend_labels(b.close)

    vol_ready = DEFAULTS.atr_period + DEFAULTS.vol_lookback
    assert (vol[:vol_ready] == WARMUP).all() and (vol[vol_ready:] != WARMUP).all()
    assert (trend[: DEFAULTS.trend_slow - 1] == WARMUP).all()
    assert (trend[DEFAULTS.trend_slow - 1 :] != WARMUP).all()
    assert vol.dtype == np.int8 and trend.dtype == np.int8


def test_every_label_has_a_name() -> None:
    b = btc_1h()
    labelled = {"volatility": vol_labels(b.high, b.low, b.close), "trend": trend_labels(b.close)}
    for kind, labels in labelled.items():
        assert set(np.unique(labels).tolist()) == set(REGIME_NAMES[kind])


def test_a_wider_band_turns_trend_bars_into_range() -> None:
    close = btc_1h().close
    narrow = trend_regime(close, fast=50, slow=200, band=0.002)
    wide = trend_regime(close, fast=50, slow=200, band=0.03)
    assert np.count_nonzero(wide == RANGE) > np.count_nonzero(narrow == RANGE)


@settings(max_examples=20, deadline=None)
@given(t=st.integers(min_value=0, max_value=2999), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_no_label_at_or_before_t_changes_when_the_bars_after_t_change(t: int, seed: int) -> None:
    config = RegimeConfig(vol_lookback=200, trend_fast=20, trend_slow=100)
    b = btc_1h()
    h, lo, c = (a[:3000].copy() for a in (b.high, b.low, b.close))
    before = vol_labels(h, lo, c, config), trend_labels(c, config)
    future = slice(t + 1, None)
    c[future] *= np.exp(np.random.default_rng(seed).normal(0.0, 0.2, size=len(c) - t - 1))
    h[future], lo[future] = c[future] * 1.05, c[future] * 0.95

    after = vol_labels(h, lo, c, config), trend_labels(c, config)

    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(new[: t + 1], old[: t + 1])


def test_config_is_frozen_and_rejects_unknown_keys() -> None:
    with pytest.raises(ValidationError):
        RegimeConfig(atr_perod=14)
    with pytest.raises(ValidationError):
        DEFAULTS.atr_period = 10  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad",
    [{"low_pct": 0.8, "high_pct": 0.2}, {"trend_fast": 200, "trend_slow": 50}, {"trend_band": -0.1},
     {"atr_period": 0}, {"high_pct": 1.5}],
)
def test_config_refuses_inconsistent_parameters(bad: dict) -> None:
    with pytest.raises(ValidationError):
        RegimeConfig(**bad)


def test_label_functions_refuse_inconsistent_parameters() -> None:
    b = btc_1h()
    with pytest.raises(ValueError, match="low_pct"):
        volatility_regime(b.high, b.low, b.close, atr_period=14, lookback=100, low_pct=0.9, high_pct=0.1)
    with pytest.raises(ValueError, match="fast 200"):
        trend_regime(b.close, fast=200, slow=50, band=0.01)
