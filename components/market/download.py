"""Download Binance candles, mark-price candles and funding rates into a folder the loader reads.

For each symbol of the request: last-trade candles, and for perpetuals mark-price candles and
funding settlements, each in its own parquet file named as the catalog expects. A stored file
stays one contiguous stretch: a later call fetches what is missing after its last bar (and before
its first, if the request starts earlier), so repeating a command only tops files up.

Only closed candles are stored, judged by the exchange's clock (``server_time``), never the local
one. Pages stay within Binance's limits; progress is written every ``checkpoint_s`` seconds
through ``store`` (temp file, fsync, loader check, atomic rename), so a killed download keeps
what it had stored and resumes after it.
"""

from __future__ import annotations

import contextlib
import difflib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.exchange.ccxt_client import FUNDING_LIMIT, KLINE_LIMIT, BinanceClient
from components.market import store
from components.market.catalog import BUNDLED_DATA_DIR, symbol_to_pair
from components.market.loader import CANDLE_COLUMNS
from components.market.progress import Progress
from components.market.quality import GapPolicy, check_policy
from components.market.store import SeriesKind
from components.market.timeframes import iso_utc, timeframe_ms
from core.errors import ConfigError, DataError
from core.market import DataIssue, MarketKind

HOUR_MS = 3_600_000
_ENDPOINTS = {("spot", "candles"): "/api/v3/klines", ("futures", "candles"): "/fapi/v1/klines",
              ("futures", "mark"): "/fapi/v1/markPriceKlines", ("futures", "funding"): "/fapi/v1/fundingRate"}


class DownloadOptions(BaseModel):
    """The optional ``download`` section of the config (``++download.checkpoint_s=0``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    checkpoint_s: float = Field(default=10.0, ge=0)  # store progress at least this often; 0 = after every page


@dataclass(frozen=True)
class DownloadRequest:
    """What to fetch: the market config's kind, symbols, timeframe, window and folder."""

    kind: MarketKind
    symbols: tuple[str, ...]
    timeframe: str
    start_ms: int | None  # inclusive open time; None = continue after what is stored
    end_ms: int | None  # exclusive open time; None = up to the last closed bar
    on_gap: GapPolicy
    data_dir: Path
    checkpoint_s: float = 10.0


@dataclass(frozen=True)
class SeriesReport:
    """What one series file gained."""

    symbol: str
    series: SeriesKind
    path: Path
    added: int
    rows: int
    first_ts: int | None
    last_ts: int | None
    issues: tuple[DataIssue, ...] = ()

    def describe(self) -> str:
        span = "empty" if self.first_ts is None else f"{iso_utc(self.first_ts)} .. {iso_utc(self.last_ts or 0)}"
        return f"{self.symbol} {self.series}: +{self.added} rows, {self.rows} stored ({span}) -> {self.path}"


def check_request(request: DownloadRequest) -> None:
    """Refuse a request that cannot succeed before anything is asked or written (one-line errors)."""
    check_policy(request.on_gap)
    timeframe_ms(request.timeframe)
    for symbol in request.symbols:
        symbol_to_pair(request.kind, symbol)
    if not request.symbols:
        raise ConfigError("market.symbols is empty: name at least one symbol to download")
    start, end = request.start_ms, request.end_ms
    if start is not None and end is not None and start >= end:
        raise ConfigError(f"market.start {iso_utc(start)} is not before market.end {iso_utc(end)}")
    folder = request.data_dir
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"market.data_dir {folder} is a file, not a folder")
    if folder.resolve() == BUNDLED_DATA_DIR.resolve():
        raise ConfigError(f"market.data_dir {folder} is the bundled data folder; download into a folder of your own")


def download(request: DownloadRequest, client: BinanceClient, *, progress: Progress | None = None,
             monotonic: Callable[[], float] = time.monotonic) -> list[SeriesReport]:
    """Fetch every series of the request that is not stored yet; returns one report per file."""
    check_request(request)
    _check_listed(request, client.markets(), client.venue)
    if request.timeframe not in client.timeframes or request.timeframe.endswith("M"):
        served = ", ".join(tf for tf in client.timeframes if not tf.endswith("M"))
        raise ConfigError(
            f"market.timeframe {request.timeframe!r} is not served by {client.venue}; choose one of {served}"
        )
    now = client.server_time()
    request.data_dir.mkdir(parents=True, exist_ok=True)
    job = _Job(request, client, now, progress or Progress.silent(), monotonic)
    reports = []
    for symbol in request.symbols:
        reports.append(job.candles(symbol, "candles"))
        if request.kind == "futures":
            reports.append(job.candles(symbol, "mark"))
            reports.append(job.funding(symbol))
    return reports


def _check_listed(request: DownloadRequest, markets: dict[str, Any], venue: str) -> None:
    for symbol in request.symbols:
        if symbol not in markets:
            near = difflib.get_close_matches(symbol, list(markets), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise ConfigError(f"market.symbols: {symbol!r} is not listed on {venue}{hint}")


@dataclass
class _Stored:
    """The rows of one series file, as columns."""

    columns: dict[str, np.ndarray]

    @property
    def ts(self) -> np.ndarray:
        return self.columns["ts"]

    def joined(self, rows: list[list[float]], names: tuple[str, ...], *, before: bool = False) -> _Stored:
        new = _columns(rows, names)
        parts = (new, self.columns) if before else (self.columns, new)
        return _Stored({name: np.concatenate([p[name] for p in parts]) for name in names})


def _columns(rows: list[list[float]], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {"ts": np.array([int(r[0]) for r in rows], dtype=np.int64)}
    for i, name in enumerate(names[1:], start=1):
        out[name] = np.array([np.nan if r[i] is None else float(r[i]) for r in rows], dtype=np.float64)
    return out


@dataclass(frozen=True)
class _Series:
    """One file to top up, and how to fetch and store its rows."""

    symbol: str
    kind: SeriesKind
    path: Path
    names: tuple[str, ...]  # columns, ts first
    step: int  # from the last stored row to the first one asked for
    spacing: int  # usual distance between rows, for the progress estimate
    limit: int  # rows per request
    keep: Callable[[int], bool]  # inside the window and settled by the exchange's now
    fetch: Callable[[int, int], list[list[float]]]  # (since, until) -> rows, oldest first
    write: Callable[[_Stored], list[DataIssue]]  # replace the file with these rows


@dataclass
class _Job:
    request: DownloadRequest
    client: BinanceClient
    now: int  # the exchange's clock when the download began: the horizon of closed bars
    progress: Progress
    monotonic: Callable[[], float]

    def candles(self, symbol: str, kind: SeriesKind) -> SeriesReport:
        """Last-trade (``candles``) or mark-price (``mark``) candles of one symbol."""
        r = self.request
        step = timeframe_ms(r.timeframe)
        path = store.series_path(r.data_dir, r.kind, symbol, kind, r.timeframe)
        store.remove_leftovers(path)
        bars = store.read_candles(path, symbol, r.timeframe, r.on_gap)
        stored = None if bars is None else _Stored({n: np.asarray(getattr(bars, n)) for n in CANDLE_COLUMNS})
        price = "last" if kind == "candles" else "mark"

        def fetch(since: int, until: int) -> list[list[float]]:
            return self.client.candles(symbol, r.timeframe, since, until=until, price=price)

        def write(rows: _Stored) -> list[DataIssue]:
            return store.write_candles(path, symbol, r.timeframe, rows.columns, on_gap=r.on_gap,
                                       source=self._source(symbol, kind))

        series = _Series(symbol, kind, path, CANDLE_COLUMNS, step, step, KLINE_LIMIT,
                         self._keep(lambda ts: ts + step <= self.now), fetch, write)
        return self._top_up(series, stored, f"{symbol} {r.timeframe} {kind}")

    def funding(self, symbol: str) -> SeriesReport:
        """Funding settlements of one perpetual; a new file is named after the interval they show."""
        r = self.request
        path = [store.series_path(r.data_dir, r.kind, symbol, "funding", "8h")]
        store.remove_leftovers(path[0])
        rates = store.read_funding(path[0], symbol)
        stored = None if rates is None else _Stored({"ts": np.asarray(rates.ts), "rate": np.asarray(rates.rate)})

        def fetch(since: int, until: int) -> list[list[float]]:
            # Binance stamps some settlements a few ms late; the settlement is on the whole second
            return [[ts - ts % 1000, rate] for ts, rate in self.client.funding_history(symbol, since, until=until)]

        def write(rows: _Stored) -> list[DataIssue]:
            if not path[0].exists():
                path[0] = store.series_path(r.data_dir, r.kind, symbol, "funding", _interval(rows.ts))
            store.write_funding(path[0], symbol, rows.ts, rows.columns["rate"], source=self._source(symbol, "funding"))
            return []

        series = _Series(symbol, "funding", path[0], ("ts", "rate"), 1, 8 * HOUR_MS, FUNDING_LIMIT,
                         self._keep(lambda ts: ts <= self.now), fetch, write)
        report = self._top_up(series, stored, f"{symbol} funding")
        return replace(report, path=path[0])

    def _keep(self, settled: Callable[[int], bool]) -> Callable[[int], bool]:
        end = self.request.end_ms
        return lambda ts: (end is None or ts < end) and settled(ts)

    def _top_up(self, series: _Series, stored: _Stored | None, label: str) -> SeriesReport:
        """Fetch what the file lacks before its first row and after its last, storing as it goes."""
        start = self.request.start_ms
        until = self.now if self.request.end_ms is None else min(self.request.end_ms - 1, self.now)
        if stored is None and start is None:
            raise ConfigError(f"market.start is required: {series.path} does not exist yet, so nothing to continue")
        old = None if stored is None else (int(stored.ts[0]), int(stored.ts[-1]))
        issues: list[DataIssue] = []
        added = 0
        if old is not None and start is not None and start < old[0]:  # asked from earlier: fill in before it
            rows = [row for page in self._pages(series, start, old[0] - 1) for row in page]
            if rows:
                stored, issues = self._flush(series, stored, rows, before=True)
                added += len(rows)
        since = start if old is None else max(start or 0, old[1] + series.step)
        self.progress.start(label, max(0, (until - since) // series.spacing + 1))
        pending: list[list[float]] = []
        last_write = self.monotonic()
        try:
            for page in self._pages(series, since, until):
                pending += page
                self.progress.advance(len(page))
                if self.monotonic() - last_write >= self.request.checkpoint_s:
                    stored, issues = self._flush(series, stored, pending)
                    added, pending, last_write = added + len(pending), [], self.monotonic()
        except DataError:  # the loader refused the rows: the file keeps its last good state
            raise
        except BaseException:  # the exchange gave up, or Ctrl-C: what was fetched is closed and valid, keep it
            with contextlib.suppress(DataError):
                if pending:
                    self._flush(series, stored, pending)
            raise
        finally:
            self.progress.done()
        if pending:
            stored, issues = self._flush(series, stored, pending)
            added += len(pending)
        if stored is None:
            return SeriesReport(series.symbol, series.kind, series.path, 0, 0, None, None)
        new = tuple(i for i in issues if old is None or not old[0] <= i.ts <= old[1])
        return SeriesReport(series.symbol, series.kind, series.path, added, len(stored.ts), int(stored.ts[0]),
                            int(stored.ts[-1]), new)

    @staticmethod
    def _flush(series: _Series, stored: _Stored | None, rows: list[list[float]], *,
               before: bool = False) -> tuple[_Stored, list[DataIssue]]:
        merged = _Stored(_columns(rows, series.names)) if stored is None else stored.joined(rows, series.names,
                                                                                         before=before)
        return merged, series.write(merged)

    @staticmethod
    def _pages(series: _Series, since: int, until: int) -> Iterator[list[list[float]]]:
        """Pages of rows with ``since <= ts <= until`` that the series keeps, oldest first."""
        while since <= until:
            raw = series.fetch(since, until)
            rows = [row for row in raw if since <= row[0] <= until and series.keep(int(row[0]))]
            if rows:
                yield rows
                since = int(rows[-1][0]) + series.step
            if not rows or len(raw) < series.limit or raw[-1][0] != rows[-1][0]:
                return  # the exchange has nothing more, or the rest is not settled yet

    def _source(self, symbol: str, kind: SeriesKind) -> dict[str, str]:
        return {"data": "Binance public market data", "endpoint": _ENDPOINTS[(self.request.kind, kind)],
                "symbol": symbol, "via": "ratchet-download (ccxt)"}


def _interval(ts: np.ndarray) -> str:
    """Settlement interval as a timeframe ('8h'): the commonest spacing, 8h when unknown."""
    gaps = np.diff(ts)
    if gaps.size == 0:
        return "8h"
    values, counts = np.unique(gaps, return_counts=True)
    hours = int(values[np.argmax(counts)]) // HOUR_MS
    return f"{hours}h" if hours >= 1 else "8h"
