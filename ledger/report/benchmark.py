"""Buy and hold over the agent's own period: the yardstick its return is read against.

The ledger records no candles, so closes are read from the run's market data by the catalog's
file scheme (`binance_{kind}_{BASE-QUOTE[-SETTLE]}_{timeframe}.parquet`) in `market.data_dir` of
the run's config, or, when that is unset, in the bundled data shipped with the package
(`components/market/data`; its files are read, none of its code is imported). Each symbol is
bought at the close the first equity mark was taken at and sold at the close of the last one,
without fees or funding; several symbols are held in equal parts.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from core.errors import LedgerError

EXCHANGE = "binance"  # the catalog holds Binance data only


@dataclass(frozen=True)
class BuyAndHold:
    """Per-symbol and equal-weight buy-and-hold returns; `notes` say what could not be read."""

    start_ts: int
    end_ts: int
    symbols: dict[str, float | None]
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float | None:
        known = [r for r in self.symbols.values() if r is not None]
        return sum(known) / len(known) if known and len(known) == len(self.symbols) else None


def bundled_data_dir() -> Path | None:
    """Where the bundled candles live, found without importing the package that ships them."""
    spec = importlib.util.find_spec("components")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "market" / "data"


def candle_file(data_dir: Path, kind: str, symbol: str, timeframe: str) -> Path:
    """'BTC/USDT:USDT' on futures 1h -> binance_futures_BTC-USDT-USDT_1h.parquet."""
    pair = symbol.replace("/", "-").replace(":", "-")
    return data_dir / f"{EXCHANGE}_{kind}_{pair}_{timeframe}.parquet"


def buy_and_hold(config: dict[str, Any], start_ts: int, end_ts: int) -> BuyAndHold:
    """Buy and hold of the run's symbols between two equity marks (bar close times)."""
    market = config.get("market") or {}
    kind, timeframe = market.get("kind"), market.get("timeframe")
    symbols = list(market.get("symbols") or [])
    if not (kind and timeframe and symbols):
        return BuyAndHold(start_ts, end_ts, {}, ["the run's config names no market (kind, symbols, timeframe)"])
    data_dir = Path(market["data_dir"]) if market.get("data_dir") else bundled_data_dir()
    returns: dict[str, float | None] = {}
    notes: list[str] = []
    con = duckdb.connect()
    try:
        for symbol in symbols:
            path = candle_file(data_dir, kind, symbol, timeframe) if data_dir else None
            try:
                returns[symbol] = _hold_return(con, path, start_ts, end_ts)
            except LedgerError as exc:
                returns[symbol] = None
                notes.append(f"{symbol}: {exc}")
    finally:
        con.close()
    return BuyAndHold(start_ts, end_ts, returns, notes)


def _hold_return(con: duckdb.DuckDBPyConnection, path: Path | None, start_ts: int, end_ts: int) -> float:
    if path is None or not path.is_file():
        raise LedgerError(f"no candles at {path}")
    # the close known at a mark is that of the last bar opened before it
    first, last = con.execute(
        "SELECT arg_max(close, ts) FILTER (WHERE ts < $start), arg_max(close, ts) FILTER (WHERE ts < $end) "
        "FROM read_parquet($path)", {"start": start_ts, "end": end_ts, "path": str(path)}).fetchone()
    if first is None or last is None or first <= 0:
        raise LedgerError(f"{path} has no closes before {start_ts} and {end_ts}")
    return last / first - 1
