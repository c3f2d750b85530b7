"""The report's tables, as cells already formatted for the page."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb

from ledger.report import fmt
from ledger.report.data import RunInfo, records
from ledger.report.metrics import GROUPED_COLUMNS, annualisation_note, grouped_cells

ROWS_PER_KIND = 300  # adjustments of one kind listed on the page; the rest are counted, not shown
TRANSITIONS_SHOWN = 300
CELL_CHARS = 160


@dataclass(frozen=True)
class Link:
    """A cell that links elsewhere (a run's report from the comparison page)."""

    text: str
    href: str


@dataclass(frozen=True)
class Table:
    """A titled table of formatted cells, with a note under it (what is hidden, how to see it all)."""

    key: str
    title: str
    columns: Sequence[str]
    rows: Sequence[Sequence[str | Link]]
    note: str = ""
    numeric: Sequence[bool] = field(default=())


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def headline(info: RunInfo, metrics: dict[str, Any], max_drawdown: dict[str, Any] | None) -> Table:
    """What a reader asks first: how much, against what, at what risk."""
    held = ", ".join(f"{s} {fmt.pct(r)}" for s, r in metrics["buy_and_hold_symbols"].items())
    dd = max_drawdown or {}
    rows = [
        ("agent / market / mode", f"{info.agent} / {info.market} / {info.mode}"),
        ("period", f"{fmt.utc(metrics['start_ts'])} to {fmt.utc(metrics['end_ts'])} UTC "
                   f"({fmt.duration((metrics['end_ts'] or 0) - (metrics['start_ts'] or 0))})"),
        ("equity", f"{fmt.num(metrics['start_equity'])} -> {fmt.num(metrics['end_equity'])}"),
        ("return", fmt.pct(metrics["return"])),
        ("buy and hold, same period", fmt.pct(metrics["buy_and_hold"]) + (f" ({held})" if held else "")),
        ("max drawdown", f"{fmt.pct(dd.get('max_drawdown'))} at {fmt.utc(dd.get('max_drawdown_ts'))}"),
        ("Sharpe / Sortino", f"{fmt.ratio(metrics['sharpe'])} / {fmt.ratio(metrics['sortino'])}"),
        ("profit factor", fmt.ratio(metrics["profit_factor"])),
        ("trades / win rate", f"{metrics['trades']} / {fmt.pct(metrics['win_rate'])}"),
        ("avg trade duration", fmt.duration(metrics["avg_duration_ms"])),
        ("fees / funding", f"{fmt.num(metrics['fees'])} / {fmt.num(metrics['funding'])}"),
    ]
    notes = [f"Sharpe and Sortino {annualisation_note(metrics)}.",
             "Buy and hold: equal parts of each symbol, bought at the first mark's close and sold at the last, "
             "no fees or funding.", *metrics["buy_and_hold_notes"]]
    return Table("headline", "Key figures", ("figure", "value"), rows, " ".join(notes), (False, False))


def grouped(key: str, title: str, rows: Sequence[dict[str, Any]], note: str = "") -> Table:
    return Table(key, title, (key.replace("_", " "), *GROUPED_COLUMNS),
                 [(str(r[key]), *grouped_cells(r)) for r in rows], note, (False,) + (True,) * len(GROUPED_COLUMNS))


def performance(con: duckdb.DuckDBPyConnection, view: str, column: str, title: str) -> Table:
    """Trades by mode or by state at entry (the `mode_performance` / `state_performance` views)."""
    rows = records(con, f"SELECT {column}, trades, win_rate, net_pnl, avg_pnl FROM {view}")
    return Table(view, title, (column, "trades", "win rate", "net pnl", "avg pnl"),
                 [(str(r[column]), str(r["trades"]), fmt.pct(r["win_rate"]), fmt.num(r["net_pnl"]),
                   fmt.num(r["avg_pnl"])) for r in rows], f"the `{view}` view", (False, True, True, True, True))


def time_in_state(con: duckdb.DuckDBPyConnection) -> Table:
    rows = records(con, "SELECT state, bars, ms, share FROM time_in_state")
    return Table("time_in_state", "Time in each state", ("state", "bars", "time", "share"),
                 [(r["state"], str(r["bars"]), fmt.duration(r["ms"]), fmt.pct(r["share"])) for r in rows],
                 "the `time_in_state` view", (False, True, True, True))


def transitions(con: duckdb.DuckDBPyConnection, run_dir: str) -> list[Table]:
    """Transition counts by move, and the first moves in time order (capped)."""
    counts = records(con, "SELECT source, dest, trigger, count(*) AS n, min(ts) AS first, max(ts) AS last "
                          "FROM transitions GROUP BY ALL ORDER BY min(ts)")
    total = sum(r["n"] for r in counts)
    rows = records(con, "SELECT ts, source, dest, trigger, reason FROM transitions ORDER BY ts, wall_ts "
                        f"LIMIT {TRANSITIONS_SHOWN}")
    hidden = total - len(rows)
    note = (f"the first {len(rows)} of {total:,}; {hidden:,} more: ratchet-ledger {run_dir} --sql "
            "\"SELECT * FROM transitions ORDER BY ts\"") if hidden else f"all {total:,}"
    return [
        Table("transition_counts", "Transitions by move", ("from", "to", "trigger", "count", "first", "last"),
              [(r["source"], r["dest"], r["trigger"], str(r["n"]), fmt.utc(r["first"]), fmt.utc(r["last"]))
               for r in counts], "", (False, False, False, True, False, False)),
        Table("transitions", "Transitions, with the guards that fired", ("time", "from", "to", "trigger", "why"),
              [(fmt.utc(r["ts"]), r["source"], r["dest"], r["trigger"], _short(r["reason"])) for r in rows], note),
    ]


def adjustments(con: duckdb.DuckDBPyConnection, run_dir: str, per_kind: int = ROWS_PER_KIND) -> list[Table]:
    """Every learning adjustment: counted by kind, listed in time order up to `per_kind` of each kind."""
    counts = records(con, "SELECT kind, count(*) AS n, min(ts) AS first, max(ts) AS last FROM adjustments "
                          "GROUP BY kind ORDER BY min(ts), kind")
    rows = records(con, """
        SELECT ts, kind, before, after, reason, evidence FROM (
            SELECT *, row_number() OVER (PARTITION BY kind ORDER BY ts, wall_ts) AS n FROM adjustments)
        WHERE n <= ? ORDER BY ts, wall_ts""", [per_kind])
    hidden = {r["kind"]: r["n"] - per_kind for r in counts if r["n"] > per_kind}
    note = "; ".join(f"{n:,} more {kind} hidden" for kind, n in hidden.items())
    if note:
        note += (f" (the first {per_kind} of each kind are listed). All of them: ratchet-ledger {run_dir} "
                 "--view adjustments_timeline")
    return [
        Table("adjustment_counts", "Learning adjustments by kind", ("kind", "count", "listed", "first", "last"),
              [(r["kind"], f"{r['n']:,}", f"{min(r['n'], per_kind):,}", fmt.utc(r["first"]), fmt.utc(r["last"]))
               for r in counts], "", (False, True, True, False, False)),
        Table("adjustments", "Every learning adjustment: what changed, from what, to what, and why",
              ("time", "kind", "before", "after", "why", "evidence"),
              [(fmt.utc(r["ts"]), r["kind"], _short(r["before"]), _short(r["after"]), _short(r["reason"]),
                _short(r["evidence"])) for r in rows], note),
    ]


def models(rows: Sequence[dict[str, Any]]) -> Table:
    """The model registry: every version, its training window, held-out figures and status."""
    cells = [(r["version"], r["status"], fmt.utc(r["ts"]), f"{fmt.utc(r['train_start'])} to {fmt.utc(r['train_end'])}",
              fmt.ratio(r["metrics"].get("holdout_log_loss")), fmt.ratio(r["metrics"].get("holdout_base_log_loss")),
              fmt.pct(r["metrics"].get("holdout_hit_rate")), fmt.ratio(r["metrics"].get("holdout_auc")))
             for r in rows]
    return Table("models", "Model versions", ("version", "status", "trained", "training window", "held-out log-loss",
                                              "base-rate log-loss", "held-out hit rate", "held-out AUC"), cells,
                 "the `models` table; artifacts and hashes in models/index.json",
                 (False, False, False, False, True, True, True, True))
