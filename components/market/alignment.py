"""Put several symbols, and each perpetual's mark candles, on one shared bar index."""

from __future__ import annotations

from dataclasses import replace
from functools import reduce
from pathlib import Path

import numpy as np

from components.market.parquet_io import read_only
from components.market.quality import GapPolicy
from components.market.timeframes import iso_utc
from core.errors import DataError
from core.market import Bars, DataIssue

PRICE_COLUMNS = ("open", "high", "low", "close")


def shared_index(
    bars_by_symbol: dict[str, Bars], on_gap: GapPolicy
) -> tuple[np.ndarray, list[DataIssue]]:
    """The bar times every symbol has; unequal sequences fail, or are cut with 'misaligned' issues."""
    symbols = list(bars_by_symbol)
    first = bars_by_symbol[symbols[0]].ts
    if all(np.array_equal(first, bars_by_symbol[s].ts) for s in symbols[1:]):
        return first, []
    index = reduce(np.intersect1d, (bars_by_symbol[s].ts for s in symbols))
    if on_gap == "fail":
        union = reduce(np.union1d, (bars_by_symbol[s].ts for s in symbols))
        first_diff = int(union[~np.isin(union, index)][0])
        having = [s for s in symbols if np.isin(first_diff, bars_by_symbol[s].ts)]
        lacking = [s for s in symbols if s not in having]
        raise DataError(
            f"symbols {', '.join(symbols)} have different bar times; first difference at "
            f"{iso_utc(first_diff)}: present in {', '.join(having)}, missing in {', '.join(lacking)} "
            "(load with on_gap='skip' to keep only the bars all share)"
        )
    if index.size == 0:
        raise DataError(f"symbols {', '.join(symbols)} share no bar time at all")
    issues = []
    for symbol in symbols:
        ts = bars_by_symbol[symbol].ts
        dropped = ts[~np.isin(ts, index)]
        held = {s: np.isin(dropped, bars_by_symbol[s].ts) for s in symbols}
        for i, t in enumerate(dropped.tolist()):
            lacking = ", ".join(s for s in symbols if not held[s][i])
            detail = f"bar dropped: {lacking} has no bar at {iso_utc(t)}"
            issues.append(DataIssue(symbol, t, "misaligned", detail))
    return index, issues


def take_rows(bars: Bars, index: np.ndarray) -> Bars:
    """``bars`` restricted to the times of ``index`` (all of which it has)."""
    if np.array_equal(bars.ts, index):
        return bars
    rows = np.searchsorted(bars.ts, index)
    columns = {name: read_only(getattr(bars, name)[rows]) for name in (*PRICE_COLUMNS, "volume")}
    return replace(bars, ts=read_only(bars.ts[rows]), **columns)


def align_mark(
    mark: Bars, bars: Bars, on_gap: GapPolicy, path: Path
) -> tuple[Bars, list[DataIssue]]:
    """Mark candles on ``bars.ts``; a missing mark bar fails or takes the last-price bar."""
    if np.array_equal(mark.ts, bars.ts):
        return mark, []
    rows = np.minimum(np.searchsorted(mark.ts, bars.ts), len(mark.ts) - 1)
    present = mark.ts[rows] == bars.ts
    missing = bars.ts[~present]
    if missing.size and on_gap == "fail":
        raise DataError(
            f"mark candles {path} ({bars.symbol}) lack {missing.size} bar(s) of the shared index; "
            f"first at {iso_utc(int(missing[0]))} (load with on_gap='skip' to use last price there)"
        )
    columns = {}
    for name in PRICE_COLUMNS:
        values = getattr(mark, name)[rows]
        values[~present] = getattr(bars, name)[~present]
        columns[name] = read_only(values)
    volume = np.where(present, mark.volume[rows], 0.0)
    issues = [
        DataIssue(
            bars.symbol, int(t), "mark_fallback",
            f"{path.name}: no mark candle at {iso_utc(int(t))}; last-price candle used",
        )
        for t in missing
    ]
    return replace(mark, ts=bars.ts, volume=read_only(volume), **columns), issues
