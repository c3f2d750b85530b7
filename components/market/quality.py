"""Checks on a candle series: order, duplicates, gaps and price sanity.

Each check either raises DataError (naming the file, the symbol and the first offending
time in ISO UTC) or, where the policy is ``skip``, returns the repair and its DataIssues.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from components.market.timeframes import iso_utc
from core.errors import DataError
from core.market import DataIssue

GapPolicy = Literal["fail", "skip"]
GAP_POLICIES: tuple[GapPolicy, ...] = ("fail", "skip")


def check_policy(on_gap: str) -> None:
    if on_gap not in GAP_POLICIES:
        raise DataError(f"unknown on_gap policy {on_gap!r}: expected 'fail' or 'skip'")


def check_sorted(path: Path, symbol: str, ts: np.ndarray) -> None:
    """Rows must be in time order; an unsorted file is corrupt, whatever the policy."""
    backwards = np.flatnonzero(np.diff(ts) < 0)
    if backwards.size:
        i = int(backwards[0])
        raise DataError(
            f"{path} ({symbol}) is not sorted by ts: {iso_utc(ts[i + 1])} follows {iso_utc(ts[i])}"
        )


def window(ts: np.ndarray, start_ms: int | None, end_ms: int | None) -> slice:
    """Rows with ``start_ms <= ts < end_ms`` of a sorted ``ts`` (either bound optional)."""
    lo = 0 if start_ms is None else int(np.searchsorted(ts, start_ms, side="left"))
    hi = len(ts) if end_ms is None else int(np.searchsorted(ts, end_ms, side="left"))
    return slice(lo, max(lo, hi))


def duplicate_rows(
    path: Path, symbol: str, ts: np.ndarray, on_gap: GapPolicy
) -> tuple[np.ndarray | None, list[DataIssue]]:
    """Mask keeping the first row of each repeated ts (``None`` when there is none)."""
    repeated = np.flatnonzero(np.diff(ts) == 0) + 1
    if repeated.size == 0:
        return None, []
    if on_gap == "fail":
        raise DataError(
            f"{path} ({symbol}) has {repeated.size} duplicate row(s); "
            f"first duplicate ts {iso_utc(ts[repeated[0]])}"
        )
    keep = np.ones(len(ts), dtype=bool)
    keep[repeated] = False
    issues = [
        DataIssue(symbol, int(ts[i]), "duplicate", f"{path.name}: repeated row dropped, first kept")
        for i in repeated
    ]
    return keep, issues


def check_grid(path: Path, symbol: str, ts: np.ndarray, timeframe: str, step: int) -> None:
    """Every open time must sit on the timeframe's grid, counted from the first bar."""
    off = np.flatnonzero((ts - ts[0]) % step)
    if off.size:
        raise DataError(
            f"{path} ({symbol}) has a bar at {iso_utc(ts[off[0]])} off the {timeframe} grid "
            f"that starts at {iso_utc(ts[0])}"
        )


def gaps(
    path: Path, symbol: str, ts: np.ndarray, timeframe: str, step: int, on_gap: GapPolicy
) -> list[DataIssue]:
    """One DataIssue per hole (first missing open time, count); the hole stays unfilled."""
    holes = np.flatnonzero(np.diff(ts) > step)
    if holes.size == 0:
        return []
    issues = []
    for i in holes:
        first, last = int(ts[i]) + step, int(ts[i + 1]) - step
        count = (last - first) // step + 1
        span = iso_utc(first) if count == 1 else f"{iso_utc(first)} to {iso_utc(last)}"
        what = f"{count} missing {timeframe} candle(s): {span}"
        issues.append(DataIssue(symbol, first, "gap", f"{path.name}: {what}"))
    if on_gap == "fail":
        raise DataError(
            f"{path} ({symbol}) has {len(issues)} gap(s) in its {timeframe} candles; first: "
            f"{issues[0].detail.split(': ', 1)[1]} (load with on_gap='skip' to keep the holes)"
        )
    return issues


def check_prices(path: Path, symbol: str, cols: dict[str, np.ndarray]) -> None:
    """Prices finite and positive, volume finite and >= 0, open/close within [low, high]."""
    ts, o, h, lo, c, v = (cols[k] for k in ("ts", "open", "high", "low", "close", "volume"))
    rules = (
        ("NaN or infinite price", ~np.isfinite(o + h + lo + c)),
        ("non-positive price", (o <= 0) | (h <= 0) | (lo <= 0) | (c <= 0)),
        ("high below low", h < lo),
        ("open or close outside [low, high]", (np.maximum(o, c) > h) | (np.minimum(o, c) < lo)),
        ("NaN, infinite or negative volume", ~(np.isfinite(v) & (v >= 0))),
    )
    for what, bad in rules:
        rows = np.flatnonzero(bad)
        if rows.size:
            i = int(rows[0])
            raise DataError(
                f"{path} ({symbol}) has {rows.size} candle(s) with {what}; first at "
                f"{iso_utc(ts[i])}: open={o[i]} high={h[i]} low={lo[i]} close={c[i]} volume={v[i]}"
            )
