"""`ratchet-report` on real replays of the bundled Binance data: one self-contained page per run,
every chart drawn with data in headless Chromium, the figures a freqtrade user reads first, and a
comparison page for a sweep."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from components.market.loader import load_market
from ledger.cli import connect_sweep
from ledger.report import charts, data, tables
from ledger.report.cli import main as report_main
from ledger.report.markup import plotly_js
from ledger.report.metrics import format_trading_metrics, run_metrics, trading_metrics
from ledger.report.page import report_html
from machine.compose import compose_run
from machine.engine import run_replay
from tests.support.browser import PLOTLY_CHARTS, browser_page
from tests.support.cli import ratchet

HOUR_MS = 3_600_000


def _rendered(report: Path, screenshot: Path) -> tuple[list[dict], list[str]]:
    """Open a page in headless Chromium: its plotly charts, console errors, and a screenshot."""
    with browser_page() as browser:
        browser.page.goto(report.as_uri())
        browser.page.wait_for_load_state("load")
        found = browser.page.evaluate(PLOTLY_CHARTS)
        browser.page.screenshot(path=str(screenshot), full_page=True)
        return found, browser.errors


def _scalar(ledger: Path, sql: str):
    con = connect_sweep([ledger])
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_the_report_is_one_self_contained_page_written_into_the_run_folder(futures_run, capsys):
    assert report_main([str(futures_run.run_dir)]) == 0
    report = futures_run.run_dir / "report.html"
    assert capsys.readouterr().out.strip() == str(report)
    html = report.read_text()
    assert html.count(plotly_js()) == 1  # plotly.js embedded once, drawn by every chart
    assert html.count("Plotly.newPlot(") == 4
    # offline: no script, stylesheet or font is fetched from anywhere
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", html)
    assert report.stat().st_size < 8_000_000


def test_every_chart_of_a_futures_report_is_drawn_with_data_in_chromium(futures_run, tmp_path):
    report = futures_run.run_dir / "report.html"
    report.write_text(report_html(futures_run.run_dir))
    shot = tmp_path / "futures_report.png"
    found, errors = _rendered(report, shot)
    assert errors == []
    # this quarter has Kelly steps, a breaker trip and regime changes, so each gets its chart
    assert _scalar(futures_run.ledger_path, "SELECT count(*) FROM kelly") > 0
    assert _scalar(futures_run.ledger_path, "SELECT count(*) FROM breaker") > 0
    assert {c["id"] for c in found} == {"chart-timeline", "chart-kelly", "chart-breaker", "chart-regimes"}
    for chart in found:
        assert chart["rendered"] and chart["traces"] > 0 and all(n > 0 for n in chart["points"]), chart
    assert shot.stat().st_size > 50_000


def test_every_chart_of_a_hybrid_report_is_drawn_with_data_in_chromium(hybrid_run, tmp_path):
    report = hybrid_run.run_dir / "report.html"
    report.write_text(report_html(hybrid_run.run_dir))
    shot = tmp_path / "hybrid_report.png"
    found, errors = _rendered(report, shot)
    assert errors == []
    ids = {c["id"] for c in found}
    assert {"chart-timeline", "chart-regimes", "chart-ensemble_weights", "chart-retrains",
            "chart-hit_rates"} <= ids
    assert ("chart-gate_threshold" in ids) == (
        _scalar(hybrid_run.ledger_path, "SELECT count(*) FROM adjustments WHERE kind = 'gate_threshold'") > 0)
    for chart in found:
        assert chart["rendered"] and chart["traces"] > 0 and all(n > 0 for n in chart["points"]), chart
    assert shot.stat().st_size > 50_000


def test_the_hybrid_learning_charts_hold_every_update_retrain_and_model(hybrid_run):
    with data.open_run(hybrid_run.run_dir) as (con, _):
        weights = charts.ensemble_weights_chart(data.adjustments_of(con, "ensemble_weights"))
        retrains = charts.retrains_chart(data.adjustments_of(con, "model_retrain"))
        hit = charts.hit_rate_chart(data.hit_rates(con))
        n_weights, n_retrains, promoted = con.execute(
            "SELECT count(*) FILTER (WHERE kind = 'ensemble_weights'), count(*) FILTER (WHERE kind = 'model_retrain'),"
            " count(*) FILTER (WHERE kind = 'model_retrain' AND (after->>'promoted')::BOOLEAN) "
            "FROM adjustments").fetchone()
    assert {t.name for t in weights.figure.data} == {"attention_mlp", "cnn", "lstm", "transformer"}
    assert all(len(t.x) == n_weights for t in weights.figure.data)
    assert n_retrains >= 2 and len(retrains.figure.data[0].x) == n_retrains
    assert f"{n_retrains} retrains, {promoted} promoted" in retrains.note
    bars = hit.figure.data[0]
    assert list(bars.x) == ["ensemble", "attention_mlp", "cnn", "lstm", "transformer"]
    assert all(0 < rate < 1 for rate in bars.y)


def test_the_timeline_marks_every_trade_and_keeps_the_equity_and_drawdown_extremes(hybrid_run):
    with data.open_run(hybrid_run.run_dir) as (con, _):
        curve, trades = data.equity_curve(con), data.trades(con)
        worst = con.execute("SELECT max_drawdown FROM max_drawdown").fetchone()[0]
        chart = charts.timeline(curve, trades, data.state_segments(curve["ts"], curve["state"]))
    by_name = {t.name: t for t in chart.figure.data}
    equity, drawdown = by_name["equity"], by_name["drawdown"]
    assert len(curve["ts"]) > 10_000 and len(equity.x) < len(curve["ts"]) / 2  # decimated
    assert max(equity.y) == curve["equity"].max() and min(equity.y) == curve["equity"].min()
    assert -min(drawdown.y) == pytest.approx(worst)
    assert equity.x[0] == curve["ts"][0] and equity.x[-1] == curve["ts"][-1]
    assert len(by_name["entries"].x) == len(by_name["exits"].x) == len(trades) > 0


def test_the_state_lanes_cover_the_run_without_gaps_in_the_order_states_were_entered(futures_run):
    with data.open_run(futures_run.run_dir) as (con, _):
        curve = data.equity_curve(con)
        first_entered = [s for (s,) in con.execute(
            "SELECT state FROM equity GROUP BY state ORDER BY min(ts)").fetchall()]
    segments = data.state_segments(curve["ts"], curve["state"])
    assert segments[0].start == curve["ts"][0] and segments[-1].end == curve["ts"][-1]
    assert all(a.end == b.start and a.label != b.label for a, b in zip(segments, segments[1:], strict=False))
    assert list(dict.fromkeys(s.label for s in segments)) == first_entered


def test_the_regime_lanes_run_from_the_first_mark_to_the_last_and_change_where_the_ledger_says(futures_run):
    with data.open_run(futures_run.run_dir) as (con, _):
        first, last = con.execute("SELECT min(ts), max(ts) FROM equity").fetchone()
        segments = data.regime_segments(con, first, last)
        rows = con.execute("SELECT epoch_ms(ts), from_regime, to_regime FROM regimes ORDER BY ts").fetchall()
    lanes = {}
    for s in segments:
        lanes.setdefault(s.lane, []).append(s)
    expected: dict[str, list[int]] = {}
    for ts, before, after in rows:
        before, after = json.loads(before), json.loads(after)
        for facet in ("trend", "volatility"):
            if before[facet] != after[facet]:
                expected.setdefault(f"{after['symbol']} {facet}", []).append(ts)
    assert set(lanes) == set(expected) and len(lanes) == 4  # trend and volatility of BTC and ETH
    for lane, spans in lanes.items():
        assert spans[0].start == first and spans[-1].end == last
        assert all(a.end == b.start and a.label != b.label for a, b in zip(spans, spans[1:], strict=False))
        assert [s.start for s in spans[1:]] == expected[lane]


def test_sharpe_and_sortino_are_annualised_by_the_bar_frequency(futures_run):
    with data.open_run(futures_run.run_dir) as (con, info):
        m = trading_metrics(con, info)
        equity = [e for (e,) in con.execute("SELECT equity FROM equity ORDER BY ts").fetchall()]
    returns = [b / a - 1 for a, b in zip(equity, equity[1:], strict=False)]
    per_year = 365.25 * 24  # hourly marks
    assert m["bar_ms"] == HOUR_MS and m["marks_per_year"] == pytest.approx(per_year)
    assert m["sharpe"] == pytest.approx(statistics.mean(returns) / statistics.stdev(returns) * per_year ** 0.5)
    downside = (sum(min(r, 0) ** 2 for r in returns) / len(returns)) ** 0.5
    assert m["sortino"] == pytest.approx(statistics.mean(returns) / downside * per_year ** 0.5)


def test_per_pair_and_exit_reason_tables_add_up_to_the_ledger_statistics(futures_run):
    with data.open_run(futures_run.run_dir) as (con, info):
        m = trading_metrics(con, info)
        trades, net, wins, losses = con.execute(
            "SELECT trades, net_pnl, total_wins, total_losses FROM stats").fetchone()
        symbols = {s for (s,) in con.execute("SELECT DISTINCT symbol FROM trades").fetchall()}
        durations = [b - a for a, b in con.execute("SELECT entry_ts, exit_ts FROM trades").fetchall()]
    pairs = {r["pair"]: r for r in m["pairs"]}
    assert set(pairs) == symbols | {"TOTAL"}
    assert sum(pairs[s]["trades"] for s in symbols) == pairs["TOTAL"]["trades"] == trades == m["trades"]
    assert sum(pairs[s]["total_profit"] for s in symbols) == pytest.approx(net)
    assert sum(r["trades"] for r in m["exit_reasons"]) == trades
    assert sum(r["total_profit"] for r in m["exit_reasons"]) == pytest.approx(net)
    assert m["profit_factor"] == pytest.approx(wins / losses)
    assert m["avg_duration_ms"] == pytest.approx(statistics.mean(durations))


def test_buy_and_hold_is_the_same_periods_close_to_close_return_of_each_symbol(futures_run):
    with data.open_run(futures_run.run_dir) as (con, info):
        m = trading_metrics(con, info)
    market = info.config["market"]
    bars = load_market(market["kind"], market["symbols"], market["timeframe"], on_gap="skip")
    expected = {}
    for symbol, series in bars.symbols.items():
        closes_at = series.bars.ts + HOUR_MS  # the close a mark at bar close time sees
        first = series.bars.close[np.searchsorted(closes_at, m["start_ts"])]
        last = series.bars.close[np.searchsorted(closes_at, m["end_ts"])]
        expected[symbol] = last / first - 1
    assert m["buy_and_hold_symbols"] == pytest.approx(expected)
    assert m["buy_and_hold"] == pytest.approx(sum(expected.values()) / len(expected))
    assert m["buy_and_hold_notes"] == []


def test_the_terminal_text_of_the_figures_shows_what_the_report_shows(futures_run):
    m = run_metrics(futures_run.run_dir)
    text = format_trading_metrics(m)
    assert f"return {100 * m['return']:.2f}%   buy and hold {100 * m['buy_and_hold']:.2f}%" in text
    assert f"Sharpe {m['sharpe']:.3f}   Sortino {m['sortino']:.3f}" in text
    assert "annualised x sqrt(8,766 marks a year)" in text
    lines = text.splitlines()
    for row in m["pairs"] + m["exit_reasons"]:
        name = row.get("pair") or row["exit_reason"]
        assert any(line.split()[:2] == [name, str(row["trades"])] for line in lines), name


def test_buy_and_hold_says_why_it_is_missing_when_the_candles_are_not_there(futures_run, tmp_path):
    with data.open_run(futures_run.run_dir) as (con, info):
        config = {**info.config, "market": {**info.config["market"], "data_dir": str(tmp_path)}}
        m = trading_metrics(con, replace(info, config=config))
    assert m["buy_and_hold"] is None
    assert len(m["buy_and_hold_notes"]) == 2 and all(str(tmp_path) in n for n in m["buy_and_hold_notes"])


def test_the_adjustments_table_lists_each_kind_up_to_a_cap_and_counts_the_rest(futures_run):
    with data.open_run(futures_run.run_dir) as (con, _):
        counts = dict(con.execute("SELECT kind, count(*) FROM adjustments GROUP BY kind").fetchall())
        by_kind, listed = tables.adjustments(con, "RUN", per_kind=10)
    assert counts["regime_change"] > 10
    assert len(listed.rows) == sum(min(n, 10) for n in counts.values())
    assert [row[0] for row in by_kind.rows] and {row[0] for row in by_kind.rows} == set(counts)
    for kind, n in counts.items():
        assert (f"{n - 10:,} more {kind} hidden" in listed.note) == (n > 10)
    times = [row[0] for row in listed.rows]
    assert times == sorted(times)


def test_a_run_stopped_in_warmup_gets_a_report_that_says_what_it_lacks(tmp_path):
    result = run_replay(compose_run("experiment=futures", "market.start=2023-01-01", "market.end=2023-02-01"),
                        tmp_path / "early", stop_after_bars=48)
    html = report_html(result.run_dir)
    assert "No Kelly-sized risk in this run" in html and "The breaker never tripped." in html
    assert 'id="chart-timeline"' in html


def test_a_sweep_gets_a_comparison_page_whose_rows_say_which_value_they_ran_and_link_their_reports(tmp_path):
    sweep = tmp_path / "sweep"
    done = ratchet("-m", "experiment=futures", "market.start=2023-01-01", "market.end=2023-03-01",
                   "agent.components.kelly.kelly_fraction=0.25,0.5", f"hydra.sweep.dir={sweep}")
    assert done.returncode == 0, done.stderr
    printed = subprocess.run([sys.executable, "-c", "from ledger.report.cli import main; raise SystemExit(main())",
                              str(sweep)], capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr
    runs = sorted(p for p in sweep.iterdir() if (p / "ledger.duckdb").is_file())
    assert printed.stdout.split() == [str(r / "report.html") for r in runs] + [str(sweep / "comparison.html")]
    shot = tmp_path / "comparison.png"
    with browser_page() as browser:
        browser.page.goto((sweep / "comparison.html").as_uri())
        header = browser.page.locator("#table-runs th").all_inner_texts()
        rows = [browser.page.locator("#table-runs tbody tr").nth(i).locator("td").all_inner_texts()
                for i in range(len(runs))]
        found = browser.page.evaluate(PLOTLY_CHARTS)
        browser.page.screenshot(path=str(shot), full_page=True)
        browser.page.click(f"text={runs[1].name}")
        browser.page.wait_for_selector("#chart-timeline .plot-container")
        landed = browser.page.url
        errors = browser.errors
    assert errors == []
    assert header[:2] == ["run", "agent.components.kelly.kelly_fraction"]
    assert [row[:2] for row in rows] == [[runs[0].name, "0.25"], [runs[1].name, "0.5"]]
    assert [c["id"] for c in found] == ["chart-returns"] and found[0]["points"] and min(found[0]["points"]) > 0
    assert landed == (runs[1] / "report.html").as_uri()


def test_a_comparison_without_hydra_overrides_shows_the_config_keys_that_differ(replay, tmp_path, capsys):
    a = replay("experiment=futures", "market.start=2023-01-01", "market.end=2023-02-01", run_dir=tmp_path / "a")
    b = replay("experiment=futures", "market.start=2023-01-01", "market.end=2023-02-01",
               "agent.components.fixed_risk.risk=0.002", run_dir=tmp_path / "b")
    out = tmp_path / "both.html"
    assert report_main([str(a.run_dir), str(b.run_dir), "--out", str(out)]) == 0
    html = out.read_text()
    assert "<th>agent.components.fixed_risk.risk</th>" in html
    assert re.search(r'<a href="a/report.html">a</a></td><td>0.003</td>', html)
    assert re.search(r'<a href="b/report.html">b</a></td><td>0.002</td>', html)
    assert capsys.readouterr().out.split()[-1] == str(out)


@pytest.mark.parametrize(("args", "says"), [
    (["{tmp}/nowhere"], "run folder {tmp}/nowhere does not exist"),
    (["{tmp}"], "no ledger.duckdb in {tmp}"),
])
def test_a_bad_run_folder_is_one_line_on_stderr_and_exit_2(args, says, tmp_path):
    done = subprocess.run([sys.executable, "-c", "from ledger.report.cli import main; raise SystemExit(main())",
                           *[a.format(tmp=tmp_path) for a in args]], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.startswith(f"ratchet-report: {says.format(tmp=tmp_path)}")
    assert len(done.stderr.strip().splitlines()) == 1
