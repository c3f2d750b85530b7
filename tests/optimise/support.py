"""Shared helpers of the optimiser's tests: a futures agent with its weekly optimiser on, small budgets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

DAY_MS = 86_400_000
HOUR_MS = 3_600_000

# The futures agent on BTC and ETH perpetuals, Sep-Dec 2023, optimising weekly with 8 trials on two
# weeks of bars: proposals rejected and promoted, promotions confirmed and one rolled back.
FUTURES = ("agent=futures", "market=perp_1h", "market.start=2023-09-01", "market.end=2024-01-01",
           "agent.optimise.enabled=true", "agent.optimise.trials=8", "agent.optimise.lookback_days=14")


def param_rows(ledger: Path) -> list[dict[str, Any]]:
    """The optimiser's adjustments, in the order they were written."""
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        rows = con.execute("SELECT ts, kind, before, after, reason, evidence FROM adjustments "
                           "WHERE kind LIKE 'param_%' ORDER BY ts, wall_ts").fetchall()
    finally:
        con.close()
    return [{"ts": ts, "kind": kind, "before": json.loads(before), "after": json.loads(after), "reason": reason,
             "evidence": json.loads(evidence)} for ts, kind, before, after, reason, evidence in rows]


def first_close(ledger: Path) -> int:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute("SELECT min(ts) FROM equity").fetchone()[0]
    finally:
        con.close()
