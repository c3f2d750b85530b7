"""Indicators match TA-Lib on real BTC/USDT 1h candles and never look ahead."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from components import indicators as ind
from components.market.catalog import Catalog
from components.market.loader import load_bars
from core.market import Bars

HLC = tuple[np.ndarray, np.ndarray, np.ndarray]


@cache
def btc_1h() -> Bars:
    """BTC/USDT spot 1h, 2022-01 to 2026-05 (the 2023-03-24 halt hour is a hole)."""
    bars, _ = load_bars(Catalog().candles("spot", "BTC/USDT", "1h"), "BTC/USDT", "1h", on_gap="skip")
    return bars


def hlc() -> HLC:
    b = btc_1h()
    return b.high, b.low, b.close


# Every indicator as a function of (high, low, close), for the causality checks.
INDICATORS: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "sma": lambda h, lo, c: ind.sma(c, 20),
    "ema": lambda h, lo, c: ind.ema(c, 20),
    "true_range": lambda h, lo, c: ind.true_range(h, lo, c),
    "atr": lambda h, lo, c: ind.atr(h, lo, c, 14),
    "rsi": lambda h, lo, c: ind.rsi(c, 14),
    "rolling_percentile_rank": lambda h, lo, c: ind.rolling_percentile_rank(c, 50),
    "zscore": lambda h, lo, c: ind.zscore(c, 30),
    "log_returns": lambda h, lo, c: ind.log_returns(c, 3),
    "ema_of_atr": lambda h, lo, c: ind.ema(ind.atr(h, lo, c, 14), 10),
}


def assert_equals_talib_portable_build(ours: np.ndarray, talib_out: np.ndarray) -> None:
    """TA-Lib 0.8 picks its ATR and EMA builds at run time: plain double steps, which ours are bit for
    bit, or fused multiply-adds on CPUs with FMA (x86-64 FMA3), from which ours stay within 2e-15."""
    from numpy._core._multiarray_umath import __cpu_features__  # numpy's own CPU probe

    if __cpu_features__.get("FMA3"):
        np.testing.assert_allclose(ours, talib_out, rtol=2e-15, atol=0.0, equal_nan=True)
    else:
        np.testing.assert_array_equal(ours, talib_out)


@pytest.mark.parametrize("n", [1, 2, 5, 20, 50, 200])
def test_sma_equals_talib_bit_for_bit_over_the_whole_history(n: int) -> None:
    close = btc_1h().close
    np.testing.assert_array_equal(ind.sma(close, n), talib.SMA(close, n))


@pytest.mark.parametrize("n", [2, 9, 21, 50, 200])
def test_ema_equals_talibs_portable_build_sma_seed_and_all(n: int) -> None:
    close = btc_1h().close
    ours = ind.ema(close, n)
    assert_equals_talib_portable_build(ours, talib.EMA(close, n))
    assert ours[n - 1] == pytest.approx(close[:n].mean(), rel=1e-12)


def test_true_range_equals_talib_bit_for_bit() -> None:
    np.testing.assert_array_equal(ind.true_range(*hlc()), talib.TRANGE(*hlc()))


@pytest.mark.parametrize("n", [1, 2, 14, 50])
def test_atr_equals_talibs_portable_build_wilder_seeded_with_the_mean_true_range(n: int) -> None:
    ours = ind.atr(*hlc(), n)
    assert_equals_talib_portable_build(ours, talib.ATR(*hlc(), n))
    assert np.isnan(ours[n - 1]) and ours[n] == pytest.approx(ind.true_range(*hlc())[1 : n + 1].mean())


@pytest.mark.parametrize("n", [2, 6, 14, 30])
def test_rsi_equals_talib_bit_for_bit(n: int) -> None:
    close = btc_1h().close
    np.testing.assert_array_equal(ind.rsi(close, n), talib.RSI(close, n))


def test_indicators_of_indicators_skip_leading_nans_like_talib() -> None:
    atr14 = talib.ATR(*hlc(), 14)
    assert_equals_talib_portable_build(ind.ema(atr14, 10), talib.EMA(atr14, 10))
    np.testing.assert_array_equal(ind.rsi(atr14, 10), talib.RSI(atr14, 10))
    np.testing.assert_array_equal(ind.sma(atr14, 10), talib.SMA(atr14, 10))


def test_rsi_of_a_flat_market_is_zero_as_in_talib() -> None:
    flat = np.full(50, 101.5)
    np.testing.assert_array_equal(ind.rsi(flat, 14), talib.RSI(flat, 14))
    assert ind.rsi(flat, 14)[20] == 0.0


def test_rsi_of_a_coin_priced_in_fractions_of_a_cent_is_not_zero_as_in_talib_0_8() -> None:
    rising = 1e-6 + 1e-10 * np.arange(30.0)  # average moves far below 1e-8, all gains
    np.testing.assert_array_equal(ind.rsi(rising, 14), talib.RSI(rising, 14))
    assert ind.rsi(rising, 14)[-1] == 100.0


def test_a_nan_inside_the_input_spoils_only_the_sma_windows_that_hold_it() -> None:
    x = btc_1h().close[:300].copy()
    x[100] = np.nan
    ours = ind.sma(x, 20)
    assert np.isnan(ours[100:120]).all() and not np.isnan(ours[120:]).any()
    np.testing.assert_array_equal(ours[:100], talib.SMA(x[:100], 20))
    np.testing.assert_array_equal(ours[101:], talib.SMA(x[101:], 20))  # restarted after the NaN


@pytest.mark.parametrize("name", ["ema", "atr", "rsi"])
def test_a_nan_inside_the_input_stays_nan_in_the_recursive_filters(name: str) -> None:
    h, lo, c = (a[:300].copy() for a in hlc())
    c[100] = np.nan
    out = INDICATORS[name](h, lo, c)
    assert not np.isnan(out[20:100]).any() and np.isnan(out[101:]).all()


def test_zscore_matches_talib_mean_and_population_stddev() -> None:
    close = btc_1h().close
    expected = (close - talib.SMA(close, 20)) / talib.STDDEV(close, 20, 1)
    # TA-Lib's STDDEV takes E[x^2] - E[x]^2 from running sums, which costs digits at BTC prices.
    np.testing.assert_allclose(ind.zscore(close, 20), expected, rtol=1e-6, equal_nan=True)


def test_zscore_of_a_flat_window_is_nan() -> None:
    assert np.isnan(ind.zscore(np.ones(10), 5)[4:]).all()


def test_percentile_rank_counts_the_previous_window_at_or_below_the_current_value() -> None:
    close = btc_1h().close[:3000]
    window = 100
    expected = np.full(len(close), np.nan)
    for i in range(window, len(close)):
        expected[i] = np.count_nonzero(close[i - window : i] <= close[i]) / window

    np.testing.assert_array_equal(ind.rolling_percentile_rank(close, window), expected)


def test_percentile_rank_is_nan_where_its_window_holds_a_nan() -> None:
    x = btc_1h().close[:200].copy()
    x[50] = np.nan
    rank = ind.rolling_percentile_rank(x, 20)
    spoiled = np.isnan(rank)
    assert spoiled[:20].all() and spoiled[50:71].all()  # warm-up; the NaN bar and its 20 successors
    assert not spoiled[20:50].any() and not spoiled[71:].any()


def test_one_bar_log_returns_add_up_to_the_day_return() -> None:
    close = btc_1h().close
    daily = ind.log_returns(close, 24)
    hourly_sum = np.convolve(ind.log_returns(close, 1)[1:], np.ones(24), "valid")
    np.testing.assert_allclose(daily[24:], hourly_sum, rtol=1e-9, atol=1e-12)
    assert np.isnan(daily[:24]).all()


@pytest.mark.parametrize("name", sorted(INDICATORS))
def test_a_single_bar_is_all_warmup(name: str) -> None:
    out = INDICATORS[name](*(a[:1] for a in hlc()))
    assert out.shape == (1,) and np.isnan(out[0])


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_a_period_that_is_not_a_positive_integer_is_refused(bad) -> None:
    with pytest.raises(ValueError, match=f"n must be a positive integer, got {bad!r}"):
        ind.ema(btc_1h().close, bad)


def test_high_low_close_of_different_lengths_are_refused() -> None:
    h, lo, c = hlc()
    with pytest.raises(ValueError, match="differ in length"):
        ind.atr(h, lo[:-1], c, 14)


@pytest.mark.parametrize("name", sorted(INDICATORS))
@pytest.mark.parametrize("t", [0, 13, 14, 199, 5000, 38319])
def test_no_value_at_or_before_t_changes_when_every_bar_after_t_changes(name: str, t: int) -> None:
    before, after = _perturbed_after(INDICATORS[name], t, seed=t, spread=0.05)
    np.testing.assert_array_equal(after[: t + 1], before[: t + 1])
    if len(before) - t - 1 >= 50:  # a 5 % perturbation of 50+ bars reaches every indicator
        assert not np.array_equal(after[t + 1 :], before[t + 1 :], equal_nan=True)


@pytest.mark.parametrize("name", sorted(INDICATORS))
@settings(max_examples=25, deadline=None)
@given(
    t=st.integers(min_value=0, max_value=2999),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    spread=st.floats(min_value=1e-6, max_value=1.0),
)
def test_causality_holds_for_any_cut_and_any_future(name: str, t: int, seed: int, spread: float) -> None:
    """Exact: nothing at or before t moves. (A tiny perturbation need not move a rank after t.)"""
    before, after = _perturbed_after(INDICATORS[name], t, seed=seed, spread=spread, bars=3000)
    np.testing.assert_array_equal(after[: t + 1], before[: t + 1])


def _perturbed_after(fn, t: int, *, seed: int, spread: float,
                     bars: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The indicator before and after every bar after t is replaced with other (valid) candles."""
    h, lo, c = (a[:bars].copy() for a in hlc())
    before = fn(h, lo, c)
    future = slice(t + 1, None)
    c[future] *= np.exp(np.random.default_rng(seed).normal(0.0, spread, size=len(c) - t - 1))
    h[future] = c[future] * 1.01
    lo[future] = c[future] * 0.99

    return before, fn(h, lo, c)
