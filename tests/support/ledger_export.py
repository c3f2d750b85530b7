"""Read a whole ledger back as comparable rows, wall-clock and run-id columns aside."""

from __future__ import annotations

from pathlib import Path

import duckdb

TABLES = ("runs", "orders", "fills", "trades", "funding", "equity", "transitions", "adjustments",
          "models", "decisions", "data_issues", "notifications")


def export(path: Path, *, until_ts: int | None = None,
           tables: tuple[str, ...] = TABLES) -> dict[str, list[tuple]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for table in tables:
            cols = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()
                    if r[0] not in ("wall_ts", "run_id")]
            time_col = next((c for c in ("ts", "exit_ts") if c in cols), None)  # trades: exit time
            where = ""
            if until_ts is not None and time_col is not None:
                where = f" WHERE {time_col} <= {until_ts}"
            sql = f"SELECT {', '.join(cols)} FROM {table}{where} ORDER BY ALL"
            out[table] = con.execute(sql).fetchall()
        return out
    finally:
        con.close()
