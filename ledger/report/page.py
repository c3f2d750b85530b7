"""One run's report: every chart and table on one self-contained HTML page in its run folder."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ledger.report import charts, data, markup, tables
from ledger.report.metrics import trading_metrics

REPORT_FILE = "report.html"


def _or_absent(chart: charts.Chart | None, title: str, why: str) -> str:
    return markup.chart(chart) if chart is not None else markup.absent(title, why)


def report_html(run_dir: Path) -> str:
    """The report of one run folder, read from its ledger."""
    with data.open_run(run_dir) as (con, info):
        metrics = trading_metrics(con, info)
        drawdown = data.records(con, "SELECT max_drawdown, max_drawdown_ts FROM max_drawdown")
        curve = data.equity_curve(con)
        trades = data.trades(con)
        states = data.state_segments(curve["ts"], curve["state"])
        moves = data.breaker(con)
        breaker_states = data.tagged_states(con, "breaker")
        start_ts, end_ts = (int(curve["ts"][0]), int(curve["ts"][-1])) if len(curve["ts"]) else (0, 0)
        retrains = data.adjustments_of(con, "model_retrain")
        learning = [
            charts.ensemble_weights_chart(data.adjustments_of(con, "ensemble_weights")),
            charts.gate_threshold_chart(data.adjustments_of(con, "gate_threshold"), start_ts, end_ts),
            charts.retrains_chart(retrains),
            charts.hit_rate_chart(data.hit_rates(con)),
        ]
        model_rows = data.models(con)
        where = str(info.run_dir)
        sections = {
            "summary": ("Summary", [
                markup.table(tables.headline(info, metrics, drawdown[0] if drawdown else None)),
                markup.table(tables.grouped("pair", "Per pair", metrics["pairs"])),
                markup.table(tables.grouped("exit_reason", "Exit reasons", metrics["exit_reasons"])),
            ]),
            "timeline": ("Equity, drawdown and state", [
                _or_absent(charts.timeline(curve, trades, states),
                           "Equity, drawdown and state", "The ledger holds no equity marks yet."),
            ]),
            "risk": ("Risk", [
                _or_absent(charts.kelly_chart(data.kelly(con)), "Kelly risk fraction and its inputs",
                           "No Kelly-sized risk in this run (the agent never earned it)."),
                _or_absent(charts.breaker_chart(curve, states, moves, breaker_states), "Breaker trips and cooldowns",
                           "The breaker never tripped."),
            ]),
            "regimes": ("Regimes", [
                _or_absent(charts.regime_chart(data.regime_segments(con, start_ts, end_ts)), "Regime labels",
                           "No regime labels in the ledger."),
            ]),
            "trades": ("Trades", [
                markup.table(tables.performance(con, "mode_performance", "mode", "Trades by mode")),
                markup.table(tables.performance(con, "state_performance", "state", "Performance by state at entry")),
                markup.table(tables.time_in_state(con)),
            ]),
            "transitions": ("Transitions", [markup.table(t) for t in tables.transitions(con, where)]),
            "adjustments": ("Learning adjustments", [markup.table(t) for t in tables.adjustments(con, where)]),
        }
        if any(learning) or model_rows:
            sections["learning"] = ("Models and the ensemble", [markup.chart(c) for c in learning if c is not None]
                                    + ([markup.table(tables.models(model_rows))] if model_rows else []))
    order = ["summary", "timeline", "risk", "regimes", "learning", "trades", "transitions", "adjustments"]
    present = [key for key in order if key in sections]
    nav = "<nav>" + "".join(f"<a href=\"#{k}\">{escape(sections[k][0])}</a>" for k in present) + "</nav>"
    header = (f"<h1>{escape(info.agent)} on {escape(info.market)}: run report</h1>"
              f"<p class=\"meta\">run folder <code>{escape(where)}</code>, ledger <code>{escape(info.ledger_path.name)}"
              f"</code>, run id {escape(info.run_id)}. Times are UTC. Every figure is read from the ledger"
              + (f" ({escape(info.notice)})" if info.notice else "") + ".</p>")
    body = [header, nav] + [f"<section id=\"{k}\"><h2>{escape(sections[k][0])}</h2>{''.join(sections[k][1])}"
                            "</section>" for k in present]
    return markup.page(f"{info.agent} report ({info.run_dir.name})", body)


def write_report(run_dir: Path) -> Path:
    """Write `report.html` into the run folder; returns its path."""
    run_dir = Path(run_dir)
    folder = run_dir.parent if run_dir.is_file() else run_dir
    path = folder / REPORT_FILE
    path.write_text(report_html(run_dir), encoding="utf-8")
    return path
