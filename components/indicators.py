"""Causal technical indicators over whole arrays, matching TA-Lib's conventions.

Every output has the input's length; the value at bar i uses inputs at bars <= i only, and
warm-up bars are NaN. Like TA-Lib's Python wrapper, leading NaNs in the input are skipped (so
indicators compose: ``ema(atr(...), 10)``) and the warm-up starts at the first valid bar.

Window statistics (sma, zscore, percentile rank) are computed per window, so a NaN inside
the input spoils only the windows that hold it. The recursive filters (ema, atr, rsi) carry a
NaN met after their start forward for good, as TA-Lib does; bars from the loader hold none.
Recursions run as plain Python loops over floats (a few ms per 40k bars, measured): numpy has
no first-order recurrence, and closed forms lose the bit-for-bit match with TA-Lib.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import reduce
from operator import add

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# TA-Lib's TA_IS_ZERO: RSI is 0 (not 50) when average gain + average loss is inside +/-1e-8.
_TA_ZERO = 1e-8
# Rows per block when a window statistic needs a (rows x window) temporary: ~8 MB per block.
_BLOCK_CELLS = 1 << 20


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average of the last ``n`` values (TA-Lib SMA); first value at index n-1."""
    values = _series(x)
    _check_period("n", n)
    out = _nans(len(values))
    if len(values) >= n:
        out[n - 1 :] = sliding_window_view(values, n).mean(axis=1)
    return out


def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values.

    As TA-Lib EMA: the first value, at index n-1, is the mean of the first n values.
    """
    values = _series(x)
    _check_period("n", n)
    start = _first_valid(values)
    out = _nans(len(values))
    if len(values) - start < n:
        return out
    k = 2.0 / (n + 1)
    tail = values[start:].tolist()
    level = _running_sum(tail[:n]) / n
    smoothed = [level]
    for price in tail[n:]:
        level = (price - level) * k + level
        smoothed.append(level)
    out[start + n - 1 :] = smoothed
    return out


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high - low, |prev close - high|, |prev close - low|) (TA-Lib TRANGE); index 0 is NaN."""
    h, lo, c = _aligned(high, low, close)
    out = _nans(len(h))
    if len(h) > 1:
        prev = c[:-1]
        out[1:] = np.maximum(np.maximum(h[1:] - lo[1:], np.abs(prev - h[1:])), np.abs(prev - lo[1:]))
    return out


def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average true range with Wilder smoothing (TA-Lib ATR).

    First value at index n: the mean of TR[1..n]; then ATR = (ATR_prev * (n-1) + TR) / n.
    """
    _check_period("n", n)
    tr = true_range(high, low, close)
    out = _nans(len(tr))
    start = _first_valid(tr)
    if len(tr) - start < n:
        return out
    if n == 1:  # TA-Lib returns the true range itself
        out[start:] = tr[start:]
        return out
    tail = tr[start:].tolist()
    level = _running_sum(tail[:n]) / n
    out[start + n - 1 :] = [level, *_wilder(tail[n:], level, n)]
    return out


def rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Relative strength index with Wilder smoothing (TA-Lib RSI); first value at index n.

    The seed averages the first n gains and losses. TA-Lib's quirk is kept: when average gain
    plus average loss is below 1e-8 in absolute terms (a flat market, or a coin priced in
    fractions of a cent) RSI is 0.
    """
    values = _series(close)
    _check_period("n", n)
    start = _first_valid(values)
    out = _nans(len(values))
    if len(values) - start <= n:
        return out
    change = np.diff(values[start:])
    gains = np.where(change < 0, 0.0, change).tolist()  # written so a NaN change stays NaN
    losses = np.where(change > 0, 0.0, -change).tolist()
    avg_gain = _running_sum(gains[:n]) / n
    avg_loss = _running_sum(losses[:n]) / n
    up = np.array([avg_gain, *_wilder(gains[n:], avg_gain, n)])
    down = np.array([avg_loss, *_wilder(losses[n:], avg_loss, n)])
    total = up + down
    flat = np.abs(total) < _TA_ZERO
    out[start + n :] = np.where(flat, 0.0, 100.0 * (up / np.where(flat, 1.0, total)))
    return out


def rolling_percentile_rank(x: np.ndarray, window: int) -> np.ndarray:
    """Fraction of the previous ``window`` values (bars i-window .. i-1) that are <= x[i].

    In [0, 1]; NaN for the first ``window`` bars and wherever x[i] or its window holds a NaN.
    """
    values = _series(x)
    _check_period("window", window)
    out = _nans(len(values))
    if len(values) <= window:
        return out
    history = sliding_window_view(values, window)[:-1]
    current = values[window:]

    def rank(rows: slice) -> np.ndarray:
        at_or_below = np.count_nonzero(history[rows] <= current[rows, None], axis=1)
        return at_or_below / window

    out[window:] = _by_blocks(len(current), window, rank)
    nans = np.concatenate(([0], np.cumsum(np.isnan(values))))
    spoiled = np.isnan(current) | (nans[window:-1] > nans[: -window - 1])
    out[window:][spoiled] = np.nan
    return out


def zscore(x: np.ndarray, window: int) -> np.ndarray:
    """(x - mean) / std over the last ``window`` values including x[i] (population std).

    NaN during warm-up and where the window is flat (std 0).
    """
    values = _series(x)
    _check_period("window", window)
    out = _nans(len(values))
    if len(values) < window:
        return out
    windows = sliding_window_view(values, window)

    def score(rows: slice) -> np.ndarray:
        block = windows[rows]
        mean = block.mean(axis=1)
        std = np.sqrt(((block - mean[:, None]) ** 2).mean(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(std > 0, (block[:, -1] - mean) / std, np.nan)

    out[window - 1 :] = _by_blocks(len(windows), window, score)
    return out


def log_returns(close: np.ndarray, k: int = 1) -> np.ndarray:
    """log(close[i] / close[i-k]); the first k bars are NaN."""
    values = _series(close)
    _check_period("k", k)
    out = _nans(len(values))
    if len(values) > k:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[k:] = np.log(values[k:] / values[:-k])
    return out


def _wilder(inputs: list[float], level: float, n: int) -> list[float]:
    """Wilder's smoothing from ``level``: level = (level * (n-1) + input) / n, TA-Lib's op order."""
    carry = n - 1
    out = []
    for value in inputs:
        level = (level * carry + value) / n
        out.append(level)
    return out


def _running_sum(values: list[float]) -> float:
    """Left-to-right sum, as TA-Lib seeds its averages (``sum`` compensates from Python 3.12)."""
    return reduce(add, values, 0.0)


def _by_blocks(rows: int, window: int, fn: Callable[[slice], np.ndarray]) -> np.ndarray:
    step = max(1, _BLOCK_CELLS // window)
    return np.concatenate([fn(slice(i, min(i + step, rows))) for i in range(0, rows, step)])


def _series(x: np.ndarray) -> np.ndarray:
    values = np.asarray(x, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"indicator input must be 1-D, got shape {values.shape}")
    return values


def _aligned(*columns: np.ndarray) -> list[np.ndarray]:
    arrays = [_series(c) for c in columns]
    lengths = {len(a) for a in arrays}
    if len(lengths) != 1:
        raise ValueError(f"high, low and close differ in length: {[len(a) for a in arrays]}")
    return arrays


def _check_period(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _first_valid(values: np.ndarray) -> int:
    """Index of the first non-NaN value (len when all are NaN), as TA-Lib's wrapper skips them."""
    valid = np.flatnonzero(~np.isnan(values))
    return int(valid[0]) if valid.size else len(values)


def _nans(length: int) -> np.ndarray:
    return np.full(length, np.nan)
