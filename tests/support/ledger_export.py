"""Read a ledger back as comparable rows, wall-clock and run-id columns aside: whole, or as it was
known when the agent decided at a bar close (the no-lookahead probe's boundary)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb

from core.records import ExitReason

TABLES = ("runs", "orders", "fills", "trades", "funding", "equity", "transitions", "adjustments",
          "models", "decisions", "predictions", "data_issues", "notifications")
_NOT_COMPARED = ("wall_ts", "run_id")

#: Exits the exchange books inside a bar and stamps with that bar's close (stop, target, end of
#: data). A fill or trade stamped ``t`` with one of these happened inside the bar closing at ``t``.
INSIDE_THE_BAR = tuple(r.value for r in (ExitReason.STOP_LOSS, ExitReason.TAKE_PROFIT, ExitReason.END_OF_DATA))

#: Rows the agent writes during its step at their stamp.
_STAMPED_WHEN_DECIDED = ("orders", "transitions", "adjustments", "models", "decisions", "notifications", "equity")
#: A live exchange's answers (empty in replay): one stamped t may answer the orders decided at t.
_EXCHANGE_ANSWERS = ("order_updates", "reconciliation", "exchange_replies")


def export(path: Path, *, until_ts: int | None = None,
           tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table in tables:
            cols = _columns(con, table)
            time_col = next((c for c in ("ts", "exit_ts") if c in cols), None)  # trades: exit time
            where = ""
            if until_ts is not None and time_col is not None:
                where = f" WHERE {time_col} <= {until_ts}"
            sql = f"SELECT {', '.join(cols)} FROM {table}{where} ORDER BY ALL"
            out[table] = con.execute(sql).fetchall()
        return out
    finally:
        con.close()


def known_at(path: Path, t: int, *, timeframe_ms: int, horizon_bars: int | None = None) -> dict[str, list[tuple]]:
    """Every table of the ledger, as much of it as was known when the agent decided at the bar close
    ``t = ts[i] + timeframe``; the bar that opens at ``t`` is the first that decision must not see.

    * orders, transitions, adjustments, models, decisions, notifications, equity: rows stamped
      ``<= t``; the agent writes them during its step at their stamp.
    * data_issues: stamped ``< t``, the bars the decision saw (all are written when the run starts).
    * fills, and trades by ``exit_ts``: stamped ``< t``, and stamped ``t`` when the exit happened
      inside bar ``i`` (``INSIDE_THE_BAR``: stamped with its close, known at ``t``). A market order
      decided at ``t`` fills at the open of the bar at ``t`` and is stamped ``t`` too, but its price
      is that open: left out. So is a liquidation stamped ``t``: it may have happened inside bar
      ``i`` or at the next open, and the row does not say which.
    * order_updates, reconciliation, exchange_replies (a live exchange's answers, empty in replay):
      stamped ``< t``; one stamped ``t`` may answer the orders decided at ``t``.
    * funding: stamped ``<= t - timeframe``. The settlements in ``(ts[i], t]`` are paid when the
      bar at ``t`` opens, at its mark open, after the decision at ``t``.
    * predictions: made at or before ``t`` (stamped ``<= t``, written when they resolve), with
      every probability; the outcome only where it was resolved by ``t``
      (``ts + horizon_bars * timeframe <= t``), NULL where it was not.
    * tables with no time column (runs, the machine's state tags): written when the run starts,
      compared whole, except ``runs.data_fingerprint``: a hash of all the data, later bars included.

    A table with a time column and no rule here is an error, so a new table cannot go unprobed.
    """
    con = duckdb.connect(str(path), read_only=True)
    try:
        inside = ", ".join(f"'{r}'" for r in INSIDE_THE_BAR)
        where = {
            **{table: f"ts <= {t}" for table in _STAMPED_WHEN_DECIDED},
            **{table: f"ts < {t}" for table in _EXCHANGE_ANSWERS},
            "fills": f"ts < {t} OR (ts = {t} AND reason IN ({inside}))",
            "trades": f"exit_ts < {t} OR (exit_ts = {t} AND exit_reason IN ({inside}))",
            "funding": f"ts <= {t - timeframe_ms}",
            "predictions": f"ts <= {t}",
            "data_issues": f"ts < {t}",
        }
        left_out = {"runs": ("data_fingerprint",)}
        out = {}
        for table in _tables(con):
            cols = [c for c in _columns(con, table) if c not in left_out.get(table, ())]
            if table not in where and any(c == "ts" or c.endswith("_ts") for c in cols):
                raise LookupError(f"ledger table {table!r} has no known-at rule in tests/support/ledger_export.py")
            select = list(cols)
            if table == "predictions" and "outcome" in cols:
                rows = con.execute(f"SELECT count(*) FROM predictions WHERE {where[table]}").fetchone()[0]
                if rows and horizon_bars is None:
                    raise ValueError("predictions resolve horizon_bars after they are made: pass horizon_bars")
                resolved = t - (horizon_bars or 0) * timeframe_ms
                select[cols.index("outcome")] = f"CASE WHEN ts <= {resolved} THEN outcome END AS outcome"
            sql = f"SELECT {', '.join(select)} FROM {table} WHERE {where.get(table, 'TRUE')} ORDER BY ALL"
            out[table] = con.execute(sql).fetchall()
        return out
    finally:
        con.close()


def fills_at_the_open(path: Path, t: int) -> list[tuple]:
    """Fills stamped ``t`` at the open of the bar that opens at ``t``: what ``known_at`` leaves out."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        cols = _columns(con, "fills")
        inside = ", ".join(f"'{r}'" for r in (*INSIDE_THE_BAR, ExitReason.LIQUIDATION.value))
        return con.execute(f"SELECT {', '.join(cols)} FROM fills WHERE ts = {t} AND reason NOT IN ({inside}) "
                           "ORDER BY ALL").fetchall()
    finally:
        con.close()


def entry_times(path: Path) -> list[int]:
    """The bar closes at which the agent placed an entry order, in time order."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT DISTINCT ts FROM orders WHERE intent = 'entry' ORDER BY ts").fetchall()
        return [r[0] for r in rows]
    finally:
        con.close()


def differences(before: Mapping[str, list[tuple]], after: Mapping[str, list[tuple]]) -> list[str]:
    """One line per table whose rows differ, with its first differing row, cut short (empty: identical)."""
    out = []
    for table in sorted(set(before) | set(after)):
        a, b = before.get(table, []), after.get(table, [])
        if a == b:
            continue
        k = next((k for k, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
        first = repr(a[k] if k < len(a) else None)[:400]
        other = repr(b[k] if k < len(b) else None)[:400]
        out.append(f"{table} ({len(a)} rows vs {len(b)}): row {k} {first} became {other}")
    return out


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' AND table_name != 'schema_migrations' "
        "ORDER BY table_name").fetchall()]


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    return [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall() if r[0] not in _NOT_COMPARED]


def committed_bars(run_dir: Path) -> int:
    """Equity marks in a running agent's published snapshot (0 before the first one)."""
    snapshot = run_dir / "ledger.snapshot.duckdb"
    if not snapshot.exists():
        return 0
    con = duckdb.connect(str(snapshot), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM equity").fetchone()[0]
    finally:
        con.close()
