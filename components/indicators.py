"""Causal technical indicators over whole arrays, matching TA-Lib's conventions.

Every output has the input's length; the value at bar i uses inputs at bars <= i only, and
warm-up bars are NaN. Like TA-Lib's Python wrapper, leading NaNs in the input are skipped (so
indicators compose: ``ema(atr(...), 10)``) and the warm-up starts at the first valid bar.

What "matching TA-Lib" means, exactly: on NaN-free input, sma, true_range and rsi equal the
TA-Lib 0.8 wheel's output (the dev dependency, C library 0.8.1) bit for bit: its RSI multiplies
by a precomputed 1/n instead of dividing, and so does ours. ema and atr follow TA-Lib's order of
operations (EMA = (price - EMA_prev) * alpha + EMA_prev; ATR = ATR_prev * a + TR * (1 - a) with
a = (n-1)/n), each step rounded as plain double arithmetic rounds it, which is TA-Lib's portable
build. On CPUs with FMA (x86-64 FMA3) TA-Lib picks a build at run time whose steps are fused
multiply-adds, rounded once: there ema and atr differ from TA-Lib's by at most 2e-15 relative over
the bundled data (tests/components/test_indicators.py holds that bound). Plain steps keep the
recursions fast (about 3 ms for 38k bars): they run as plain Python loops, numpy having no
first-order recurrence.

A NaN inside the input: sma restarts its running total after the NaN leaves the window, so the
NaN spoils only the windows that hold it (TA-Lib's stays NaN for good); zscore and percentile
rank are computed per window. The recursive filters (ema, atr, rsi) carry the NaN forward for
good (TA-Lib 0.8's RSI writes 0 there instead, which would read as "oversold"). Bars from the
loader hold none.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections import OrderedDict
from collections.abc import Callable
from functools import reduce
from operator import add
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# Rows per block when a window statistic needs a (rows x window) temporary: ~8 MB per block.
_BLOCK_CELLS = 1 << 20


_REMEMBERED: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_REMEMBER_AT_MOST = 64


def remembered(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """Compute an indicator once per input: several components ask for the same EMA or ATR of the
    same bars, and a study's trials ask again. Keyed by the inputs' bytes, so a changed bar is a new
    key; the result is shared, so it is read-only."""

    @functools.wraps(fn)
    def recall(*args: Any) -> np.ndarray:
        key = (fn.__name__, *(_digest(a) if isinstance(a, np.ndarray) else a for a in args))
        found = _REMEMBERED.get(key)
        if found is None:
            found = fn(*args)
            found.flags.writeable = False
            _REMEMBERED[key] = found
            if len(_REMEMBERED) > _REMEMBER_AT_MOST:
                _REMEMBERED.popitem(last=False)
        else:
            _REMEMBERED.move_to_end(key)
        return found

    return recall


def _digest(values: np.ndarray) -> tuple[str, int]:
    array = np.ascontiguousarray(values, dtype=np.float64)
    return hashlib.blake2b(array.tobytes(), digest_size=16).hexdigest(), len(array)


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average of the last ``n`` values (TA-Lib SMA); first value at index n-1.

    As TA-Lib: a running total, adding the newest value before dividing by n and dropping the
    oldest after. After a NaN the total restarts from the next n valid values.
    """
    values = _series(x)
    _check_period("n", n)
    out = _nans(len(values))
    prices = values.tolist()
    total, run = 0.0, 0  # run: valid values since the last NaN
    for i, price in enumerate(prices):
        if math.isnan(price):
            total, run = 0.0, 0
            continue
        total += price
        run += 1
        if run >= n:
            out[i] = total / n
            total -= prices[i - n + 1]
    return out


@remembered
def ema(x: np.ndarray, n: int) -> np.ndarray:
    """Exponential moving average, alpha = 2/(n+1), seeded with the SMA of the first n values.

    As TA-Lib EMA: the first value, at index n-1, is the mean of the first n values; then
    EMA = (price - EMA_prev) * alpha + EMA_prev.
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
    append = smoothed.append
    for price in tail[n:]:
        level = (price - level) * k + level
        append(level)
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


@remembered
def atr(high: np.ndarray, low: np.ndarray, close: np.ndarray, n: int) -> np.ndarray:
    """Average true range with Wilder smoothing (TA-Lib ATR).

    First value at index n: the mean of TR[1..n]; then ATR = ATR_prev * a + TR * (1 - a) with
    a = (n-1)/n, as TA-Lib's portable build rounds it (see the module docstring).
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
    keep = (n - 1) / n
    take = 1.0 - keep
    smoothed = [level]
    append = smoothed.append
    for value in tail[n:]:
        level = level * keep + value * take
        append(level)
    out[start + n - 1 :] = smoothed
    return out


@remembered
def rsi(close: np.ndarray, n: int) -> np.ndarray:
    """Relative strength index with Wilder smoothing (TA-Lib RSI); first value at index n.

    The seed averages the first n gains and losses; then avg = (avg * (n-1) + move) * (1/n),
    TA-Lib 0.8's order of operations. RSI = 100 * gain / (gain + loss), and 0 where both are 0
    (a flat market), as TA-Lib 0.8 (older TA-Lib also gave 0 below 1e-8, i.e. for any coin
    priced in fractions of a cent).
    """
    values = _series(close)
    _check_period("n", n)
    start = _first_valid(values)
    out = _nans(len(values))
    if len(values) - start <= n:
        return out
    changes = np.diff(values[start:]).tolist()
    inverse, carry = 1.0 / n, float(n - 1)
    avg_gain = avg_loss = 0.0
    for change in changes[:n]:
        gain = change if change > 0.0 else 0.0
        avg_gain += gain
        avg_loss += gain - change  # the fall as a positive number; NaN stays NaN
    avg_gain *= inverse
    avg_loss *= inverse
    strengths = [_strength(avg_gain, avg_loss)]
    for change in changes[n:]:
        gain = change if change > 0.0 else 0.0
        avg_gain = (avg_gain * carry + gain) * inverse
        avg_loss = ((gain - change) + avg_loss * carry) * inverse
        strengths.append(_strength(avg_gain, avg_loss))
    out[start + n :] = strengths
    return out


def _strength(avg_gain: float, avg_loss: float) -> float:
    total = avg_loss + avg_gain
    if total > 0.0:
        return 100.0 * (avg_gain / total)
    return 0.0 if total == 0.0 else math.nan


@remembered
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
