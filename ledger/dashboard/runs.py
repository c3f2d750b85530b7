"""What the dashboard shows, read from ledgers: one connection per request, read-only; while a
running agent holds a ledger's lock, its published snapshot is read (`ledger.cli.connect_sweep`)."""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from core.errors import LedgerError
from ledger.cli import LEDGER_FILE, find_ledgers
from ledger.report.data import RunInfo, columns, open_run, records
from ledger.report.downsample import decimate
from ledger.views import VIEW_NAMES
from ledger.writer import snapshot_path

RECENT = 20  # transitions and adjustments on a run's page
VIEW_ROWS = 1000  # rows of a named view sent to the page
CHART_BUCKETS = 500

# Entries without an exit: the positions a run holds now, one row per trade.
OPEN_POSITIONS_SQL = """
SELECT f.trade_id, any_value(f.symbol) AS symbol,
    CASE WHEN any_value(f.side) = 'buy' THEN 'long' ELSE 'short' END AS side,
    sum(f.qty) AS qty, sum(f.qty * f.price) / nullif(sum(f.qty), 0) AS entry_price, min(f.ts) AS entry_ts,
    any_value(o.leverage) AS leverage, any_value(o.mode) AS mode, any_value(o.state) AS state
FROM fills f JOIN orders o USING (order_id)
WHERE o.intent = 'entry' AND NOT EXISTS (SELECT 1 FROM trades t WHERE t.trade_id = f.trade_id)
GROUP BY f.trade_id ORDER BY entry_ts, f.trade_id
"""

RUN_NOW_SQL = """
SELECT (SELECT arg_max(state, ts) FROM equity) AS state, (SELECT arg_max(equity, ts) FROM equity) AS equity,
    (SELECT max(ts) FROM equity) AS last_bar,
    (SELECT max(ts) FROM notifications WHERE kind = 'heartbeat') AS last_heartbeat
"""


def plain(value: Any) -> Any:
    """A value JSON carries as it is: numpy scalars unwrapped, non-finite floats as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunsFolder:
    """The runs under one folder, each named by its path relative to the folder."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._index: dict[Path, tuple[tuple, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def run_dirs(self) -> list[Path]:
        if not self.root.is_dir():
            raise LedgerError(f"runs folder {self.root} does not exist")
        try:
            return [path.parent for path in find_ledgers([self.root])]
        except LedgerError:
            return []  # no run yet

    def resolve(self, name: str) -> Path:
        """The run folder a page names, refused when it leaves the runs folder or holds no ledger."""
        root = self.root.resolve()
        run_dir = (root / name).resolve()
        if not run_dir.is_relative_to(root) or not (run_dir / LEDGER_FILE).is_file():
            raise FileNotFoundError(f"no run {name!r} under {self.root}")
        return run_dir

    def name(self, run_dir: Path) -> str:
        return run_dir.resolve().relative_to(self.root.resolve()).as_posix()

    def index(self) -> list[dict[str, Any]]:
        """Every run with its agent, mode, state, equity, last bar and last heartbeat."""
        rows = []
        for run_dir in self.run_dirs():
            stamp = _stamp(run_dir)
            with self._lock:
                cached = self._index.get(run_dir)
            if cached is None or cached[0] != stamp:
                cached = (stamp, self._index_row(run_dir))
                with self._lock:
                    self._index[run_dir] = cached
            rows.append(cached[1])
        return rows

    def _index_row(self, run_dir: Path) -> dict[str, Any]:
        row: dict[str, Any] = {"run": self.name(run_dir)}
        try:
            with open_run(run_dir) as (con, info):
                row.update(_identity(info), **{k: plain(v) for k, v in records(con, RUN_NOW_SQL)[0].items()})
        except LedgerError as exc:
            row["error"] = str(exc)
        return row

    def live(self, run_dir: Path) -> dict[str, Any]:
        """A run's page data: equity (decimated), open positions, recent transitions and adjustments."""
        with open_run(run_dir) as (con, info):
            curve = columns(con, "SELECT ts, equity FROM equity ORDER BY ts")
            keep = decimate(curve["equity"].astype(float), buckets=CHART_BUCKETS)
            return {
                "run": self.name(run_dir), **_identity(info),
                **{k: plain(v) for k, v in records(con, RUN_NOW_SQL)[0].items()},
                "marks": len(curve["ts"]),
                "curve": {"ts": [int(t) for t in curve["ts"][keep]],
                           "equity": [plain(e) for e in curve["equity"][keep]]},
                "positions": _plain_rows(con, OPEN_POSITIONS_SQL),
                "transitions": _plain_rows(con, "SELECT ts, source, dest, trigger, reason FROM transitions "
                                                f"ORDER BY ts DESC, wall_ts DESC LIMIT {RECENT}"),
                "adjustments": _plain_rows(con, "SELECT ts, kind, before, after, reason FROM adjustments "
                                                f"ORDER BY ts DESC, wall_ts DESC LIMIT {RECENT}"),
            }

    def view(self, run_dir: Path, view: str) -> dict[str, Any]:
        """A named view's first rows, with how many there are in all."""
        if view not in VIEW_NAMES:
            raise KeyError(f"unknown view {view!r}; known: {', '.join(VIEW_NAMES)}")
        with open_run(run_dir) as (con, _):
            total = con.execute(f"SELECT count(*) FROM {view}").fetchone()[0]
            cur = con.execute(f"SELECT * EXCLUDE (run_dir, run_id) FROM {view} LIMIT {VIEW_ROWS}")
            names = [d[0] for d in cur.description]
            rows = [[_cell(v) for v in row] for row in cur.fetchall()]
        return {"view": view, "columns": names, "rows": rows, "total": total}


def _identity(info: RunInfo) -> dict[str, Any]:
    return {"agent": info.agent, "market": info.market, "mode": info.mode, "notice": info.notice}


def _cell(value: Any) -> Any:
    value = plain(value)
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def _plain_rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    return [{k: _cell(v) for k, v in row.items()} for row in records(con, sql)]


def _stamp(run_dir: Path) -> tuple:
    """Changes whenever the ledger, its write-ahead log or its snapshot does."""
    ledger = run_dir / LEDGER_FILE
    out = []
    for path in (ledger, ledger.with_name(ledger.name + ".wal"), snapshot_path(ledger)):
        try:
            stat = path.stat()
            out.append((stat.st_mtime_ns, stat.st_size))
        except FileNotFoundError:
            out.append(None)
    return tuple(out)
