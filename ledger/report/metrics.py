"""The figures a freqtrade user reads first: per pair, per exit reason, Sharpe and Sortino, profit
factor, average trade duration, and buy and hold over the same period.

Sharpe and Sortino are taken from the returns between consecutive equity marks (one per bar) and
annualised by the bar frequency: mean / deviation x sqrt(marks per year), with a year of 365.25
days (crypto trades every day) and the median spacing of the marks as the bar. The risk-free rate
is 0. Sortino's deviation is the downside deviation sqrt(mean(min(r, 0)^2)) over every mark.
A trade's profit is its pnl over its stake (entry notional / leverage: the margin on futures).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from ledger.cli import format_table
from ledger.report import fmt
from ledger.report.benchmark import buy_and_hold
from ledger.report.data import RunInfo, columns, open_run, records

# Candidate named views (ledger/views.py): the per-pair and per-exit-reason tables.
_GROUPED = """
WITH start AS (SELECT arg_min(equity, ts) AS equity FROM equity)
SELECT {key}, count(*) AS trades,
    avg(pnl / nullif(abs(entry_price * qty) / coalesce(nullif(leverage, 0), 1), 0)) AS avg_profit,
    sum(pnl) AS total_profit, sum(pnl) / nullif(any_value(start.equity), 0) AS total_profit_share,
    avg(exit_ts - entry_ts) AS avg_duration_ms,
    count(*) FILTER (WHERE pnl > 0) AS wins, count(*) FILTER (WHERE pnl <= 0) AS losses,
    count(*) FILTER (WHERE pnl > 0) / count(*) AS win_rate
FROM trades, start
GROUP BY {group}
ORDER BY {order}
"""
PAIR_SQL = _GROUPED.format(key="coalesce(symbol, 'TOTAL') AS pair", group="ROLLUP (symbol)",
                           order="symbol IS NULL, total_profit DESC, pair")
EXIT_REASON_SQL = _GROUPED.format(key="exit_reason", group="exit_reason", order="trades DESC, exit_reason")

TRADE_TOTALS_SQL = """
SELECT count(*) AS trades,
    coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0) AS gross_profit,
    coalesce(abs(sum(pnl) FILTER (WHERE pnl <= 0)), 0) AS gross_loss,
    avg(exit_ts - entry_ts) AS avg_duration_ms,
    count(*) FILTER (WHERE pnl > 0) / nullif(count(*), 0) AS win_rate,
    sum(fees) AS fees, sum(funding) AS funding
FROM trades
"""


def return_ratios(ts: np.ndarray, equity: np.ndarray) -> dict[str, float | None]:
    """Annualised Sharpe and Sortino of the mark-to-mark returns, and the marks per year used."""
    out: dict[str, float | None] = {"sharpe": None, "sortino": None, "marks_per_year": None, "bar_ms": None}
    if len(equity) < 3:
        return out
    bar_ms = float(np.median(np.diff(ts)))
    returns = np.diff(equity) / equity[:-1]
    per_year = fmt.YEAR_MS / bar_ms if bar_ms > 0 else None
    out["bar_ms"], out["marks_per_year"] = bar_ms, per_year
    if per_year is None:
        return out
    mean, spread = float(returns.mean()), float(returns.std(ddof=1))
    downside = float(np.sqrt(np.mean(np.minimum(returns, 0.0) ** 2)))
    scale = float(np.sqrt(per_year))
    out["sharpe"] = mean / spread * scale if spread > 0 else None
    out["sortino"] = mean / downside * scale if downside > 0 else None
    return out


def trading_metrics(con: duckdb.DuckDBPyConnection, info: RunInfo) -> dict[str, Any]:
    """The freqtrade-first figures of one run's ledger, as plain data (JSON-ready)."""
    marks = columns(con, "SELECT ts, equity FROM equity ORDER BY ts")
    ts, equity = marks["ts"].astype(np.int64), marks["equity"].astype(float)
    totals = records(con, TRADE_TOTALS_SQL)[0]
    gross_profit, gross_loss = totals["gross_profit"], totals["gross_loss"]
    out: dict[str, Any] = {
        "trades": totals["trades"], "win_rate": totals["win_rate"],
        "profit_factor": gross_profit / gross_loss if gross_loss else None,
        "avg_duration_ms": totals["avg_duration_ms"], "fees": totals["fees"], "funding": totals["funding"],
        "start_ts": int(ts[0]) if len(ts) else None, "end_ts": int(ts[-1]) if len(ts) else None,
        "start_equity": float(equity[0]) if len(equity) else None,
        "end_equity": float(equity[-1]) if len(equity) else None,
        "return": float(equity[-1] / equity[0] - 1) if len(equity) and equity[0] else None,
        **return_ratios(ts, equity),
        "pairs": records(con, PAIR_SQL) if totals["trades"] else [],
        "exit_reasons": records(con, EXIT_REASON_SQL),
        "buy_and_hold": None, "buy_and_hold_symbols": {}, "buy_and_hold_notes": [],
    }
    if len(ts):
        held = buy_and_hold(info.config, int(ts[0]), int(ts[-1]))
        out["buy_and_hold"], out["buy_and_hold_symbols"] = held.total, held.symbols
        out["buy_and_hold_notes"] = held.notes
    return out


def run_metrics(run_dir: Path) -> dict[str, Any]:
    """`trading_metrics` of a run folder (for the end-of-run summary: `format_trading_metrics` prints them)."""
    with open_run(run_dir) as (con, info):
        return trading_metrics(con, info)


GROUPED_COLUMNS = ("trades", "avg profit", "total profit", "total profit %", "avg duration", "wins", "losses",
                   "win rate")


def grouped_cells(row: dict[str, Any]) -> list[str]:
    """A per-pair or per-exit-reason row as the page and the terminal show it."""
    return [str(row["trades"]), fmt.pct(row["avg_profit"]), fmt.num(row["total_profit"]),
            fmt.pct(row["total_profit_share"]), fmt.duration(row["avg_duration_ms"]), str(row["wins"]),
            str(row["losses"]), fmt.pct(row["win_rate"])]


def annualisation_note(metrics: dict[str, Any]) -> str:
    if metrics.get("marks_per_year") is None:
        return "too few equity marks for Sharpe and Sortino"
    return (f"from {fmt.duration(metrics['bar_ms'])} equity-mark returns, annualised x sqrt("
            f"{metrics['marks_per_year']:,.0f} marks a year), risk-free rate 0")


def format_trading_metrics(metrics: dict[str, Any]) -> str:
    """The figures as terminal text (for the end-of-run summary)."""
    held = ", ".join(f"{s} {fmt.pct(r)}" for s, r in metrics["buy_and_hold_symbols"].items())
    lines = [
        f"  return {fmt.pct(metrics['return'])}   buy and hold {fmt.pct(metrics['buy_and_hold'])}"
        + (f" ({held})" if held else ""),
        f"  Sharpe {fmt.ratio(metrics['sharpe'])}   Sortino {fmt.ratio(metrics['sortino'])}   "
        f"({annualisation_note(metrics)})",
        f"  profit factor {fmt.ratio(metrics['profit_factor'])}   avg trade duration "
        f"{fmt.duration(metrics['avg_duration_ms'])}",
    ]
    for title, key, rows in (("per pair", "pair", metrics["pairs"]),
                             ("exit reasons", "exit_reason", metrics["exit_reasons"])):
        if rows:
            table = format_table((key, *GROUPED_COLUMNS), [(r[key], *grouped_cells(r)) for r in rows])
            lines += [f"  {title}:"] + ["    " + line for line in table.splitlines()[:-1]]
    lines += [f"  ({note})" for note in metrics["buy_and_hold_notes"]]
    return "\n".join(lines)
