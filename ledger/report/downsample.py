"""Fewer points for a long series without losing what the eye looks for.

The marks are cut into equal-count buckets; each bucket keeps its first and last point and the
points of its lowest and highest value (min-max decimation, as in M4). A drawdown's worst point and
an equity curve's peaks therefore survive exactly; only points between extremes are dropped.
"""

from __future__ import annotations

import numpy as np

BUCKETS = 1500


def extreme_indices(values: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Sorted indices of each bucket's first, last, lowest and highest point (all, when short)."""
    n = len(values)
    if n <= 4 * buckets:
        return np.arange(n)
    edges = np.linspace(0, n, buckets + 1).astype(np.int64)
    keep = [edges[:-1], edges[1:] - 1]
    lows = np.empty(buckets, dtype=np.int64)
    highs = np.empty(buckets, dtype=np.int64)
    for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        chunk = values[lo:hi]
        lows[i] = lo + int(np.argmin(chunk))
        highs[i] = lo + int(np.argmax(chunk))
    keep += [lows, highs]
    return np.unique(np.concatenate(keep))


def decimate(*series: np.ndarray, buckets: int = BUCKETS) -> np.ndarray:
    """Indices that keep the extremes of every given series (their union, sorted)."""
    return np.unique(np.concatenate([extreme_indices(np.asarray(s, dtype=float), buckets) for s in series]))
