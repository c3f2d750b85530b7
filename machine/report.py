"""The end-of-run summary, read back from the ledger's views (so it shows what the ledger proves).

What a freqtrade user reads first (per-pair and exit-reason tables, Sharpe and Sortino, profit
factor, average trade duration, buy and hold over the same period) comes from the report's
`ledger.report.metrics`, so the terminal and the HTML report give the same figures.
"""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ledger.cli import connect_sweep, json_value
from ledger.report.data import tagged_states
from ledger.report.metrics import format_trading_metrics, run_metrics


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def _rows(con: Any, sql: str) -> list[dict[str, Any]]:
    cur = con.execute(sql)
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def summarize(ledger_path: Path) -> dict[str, Any]:
    """Per-agent figures and the transitions, as plain data (also written to summary.json)."""
    con = connect_sweep([ledger_path])
    try:
        summary = _rows(con, "SELECT * FROM summary")
        states = _rows(con, "SELECT agent, state, bars FROM time_in_state ORDER BY agent, bars DESC")
        transitions = _rows(con, "SELECT ts, agent, source, dest, trigger, reason FROM transitions ORDER BY ts")
        funding = _rows(con, "SELECT agent, sum(paid) AS paid, sum(received) AS received "
                             "FROM funding_summary GROUP BY agent")
        issues = _rows(con, "SELECT kind, count(*) AS n FROM data_issues GROUP BY kind ORDER BY kind")
        exploring = tagged_states(con, "exploring")  # clock- and draw-driven visits: too many to list
    finally:
        con.close()
    metrics = json_value(run_metrics(ledger_path)) if summary else None  # one run is one agent
    out: dict[str, Any] = {"ledger": str(ledger_path), "agents": {}, "exploring_states": exploring,
                           "data_issues": {i["kind"]: int(i["n"]) for i in issues}}
    for row in summary:
        agent = row["agent"]
        out["agents"][agent] = {
            **{k: _plain(v) for k, v in row.items() if k not in ("run_id", "run_dir", "agent")},
            "funding_paid": next((abs(_plain(f["paid"])) for f in funding if f["agent"] == agent), 0.0),
            "funding_received": next((_plain(f["received"]) for f in funding if f["agent"] == agent), 0.0),
            "time_in_state": {s["state"]: int(s["bars"]) for s in states if s["agent"] == agent},
            "transitions": [
                {**t, "ts": _iso(t["ts"])} for t in transitions if t["agent"] == agent],
            "metrics": metrics,
        }
    return out


def _plain(v: Any) -> Any:
    if isinstance(v, datetime):  # the views' UTC timestamps
        return v.strftime("%Y-%m-%d %H:%M")
    return json_value(float(v) if hasattr(v, "__float__") and not isinstance(v, bool | int) else v)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.2f}%"


def _num(v: Any) -> str:
    return "-" if v is None else f"{float(v):,.2f}"


def render(summary: dict[str, Any], run_dir: Path, max_transitions: int = 25) -> str:
    lines: list[str] = []
    for agent, a in summary["agents"].items():
        lines += [
            f"== {agent} ==",
            f"  trades {a.get('trades', 0)}   win rate {_pct(a.get('win_rate'))}   "
            f"max drawdown {_pct(a.get('max_drawdown'))}" + _when(a.get("max_drawdown_ts")),
        ]
        if a.get("metrics"):
            lines.append(format_trading_metrics(a["metrics"]))
        else:
            lines.append(f"  return {_pct(a.get('return'))}")
        lines += [
            f"  net pnl {_num(a.get('net_pnl'))}   fees {_num(a.get('fees'))}   funding paid "
            f"{_num(a['funding_paid'])}   received {_num(a['funding_received'])}",
            "  time in state (bars): " + ", ".join(f"{s} {n}" for s, n in a["time_in_state"].items()),
            f"  transitions ({len(a['transitions'])}):",
        ]
        counts: dict[tuple[str, str, str], int] = {}
        for t in a["transitions"]:
            key = (t["source"], t["dest"], t["trigger"])
            counts[key] = counts.get(key, 0) + 1
        lines += [f"    {n:>4} x {src} -> {dst}  [{trig}]" for (src, dst, trig), n in counts.items()]
        frequent = set(summary.get("exploring_states", ()))
        notable = [t for t in a["transitions"] if not frequent & {t["source"], t["dest"]}]
        if notable:
            lines.append("  risk-mode moves (exploration aside), with the guards that fired:")
        lines += [f"    {t['ts']}  {t['source']} -> {t['dest']}  {t['reason']}" for t in notable[:max_transitions]]
        if len(notable) > max_transitions:
            lines.append(f"    ... {len(notable) - max_transitions} more: ratchet-ledger {run_dir} --view breaker")
    lines.append(_data_issues_line(summary.get("data_issues", {}), run_dir))
    lines += [f"run folder: {run_dir}", f"ledger:     {summary['ledger']}"]
    return "\n".join(lines)


def _when(ts: str | None) -> str:
    return f" (at {ts})" if ts else ""


def _data_issues_line(issues: dict[str, int], run_dir: Path) -> str:
    """Gaps and duplicates the loader skipped (market.on_gap=skip), counted by kind, and where to read them."""
    if not issues:
        return "data issues: none"
    counts = ", ".join(f"{n} {kind}" for kind, n in issues.items())
    query = shlex.quote("SELECT * FROM data_issues")
    return f"data issues: {counts}; read them: ratchet-ledger {shlex.quote(str(run_dir))} --sql {query}"


def write_summary(summary: dict[str, Any], run_dir: Path) -> Path:
    path = run_dir / "summary.json"
    path.write_text(json.dumps(json_value(summary), indent=2, default=str, allow_nan=False) + "\n")
    return path
