"""Load validated candles and funding rates from parquet, and whole markets on one bar index.

Windows are half-open: ``start_ms <= ts < end_ms`` on candle open times (either bound optional).
Returned arrays are read-only: many components share them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np

from components.market import quality
from components.market.alignment import align_mark, shared_index, take_rows
from components.market.catalog import Catalog, catalog
from components.market.parquet_io import read_columns, read_only
from components.market.quality import GapPolicy
from components.market.timeframes import iso_utc, timeframe_ms
from core.errors import DataError
from core.market import (
    Bars,
    DataIssue,
    FundingRates,
    MarketData,
    MarketKind,
    SymbolData,
)

__all__ = ["load_bars", "load_funding", "load_market", "timeframe_ms"]

CANDLE_COLUMNS = ("ts", "open", "high", "low", "close", "volume")
FUNDING_COLUMNS = ("ts", "rate")


def load_bars(
    path: str | Path,
    symbol: str,
    timeframe: str,
    *,
    on_gap: GapPolicy,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> tuple[Bars, list[DataIssue]]:
    """Candles of one file, checked; duplicates and gaps fail or are skipped per ``on_gap``.

    ``skip`` keeps the first of repeated rows and leaves holes unfilled; each is a DataIssue.
    Unsorted rows, off-grid times and bad prices always raise DataError.
    """
    quality.check_policy(on_gap)
    path = Path(path)
    step = timeframe_ms(timeframe)
    cols = read_columns(path, symbol, CANDLE_COLUMNS)
    quality.check_sorted(path, symbol, cols["ts"])
    held = _span(cols["ts"], step)
    rows = quality.window(cols["ts"], start_ms, end_ms)
    cols = {name: values[rows] for name, values in cols.items()}
    if len(cols["ts"]) == 0:
        raise _EmptyWindow(
            f"{path} ({symbol}) has no {timeframe} candles in {_describe_window(start_ms, end_ms)}; "
            f"it holds {held}"
        )
    keep, issues = quality.duplicate_rows(path, symbol, cols["ts"], on_gap)
    if keep is not None:
        cols = {name: values[keep] for name, values in cols.items()}
    quality.check_grid(path, symbol, cols["ts"], timeframe, step)
    issues += quality.gaps(path, symbol, cols["ts"], timeframe, step, on_gap)
    quality.check_prices(path, symbol, cols)
    bars = Bars(symbol, timeframe, step, **{name: read_only(cols[name]) for name in CANDLE_COLUMNS})
    return bars, issues


def load_funding(
    path: str | Path, symbol: str, *, start_ms: int | None = None, end_ms: int | None = None
) -> FundingRates:
    """Funding settlements of one perpetual: sorted, unique times and finite rates, or DataError."""
    path = Path(path)
    cols = read_columns(path, symbol, FUNDING_COLUMNS)
    ts, rate = cols["ts"], cols["rate"]
    quality.check_sorted(path, symbol, ts)
    repeated = np.flatnonzero(np.diff(ts) == 0)
    if repeated.size:
        raise DataError(
            f"{path} ({symbol}) repeats funding settlement {iso_utc(ts[repeated[0]])}"
        )
    bad = np.flatnonzero(~np.isfinite(rate))
    if bad.size:
        raise DataError(f"{path} ({symbol}) has a non-finite funding rate at {iso_utc(ts[bad[0]])}")
    rows = quality.window(ts, start_ms, end_ms)
    return FundingRates(symbol, read_only(ts[rows]), read_only(rate[rows]))


def load_market(
    kind: str,
    symbols: Sequence[str],
    timeframe: str,
    *,
    on_gap: GapPolicy,
    start_ms: int | None = None,
    end_ms: int | None = None,
    data_dir: str | Path | None = None,
) -> MarketData:
    """Every symbol (plus mark candles and funding for futures) on one shared bar index.

    Symbols whose bar times differ fail (``on_gap='fail'``) or are cut to the times all share
    (``skip``, one 'misaligned' DataIssue per dropped bar). Mark bars missing from the index
    fail, or fall back to the last-price bar ('mark_fallback' DataIssue). Funding keeps the
    settlements inside ``[first open, last open + timeframe)``.
    """
    quality.check_policy(on_gap)
    step = timeframe_ms(timeframe)
    symbols = list(symbols)
    if not symbols:
        raise DataError(f"no symbols given for the {kind} {timeframe} market")
    if len(set(symbols)) != len(symbols):
        raise DataError(f"symbols repeat in the {kind} {timeframe} market: {', '.join(symbols)}")
    source = catalog(data_dir)

    def load(path: Path, symbol: str) -> tuple[Bars, list[DataIssue]]:
        return load_bars(path, symbol, timeframe, on_gap=on_gap, start_ms=start_ms, end_ms=end_ms)

    issues: list[DataIssue] = []
    loaded: dict[str, Bars] = {}
    for symbol in symbols:
        try:
            loaded[symbol], found = load(source.candles(kind, symbol, timeframe), symbol)
        except _EmptyWindow:
            spans = ", ".join(f"{s} {_span(_open_times(source, kind, s, timeframe), step)}" for s in symbols)
            raise DataError(
                f"no {kind} {timeframe} candles for {symbol} in {_describe_window(start_ms, end_ms)}; "
                f"the data holds {spans}"
            ) from None
        issues += found
    index, dropped = shared_index(loaded, on_gap)
    issues += dropped
    data: dict[str, SymbolData] = {}
    for symbol, bars in loaded.items():
        bars = take_rows(bars, index)
        if kind != "futures":
            data[symbol] = SymbolData(bars)
            continue
        mark_path = source.mark(symbol, timeframe)
        mark, found = load(mark_path, symbol)
        issues += found
        mark, fallbacks = align_mark(mark, bars, on_gap, mark_path)
        issues += fallbacks
        funding = load_funding(
            source.funding(symbol), symbol, start_ms=int(index[0]),
            end_ms=int(index[-1]) + bars.timeframe_ms,
        )
        data[symbol] = SymbolData(bars, mark, funding)
    market_kind = cast(MarketKind, kind)  # the catalog has checked it
    return MarketData(market_kind, timeframe, timeframe_ms(timeframe), read_only(index), data, tuple(issues))


class _EmptyWindow(DataError):
    """No candle of a file opens inside the requested window."""


def _open_times(source: Catalog, kind: str, symbol: str, timeframe: str) -> np.ndarray:
    return read_columns(source.candles(kind, symbol, timeframe), symbol, ("ts",))["ts"]


def _span(ts: np.ndarray, step: int) -> str:
    """The window a file's candles cover, as ``[first open, last open + timeframe)``, like market.start/end."""
    if len(ts) == 0:
        return "no candles"
    return f"[{iso_utc(int(ts[0]))}, {iso_utc(int(ts[-1]) + step)})"


def _describe_window(start_ms: int | None, end_ms: int | None) -> str:
    start = "the beginning" if start_ms is None else iso_utc(start_ms)
    end = "the end" if end_ms is None else iso_utc(end_ms)
    return f"the window [{start}, {end})"
