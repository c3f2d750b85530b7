"""One run's ledger read for the report and the dashboard: read-only, through `ledger.cli`.

Everything here is a query over the ledger's base tables and named views, returned as numpy
columns or plain rows; nothing is computed that a view already answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from core.errors import LedgerError
from ledger.cli import connect_sweep, find_ledgers


@dataclass(frozen=True)
class RunInfo:
    """Who ran what: the `runs` row of a ledger, its config parsed, and where it was read from."""

    run_dir: Path
    ledger_path: Path
    run_id: str
    agent: str
    market: str
    mode: str
    config: dict[str, Any] = field(repr=False)
    notice: str | None = None  # set when a running agent held the ledger and its snapshot was read


def ledger_file(run_dir: Path) -> Path:
    """The ledger of a run folder (or the ledger file itself)."""
    found = find_ledgers([run_dir])
    if len(found) != 1:
        raise LedgerError(f"{run_dir} holds {len(found)} runs; name one run folder")
    return found[0]


@contextmanager
def open_run(run_dir: Path) -> Iterator[tuple[duckdb.DuckDBPyConnection, RunInfo]]:
    """A read-only connection to a run folder's ledger (its snapshot while a running agent holds it)
    and its `runs` row; the connection is closed after."""
    path = ledger_file(Path(run_dir))
    notices: list[str] = []
    con = connect_sweep([path], notice=notices.append)
    try:
        yield con, run_info(con, path, notices[0] if notices else None)
    finally:
        con.close()


def run_info(con: duckdb.DuckDBPyConnection, ledger_path: Path, notice: str | None = None) -> RunInfo:
    runs = records(con, "SELECT * FROM runs ORDER BY wall_ts")
    if not runs:
        raise LedgerError(f"ledger {ledger_path} has no runs row: the run never started")
    agents = sorted({r["agent"] for r in runs})
    if len(agents) > 1:
        raise LedgerError(f"ledger {ledger_path} holds {len(agents)} agents ({', '.join(agents)}); "
                          "a report draws one run of one agent")
    first = runs[0]
    config = json.loads(first["config"]) if first.get("config") else {}
    # `runs.mode` arrived with paper trading; every ledger written before it was a replay
    return RunInfo(run_dir=ledger_path.parent, ledger_path=ledger_path, run_id=first["run_id"],
                   agent=first["agent"], market=first.get("market") or "", mode=first.get("mode") or "replay",
                   config=config, notice=notice)


def tagged_states(con: duckdb.DuckDBPyConnection, tag: str) -> list[str]:
    """The states the machine's YAML gives a role (`breaker`, `exploring`, ...), from `state_tags`."""
    return [s for (s,) in con.execute("SELECT DISTINCT state FROM state_tags WHERE tag = ? ORDER BY state",
                                      [tag]).fetchall()]


def _is_time(name: str) -> bool:
    return name == "ts" or name.endswith("_ts")


def _epoch_ms(value: Any) -> Any:
    """A simulated time as epoch milliseconds, whether a view gives it as BIGINT ms or as TIMESTAMP."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(aware.timestamp() * 1000)
    return value


def records(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    """A query's rows as dicts; time columns (`ts`, `*_ts`) as epoch milliseconds."""
    cur = con.execute(sql, list(params))
    names = [d[0] for d in cur.description]
    times = [_is_time(n) for n in names]
    return [{n: _epoch_ms(v) if t else v for n, v, t in zip(names, row, times, strict=True)}
            for row in cur.fetchall()]


def columns(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> dict[str, np.ndarray]:
    """A query's result as one numpy array per column; time columns as epoch milliseconds."""
    out = {}
    for name, values in con.execute(sql, list(params)).fetchnumpy().items():
        values = np.asarray(values)
        if _is_time(name) and np.issubdtype(values.dtype, np.datetime64):
            values = values.astype("datetime64[ms]").astype(np.int64)
        out[name] = values
    return out


def has_rows(con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE") -> bool:
    return con.execute(f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {where})").fetchone()[0]


def equity_curve(con: duckdb.DuckDBPyConnection) -> dict[str, np.ndarray]:
    """Every equity mark with its drawdown from the running peak (the `drawdown` view) and state."""
    return columns(con, "SELECT ts, equity, coalesce(drawdown, 0) AS drawdown, state FROM drawdown ORDER BY ts")


def trades(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    return records(con, "SELECT trade_id, symbol, side, entry_ts, exit_ts, entry_price, exit_price, qty, "
                        "leverage, fees, funding, pnl, mode, state, exit_reason, risk_fraction "
                        "FROM trades ORDER BY exit_ts, trade_id")


@dataclass(frozen=True)
class Segment:
    """A stretch of time with one label: a state, or a symbol's regime."""

    lane: str
    label: str
    start: int
    end: int


def state_segments(ts: np.ndarray, states: np.ndarray) -> list[Segment]:
    """Runs of one state in the equity marks, one lane per state; each lasts until the next one
    begins (the last until the last mark)."""
    if len(ts) == 0:
        return []
    states = np.asarray(states, dtype=object)
    starts = np.flatnonzero(np.r_[True, states[1:] != states[:-1]])
    ends = np.r_[starts[1:], len(ts) - 1]
    return [Segment(str(states[s]), str(states[s]), int(ts[s]), int(ts[e])) for s, e in zip(starts, ends, strict=True)]


def kelly(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Kelly risk changes and Kelly-sized entries with their inputs (the `kelly` view)."""
    return records(con, "SELECT ts, kind, p, b, f_star, regime_factor, cap, risk_fraction_before, "
                        "risk_fraction_after, reason FROM kelly ORDER BY ts")


def breaker(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Moves into and out of the breaker states (the `breaker` view)."""
    return records(con, "SELECT ts, source, dest, trigger, reason FROM breaker ORDER BY ts")


def regime_segments(con: duckdb.DuckDBPyConnection, start_ts: int, end_ts: int) -> list[Segment]:
    """Each symbol's trend and volatility labels from the first mark to the last, from the `regimes`
    view: the label before a lane's first change holds from the first mark."""
    rows = records(con, "SELECT ts, from_regime, to_regime FROM regimes ORDER BY ts")
    open_labels: dict[str, tuple[str, int]] = {}
    segments: list[Segment] = []
    for row in rows:
        before, after = _regime(row["from_regime"]), _regime(row["to_regime"])
        symbol = after.pop("symbol", "")
        for facet, label in after.items():
            lane = f"{symbol} {facet}".strip()
            if lane not in open_labels and before.get(facet) is not None and start_ts < row["ts"]:
                open_labels[lane] = (str(before[facet]), start_ts)
            if lane in open_labels and open_labels[lane][0] == str(label):
                continue  # another facet of the symbol changed; this one holds
            if lane in open_labels:
                prev_label, start = open_labels[lane]
                segments.append(Segment(lane, prev_label, start, int(row["ts"])))
            open_labels[lane] = (str(label), int(row["ts"]))
    segments += [Segment(lane, label, start, max(start, end_ts)) for lane, (label, start) in open_labels.items()]
    return sorted(segments, key=lambda s: (s.lane, s.start))


def _regime(value: str | None) -> dict[str, Any]:
    """A regime label: a JSON object of facets (symbol, trend, volatility) or a bare label."""
    if value is None:
        return {}
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return {"regime": value}
    return dict(parsed) if isinstance(parsed, dict) else {"regime": str(parsed)}


def adjustments_of(con: duckdb.DuckDBPyConnection, kind: str) -> list[dict[str, Any]]:
    """Adjustments of one kind in time order, their JSON columns parsed."""
    rows = records(con, "SELECT ts, before, after, reason, evidence FROM adjustments WHERE kind = ? "
                        "ORDER BY ts, wall_ts", [kind])
    for row in rows:
        for key in ("before", "after", "evidence"):
            row[key] = json.loads(row[key]) if row[key] is not None else None
    return rows


def models(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    rows = records(con, "SELECT ts, version, status, train_start, train_end, metrics FROM models ORDER BY ts")
    for row in rows:
        row["metrics"] = json.loads(row["metrics"]) if row["metrics"] else {}
    return rows


def hit_rates(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Out-of-sample hit rate and log-loss per model (the `model_hit_rates` view)."""
    return records(con, "SELECT model, predictions, hit_rate, coin_flip, majority_rate, log_loss "
                        "FROM model_hit_rates ORDER BY model = 'ensemble' DESC, model")
