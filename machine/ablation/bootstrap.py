"""Paired circular block bootstrap of two equity curves' per-bar returns.

Both curves cover the same bars. A resample draws ``ceil(n / block)`` blocks of ``block``
consecutive bars (start uniform over all bars, wrapping from the last bar to the first, so every
bar is drawn equally often; the last block is cut to make ``n``) and applies the same bars to both
curves, so what the two share (the market) cancels in their difference.
The default block is ``ceil(sqrt(n))`` bars: long enough to keep a trade's run of returns
together (on 1h bars over four years, ~190 bars, eight days), short enough for hundreds of
distinct blocks. The interval is the percentile interval of the resampled differences.

Figures from returns r (one per bar): total return prod(1 + r) - 1; Sharpe mean / sd x
sqrt(bars per year), as ledger/report/metrics.py computes it (0 for a flat curve); max drawdown
the deepest fall of prod(1 + r) from its running peak (the curve starts at 1); trade count the
sum of the trades closed per bar.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

CHUNK = 64  # resamples computed together (memory: CHUNK x n floats per array)
METRICS = ("return", "sharpe", "max_drawdown", "trades")


@dataclass(frozen=True)
class Curve:
    """Per-bar returns of an equity curve and the trades closed in each bar."""

    returns: np.ndarray
    trades: np.ndarray

    def __post_init__(self) -> None:
        if self.returns.shape != self.trades.shape or self.returns.ndim != 1:
            raise ValueError(f"returns {self.returns.shape} and trades {self.trades.shape} must be 1-d and alike")


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval."""

    estimate: float
    low: float
    high: float


@dataclass(frozen=True)
class Bootstrap:
    """How the intervals are drawn."""

    resamples: int = 2000
    level: float = 0.95
    seed: int = 7
    block: int | None = None  # bars; None: ceil(sqrt(n))


def block_length(n: int) -> int:
    return max(1, math.ceil(math.sqrt(n)))


def block_indices(n: int, block: int, resamples: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index rows of circular block resamples of ``range(n)``, ``CHUNK`` rows at a time."""
    block = min(block, n)
    blocks = math.ceil(n / block)
    offsets = np.arange(block)
    done = 0
    while done < resamples:
        rows = min(CHUNK, resamples - done)
        starts = rng.integers(0, n, size=(rows, blocks))
        yield ((starts[:, :, None] + offsets) % n).reshape(rows, blocks * block)[:, :n]
        done += rows


def total_return(r: np.ndarray) -> np.ndarray:
    return np.expm1(np.log1p(r).sum(axis=-1))


def sharpe(r: np.ndarray, per_year: float) -> np.ndarray:
    sd = r.std(axis=-1, ddof=1)
    mean = r.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, mean / np.where(sd > 0, sd, 1.0) * math.sqrt(per_year), 0.0)


def max_drawdown(r: np.ndarray) -> np.ndarray:
    curve = np.exp(np.cumsum(np.log1p(r), axis=-1))
    peak = np.maximum(np.maximum.accumulate(curve, axis=-1), 1.0)
    return np.maximum((1.0 - curve / peak).max(axis=-1), 0.0)


def figures(curve: Curve, per_year: float, rows: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The four figures of ``curve`` (or of each resample whose bars ``rows`` index)."""
    r = curve.returns if rows is None else curve.returns[rows]
    t = curve.trades if rows is None else curve.trades[rows]
    return {"return": total_return(r), "sharpe": sharpe(r, per_year), "max_drawdown": max_drawdown(r),
            "trades": t.sum(axis=-1).astype(np.float64)}


def paired_intervals(full: Curve, other: Curve, per_year: float, how: Bootstrap | None = None) -> dict[str, Interval]:
    """Intervals for ``figure(full) - figure(other)``, for every figure, from the same resampled bars."""
    return paired(full, other, lambda c, rows: figures(c, per_year, rows), how)


def paired(full: Curve, other: Curve, statistic: Callable[[Curve, np.ndarray | None], dict[str, np.ndarray]],
           how: Bootstrap | None = None) -> dict[str, Interval]:
    """Percentile intervals of ``statistic(full) - statistic(other)`` over paired block resamples."""
    n = len(full.returns)
    if len(other.returns) != n:
        raise ValueError(f"paired curves must cover the same bars: {n} and {len(other.returns)}")
    if n < 2:
        raise ValueError("a bootstrap needs at least two returns")
    how = how or Bootstrap()
    rng = np.random.default_rng(how.seed)
    base = statistic(other, None)
    point = {k: float(v) - float(base[k]) for k, v in statistic(full, None).items()}
    draws: dict[str, list[np.ndarray]] = {k: [] for k in point}
    for rows in block_indices(n, how.block or block_length(n), how.resamples, rng):
        a, b = statistic(full, rows), statistic(other, rows)
        for k in draws:
            draws[k].append(a[k] - b[k])
    tail = 100 * (1 - how.level) / 2
    out = {}
    for k, chunks in draws.items():
        low, high = np.percentile(np.concatenate(chunks), [tail, 100 - tail])
        out[k] = Interval(point[k], float(low), float(high))
    return out
