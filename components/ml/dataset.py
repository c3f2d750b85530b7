"""Training samples at a given 'now': resolved labels only, several symbols on one time axis."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from components.ml.features import (
    complete_rows,
    last_closed_index,
    prefix_features,
    windows,
)
from components.ml.labels import LabelRule
from core.market import Bars


@dataclass(frozen=True)
class Samples:
    """Rows (symbol, bar index, open time, label) in time order, over per-symbol features."""

    features: dict[str, np.ndarray]  # symbol -> (bars seen, F), rows 0..now only
    symbols: tuple[str, ...]
    symbol: np.ndarray  # (n,) position in ``symbols``
    index: np.ndarray  # (n,) bar index within that symbol
    ts: np.ndarray  # (n,) bar open time, ms
    labels: np.ndarray  # (n,) 0/1, all resolved
    resolved_ts: np.ndarray  # (n,) open time of the bar whose close resolved the label, ms
    timeframe_ms: int

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows: np.ndarray) -> Samples:
        return dataclasses.replace(
            self,
            symbol=self.symbol[rows],
            index=self.index[rows],
            ts=self.ts[rows],
            labels=self.labels[rows],
            resolved_ts=self.resolved_ts[rows],
        )

    def windows(self, length: int) -> np.ndarray:
        """(n, length, F) input sequences, row order preserved."""
        F = next(iter(self.features.values())).shape[1]
        out = np.empty((len(self), length, F), dtype=np.float32)
        for code, name in enumerate(self.symbols):
            rows = self.symbol == code
            out[rows] = windows(self.features[name], self.index[rows], length)
        return out


def head(bars: Bars, n: int) -> Bars:
    """The first ``n`` bars: what an agent has seen after bar ``n - 1`` closed."""
    return dataclasses.replace(
        bars,
        ts=bars.ts[:n],
        open=bars.open[:n],
        high=bars.high[:n],
        low=bars.low[:n],
        close=bars.close[:n],
        volume=bars.volume[:n],
    )


def resolved_samples(
    bars_by_symbol: Mapping[str, Bars],
    now_ts: int,
    rule: LabelRule,
    window: int,
    lookback_ms: int,
) -> Samples:
    """Every sample row of ``rule`` with a full feature window, open time >= now - lookback, and
    a label resolved by ``now_ts``: a bar label once ``i + horizon`` has closed
    (``features.resolved_until``), a trade label once its trade has left.

    Features and labels are computed from the bars closed by ``now_ts`` only, so nothing later
    can leak in whatever ``bars_by_symbol`` holds.
    """
    if not bars_by_symbol:
        raise ValueError("no symbols given")
    symbols = tuple(sorted(bars_by_symbol))
    timeframes = {bars_by_symbol[s].timeframe_ms for s in symbols}
    if len(timeframes) != 1:
        raise ValueError(f"symbols mix timeframes: {sorted(timeframes)} ms")
    features, parts = {}, []
    for code, name in enumerate(symbols):
        seen = head(bars_by_symbol[name], last_closed_index(bars_by_symbol[name], now_ts) + 1)
        features[name] = prefix_features(bars_by_symbol[name], len(seen.ts))
        ok = complete_rows(features[name], window) & (seen.ts >= now_ts - lookback_ms) & rule.rows(seen)
        labels, resolved_at = rule.resolve(seen, ok)
        idx = np.flatnonzero(ok & (resolved_at >= 0))
        parts.append((np.full(len(idx), code), idx, seen.ts[idx], labels[idx], seen.ts[resolved_at[idx]]))
    symbol, index, ts, labels, resolved_ts = (np.concatenate(col) for col in zip(*parts, strict=True))
    order = np.lexsort((symbol, ts))
    return Samples(
        features=features,
        symbols=symbols,
        symbol=symbol[order].astype(np.int64),
        index=index[order].astype(np.int64),
        ts=ts[order].astype(np.int64),
        labels=labels[order].astype(np.float64),
        resolved_ts=resolved_ts[order].astype(np.int64),
        timeframe_ms=timeframes.pop(),
    )


def chronological_split(samples: Samples, fractions: tuple[float, ...]) -> list[Samples]:
    """Consecutive time slices, the last ones holding ``fractions`` of the distinct open times.

    An earlier slice drops rows whose label was resolved by a bar of the next slice (purge), so
    no slice is scored on outcomes another slice trained on.
    """
    times = np.unique(samples.ts)
    bounds = [len(times)]
    for fraction in reversed(fractions):
        bounds.insert(0, bounds[0] - int(round(len(times) * fraction)))
    bounds.insert(0, 0)
    if any(b1 <= b0 for b0, b1 in zip(bounds, bounds[1:], strict=False)):
        raise ValueError(f"{len(times)} bar times are too few to split into {len(bounds) - 1} slices")
    out = []
    for b0, b1 in zip(bounds, bounds[1:], strict=False):
        rows = (samples.ts >= times[b0]) & (samples.ts <= times[b1 - 1])
        if b1 < len(times):
            rows &= samples.resolved_ts < times[b1]
        out.append(samples.take(np.flatnonzero(rows)))
    return out
