"""Several runs side by side (a sweep, or runs named together): one row per run with what it was
told (its Hydra overrides, or else the config keys where the runs differ) and what it did, each
row linking to that run's own report; and every run's return over time on one chart."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ledger.overrides import hydra_overrides, swept, told
from ledger.report import charts, data, fmt, markup
from ledger.report.downsample import decimate
from ledger.report.metrics import trading_metrics
from ledger.report.page import REPORT_FILE
from ledger.report.tables import Link, Table

COMPARISON_FILE = "comparison.html"
MAX_DIFF_KEYS = 12


@dataclass(frozen=True)
class RunResult:
    """One run's row: where it is, what it was told, what it did."""

    run_dir: Path
    agent: str
    market: str
    overrides: list[str] | None
    config: dict[str, Any]
    metrics: dict[str, Any]
    max_drawdown: float | None
    curve: dict[str, np.ndarray]


def read_result(run_dir: Path) -> RunResult:
    with data.open_run(run_dir) as (con, info):
        metrics = trading_metrics(con, info)
        dd = con.execute("SELECT max(max_drawdown) FROM max_drawdown").fetchone()[0]
        curve = data.columns(con, "SELECT ts, equity FROM equity ORDER BY ts")
    return RunResult(info.run_dir, info.agent, info.market, hydra_overrides(info.run_dir), info.config, metrics,
                     dd, curve)


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def config_differences(configs: Sequence[dict[str, Any]]) -> list[str]:
    """The dotted config keys whose values are not the same in every run, in sorted order."""
    flat = [_flatten(c) for c in configs]
    keys = sorted(set().union(*flat)) if flat else []
    return [k for k in keys if len({repr(f.get(k)) for f in flat}) > 1]


def _override_columns(results: Sequence[RunResult]) -> tuple[list[str], list[list[str]], str]:
    """Columns saying what each run was told: the override keys whose values differ between runs
    (those all runs share are named in the note), or else the differing config keys."""
    if results and all(r.overrides is not None for r in results):
        runs = [told(r.overrides or []) for r in results]
        keys = list(dict.fromkeys(k for t in runs for k in t))
        varied = [s.key for s in swept(runs)] if len(results) > 1 else keys
        shared = [f"{k}={runs[0][k]}" for k in keys if k not in varied]
        note = "the Hydra overrides that differ between runs" + (f"; all runs: {' '.join(shared)}" if shared else "")
        return varied, [[t.get(k, "-") for k in varied] for t in runs], note
    keys = config_differences([r.config for r in results])
    hidden = len(keys) - MAX_DIFF_KEYS
    shown = keys[:MAX_DIFF_KEYS]
    flat = [_flatten(r.config) for r in results]
    values = [[str(f.get(k, "-")) for k in shown] for f in flat]
    note = "the config keys where the runs differ" + (f" ({hidden} more not shown)" if hidden > 0 else "")
    return shown, values, note


def comparison_table(results: Sequence[RunResult], out_dir: Path) -> Table:
    keys, values, told = _override_columns(results)
    figures = ("agent", "market", "trades", "win rate", "return", "buy and hold", "max drawdown", "Sharpe",
               "Sortino", "profit factor", "fees", "funding")
    rows = []
    for result, told_values in zip(results, values, strict=True):
        m = result.metrics
        href = os.path.relpath(result.run_dir / REPORT_FILE, out_dir)
        rows.append([Link(result.run_dir.name, href), *told_values, result.agent, result.market, str(m["trades"]),
                     fmt.pct(m["win_rate"]), fmt.pct(m["return"]), fmt.pct(m["buy_and_hold"]),
                     fmt.pct(result.max_drawdown), fmt.ratio(m["sharpe"]), fmt.ratio(m["sortino"]),
                     fmt.ratio(m["profit_factor"]), fmt.num(m["fees"]), fmt.num(m["funding"])])
    numeric = (False,) * (1 + len(keys) + 2) + (True,) * (len(figures) - 2)
    return Table("runs", "Runs", ("run", *keys, *figures), rows,
                 f"Columns after the run: {told}. Each run's name links to its report.", numeric)


def returns_chart(results: Sequence[RunResult]) -> charts.Chart | None:
    fig = go.Figure()
    for i, r in enumerate(results):
        ts, equity = r.curve["ts"].astype(np.float64), r.curve["equity"].astype(float)
        if len(equity) == 0 or equity[0] == 0:
            continue
        growth = equity / equity[0] - 1
        keep = decimate(growth)
        fig.add_trace(go.Scatter(x=ts[keep], y=growth[keep], mode="lines", name=r.run_dir.name,
                                 line={"color": charts.PALETTE[i % len(charts.PALETTE)], "width": 1.5}))
    if not fig.data:
        return None
    fig.update_yaxes(title_text="return", tickformat=".1%")
    fig.update_layout(template="plotly_white", height=420, margin={"l": 60, "r": 20, "t": 30, "b": 40},
                      legend={"orientation": "h", "y": -0.15})
    fig.update_xaxes(type="date")
    return charts.Chart("returns", "Return over time", fig, "Each run's equity over its first mark.")


def comparison_html(run_dirs: Sequence[Path], out_dir: Path) -> str:
    results = [read_result(Path(d)) for d in run_dirs]
    chart = returns_chart(results)
    body = [f"<h1>{len(results)} runs compared</h1>",
            f"<p class=\"meta\">from <code>{escape(str(out_dir))}</code>. Times are UTC.</p>",
            markup.table(comparison_table(results, out_dir), scroll_after=1000),
            markup.chart(chart) if chart else markup.absent("Return over time", "No equity marks in any run.")]
    return markup.page(f"{len(results)} runs compared", body)


def write_comparison(run_dirs: Sequence[Path], out: Path) -> Path:
    out.write_text(comparison_html(run_dirs, out.parent), encoding="utf-8")
    return out
