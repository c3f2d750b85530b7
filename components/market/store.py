"""Write market series in the loader's layout, atomically, and only once the loader accepts them.

A write goes to a hidden temp file beside the target, is fsynced, checked by the loader itself
(``load_bars``/``load_funding``: order, duplicates, grid, gaps per ``on_gap``, prices), and only
then renamed over the target. A process killed at any moment leaves the previous file or the new
one, never a torn one; a leftover temp file is invisible to the catalog and removed next time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.market.catalog import EXCHANGE, catalog, symbol_to_pair
from components.market.loader import CANDLE_COLUMNS, FUNDING_COLUMNS, load_bars, load_funding
from components.market.quality import GapPolicy
from core.errors import DataError
from core.market import Bars, DataIssue, FundingRates

SeriesKind = Literal["candles", "mark", "funding"]
_TEMP_MARK = ".tmp-"


def series_path(root: Path, kind: str, symbol: str, series: SeriesKind, timeframe: str) -> Path:
    """Where the catalog looks for a series: ``binance_futures_BTC-USDT-USDT_mark_1h.parquet``.

    For funding, ``timeframe`` is the settlement interval; an existing funding file of the
    symbol keeps its name whatever its interval (the catalog accepts one per symbol).
    """
    if series == "funding" and root.is_dir():
        existing = [f for f in catalog(root).files() if f.series == "funding" and f.symbol == symbol]
        if existing:
            return catalog(root).funding(symbol)  # the one file, or DataError naming several
    prefix = "" if series == "candles" else f"{series}_"
    return root / f"{EXCHANGE}_{kind}_{symbol_to_pair(kind, symbol)}_{prefix}{timeframe}.parquet"


def read_candles(path: Path, symbol: str, timeframe: str, on_gap: GapPolicy) -> Bars | None:
    """The stored candles, checked as the loader checks them; None when there is no file yet."""
    if not path.exists():
        return None
    return load_bars(path, symbol, timeframe, on_gap=on_gap)[0]


def read_funding(path: Path, symbol: str) -> FundingRates | None:
    if not path.exists():
        return None
    return load_funding(path, symbol)


def write_candles(path: Path, symbol: str, timeframe: str, columns: dict[str, np.ndarray], *,
                  on_gap: GapPolicy, source: dict) -> list[DataIssue]:
    """Replace ``path`` with these candles if the loader accepts them; returns its DataIssues."""
    table = pa.table({"ts": pa.array(columns["ts"], pa.int64()),
                      **{name: pa.array(columns[name], pa.float64()) for name in CANDLE_COLUMNS[1:]}})
    return _replace(path, table, source, lambda tmp: load_bars(tmp, symbol, timeframe, on_gap=on_gap)[1])


def write_funding(path: Path, symbol: str, ts: np.ndarray, rate: np.ndarray, *, source: dict) -> None:
    """Replace ``path`` with these settlements if the loader accepts them."""
    table = pa.table({FUNDING_COLUMNS[0]: pa.array(ts, pa.int64()), FUNDING_COLUMNS[1]: pa.array(rate, pa.float64())})

    def check(tmp: Path) -> list[DataIssue]:
        load_funding(tmp, symbol)
        return []

    _replace(path, table, source, check)


def remove_leftovers(path: Path) -> None:
    """Delete temp files a killed writer left beside ``path``."""
    for leftover in path.parent.glob(f".{path.name}{_TEMP_MARK}*"):
        leftover.unlink(missing_ok=True)


def _replace(path: Path, table: pa.Table, source: dict, check: Callable[[Path], list[DataIssue]]) -> list[DataIssue]:
    tmp = path.with_name(f".{path.name}{_TEMP_MARK}{os.getpid()}")
    table = table.replace_schema_metadata({"source": json.dumps(source, sort_keys=True)})
    try:
        with open(tmp, "wb") as sink:
            pq.write_table(table, sink, compression="zstd")
            sink.flush()
            os.fsync(sink.fileno())
        try:
            found = check(tmp)
        except DataError as exc:  # name the file the user has, not our temp file
            raise DataError(str(exc).replace(tmp.name, path.name)) from None
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return [DataIssue(i.symbol, i.ts, i.kind, i.detail.replace(tmp.name, path.name)) for i in found]


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
