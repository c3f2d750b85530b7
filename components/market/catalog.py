"""Where each market series lives on disk: bundled package data or a user data dir.

File names follow the bundled scheme (see ``data/README.md``)::

    {exchange}_{spot|futures}_{BASE-QUOTE[-SETTLE]}_{[mark_|funding_]}{timeframe}.parquet

e.g. ``binance_futures_BTC-USDT-USDT_mark_1h.parquet`` holds mark-price candles of the
ccxt symbol ``BTC/USDT:USDT``. Funding files carry their settlement interval as timeframe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.market.timeframes import timeframe_ms
from core.errors import DataError
from core.market import MarketKind

BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data"
EXCHANGE = "binance"
MARKET_KINDS: tuple[MarketKind, ...] = ("spot", "futures")

Series = Literal["candles", "mark", "funding"]

_FILE = re.compile(
    r"^(?P<exchange>[a-z0-9]+)_(?P<kind>spot|futures)_(?P<pair>[A-Z0-9]+(?:-[A-Z0-9]+){1,2})_"
    r"(?:(?P<series>mark|funding)_)?(?P<timeframe>[1-9][0-9]*[smhdw])\.parquet$"
)


@dataclass(frozen=True)
class SeriesFile:
    """One parquet file of the catalog."""

    kind: MarketKind
    symbol: str
    series: Series
    timeframe: str
    path: Path


def symbol_to_pair(kind: str, symbol: str) -> str:
    """ccxt unified symbol -> file token: 'BTC/USDT' -> 'BTC-USDT', 'BTC/USDT:USDT' -> 'BTC-USDT-USDT'."""
    _check_kind(kind)
    spot = re.fullmatch(r"([A-Z0-9]+)/([A-Z0-9]+)", symbol)
    perp = re.fullmatch(r"([A-Z0-9]+)/([A-Z0-9]+):([A-Z0-9]+)", symbol)
    if kind == "spot" and spot:
        return f"{spot.group(1)}-{spot.group(2)}"
    if kind == "futures" and perp:
        return "-".join(perp.groups())
    example = "BTC/USDT" if kind == "spot" else "BTC/USDT:USDT"
    if symbol != symbol.upper():
        raise DataError(f"symbol {symbol!r} is not upper case: ccxt {kind} symbols look like {example!r}")
    if spot or perp:
        other = "a spot symbol" if spot else "a perpetual"
        raise DataError(f"symbol {symbol!r} does not fit a {kind} market: it is {other}; "
                        f"{kind} symbols look like {example!r}")
    raise DataError(f"symbol {symbol!r} is not a ccxt {kind} symbol like {example!r}")


def pair_to_symbol(kind: str, pair: str) -> str:
    """File token -> ccxt unified symbol (inverse of :func:`symbol_to_pair`)."""
    parts = pair.split("-")
    if kind == "futures" and len(parts) == 3:
        return f"{parts[0]}/{parts[1]}:{parts[2]}"
    if kind == "spot" and len(parts) == 2:
        return f"{parts[0]}/{parts[1]}"
    raise DataError(f"file token {pair!r} does not name a {kind} symbol")


@dataclass(frozen=True)
class Catalog:
    """The series files found in one directory (bundled data by default)."""

    root: Path = BUNDLED_DATA_DIR
    exchange: str = EXCHANGE

    def files(self) -> list[SeriesFile]:
        """Every file in ``root`` that follows the naming scheme, sorted by name."""
        if not self.root.is_dir():
            raise DataError(f"market data dir not found: {self.root}")
        found = []
        for path in sorted(self.root.glob(f"{self.exchange}_*.parquet")):
            match = _FILE.match(path.name)
            if match is None or match["exchange"] != self.exchange:
                continue
            kind = match["kind"]
            series = match["series"] or "candles"
            symbol = pair_to_symbol(kind, match["pair"])
            found.append(SeriesFile(kind, symbol, series, match["timeframe"], path))
        return found

    def timeframes(self, kind: str) -> list[str]:
        """Candle timeframes available for ``kind``."""
        _check_kind(kind)
        tfs = {f.timeframe for f in self.files() if f.kind == kind and f.series == "candles"}
        return sorted(tfs, key=_timeframe_sort_key)

    def available(self, kind: str, timeframe: str, series: Series = "candles") -> list[str]:
        """Symbols with ``timeframe`` files of ``series`` for ``kind``, sorted."""
        _check_kind(kind)
        return sorted(
            f.symbol
            for f in self.files()
            if f.kind == kind and f.series == series and f.timeframe == timeframe
        )

    def candles(self, kind: str, symbol: str, timeframe: str) -> Path:
        """Path of last-trade candles; DataError lists what exists when absent."""
        path = self._path(kind, symbol, "", timeframe)
        if not path.is_file():
            raise DataError(self._missing(kind, symbol, timeframe, "candles", path))
        return path

    def mark(self, symbol: str, timeframe: str) -> Path:
        """Path of mark-price candles of a perpetual."""
        path = self._path("futures", symbol, "mark_", timeframe)
        if not path.is_file():
            raise DataError(self._missing("futures", symbol, timeframe, "mark", path))
        return path

    def funding(self, symbol: str) -> Path:
        """Path of the funding-rate file of a perpetual, whatever its interval."""
        pair = symbol_to_pair("futures", symbol)
        matches = [f.path for f in self.files() if f.series == "funding" and f.symbol == symbol]
        if not matches:
            raise DataError(
                f"no funding file for {symbol} in {self.root} "
                f"(expected {self.exchange}_futures_{pair}_funding_<interval>.parquet)"
            )
        if len(matches) > 1:
            names = ", ".join(p.name for p in matches)
            raise DataError(f"several funding files for {symbol} in {self.root}: {names}")
        return matches[0]

    def _path(self, kind: str, symbol: str, prefix: str, timeframe: str) -> Path:
        timeframe_ms(timeframe)  # a clear error for '1x' before a confusing "file not found"
        pair = symbol_to_pair(kind, symbol)
        return self.root / f"{self.exchange}_{kind}_{pair}_{prefix}{timeframe}.parquet"

    def _missing(self, kind: str, symbol: str, timeframe: str, series: Series, path: Path) -> str:
        symbols = self.available(kind, timeframe, series)
        if symbols:
            listing = f"{series} available for {kind} {timeframe}: {', '.join(symbols)}"
        else:
            tfs = ", ".join(self.timeframes(kind)) or "none"
            listing = f"no {kind} {timeframe} {series} at all; {kind} candle timeframes: {tfs}"
        return f"no {kind} {timeframe} {series} for {symbol} (looked for {path}); {listing}"


def catalog(data_dir: str | Path | None = None) -> Catalog:
    """The bundled catalog, or one over a user data dir with the same naming scheme."""
    return Catalog() if data_dir is None else Catalog(Path(data_dir).expanduser())


def available(kind: str, timeframe: str, data_dir: str | Path | None = None) -> list[str]:
    """Symbols with ``timeframe`` candles for ``kind`` (bundled unless ``data_dir``)."""
    return catalog(data_dir).available(kind, timeframe)


def _check_kind(kind: str) -> None:
    if kind not in MARKET_KINDS:
        raise DataError(f"unknown market kind {kind!r}: expected one of {', '.join(MARKET_KINDS)}")


def _timeframe_sort_key(timeframe: str) -> tuple[int, str]:
    return timeframe_ms(timeframe), timeframe
