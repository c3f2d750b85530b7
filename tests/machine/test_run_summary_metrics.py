"""The end-of-run summary gives what a freqtrade user reads first, with the report's own figures."""

from __future__ import annotations

import json

import pytest

from ledger.report import fmt
from ledger.report.metrics import run_metrics
from machine.report import render, summarize, write_summary

QUARTER = ("experiment=futures", "market.start=2023-01-01", "market.end=2023-04-01")


@pytest.fixture(scope="module")
def quarter(tmp_path_factory):
    from machine.compose import compose_run
    from machine.engine import run_replay

    result = run_replay(compose_run(*QUARTER), tmp_path_factory.mktemp("futures") / "run")
    return result.run_dir, summarize(result.ledger_path)


def test_the_summary_shows_per_pair_and_exit_reason_tables_with_the_reports_figures(quarter):
    run_dir, summary = quarter
    metrics = run_metrics(run_dir)

    text = render(summary, run_dir)

    assert metrics["trades"] > 0 and len(metrics["pairs"]) == 3  # BTC, ETH and the total
    pairs = text.split("  per pair:\n")[1].split("  exit reasons:\n")[0].splitlines()[2:]
    assert [line.split()[0] for line in pairs] == [p["pair"] for p in metrics["pairs"]]
    assert [line.split()[3] for line in pairs] == [fmt.num(p["total_profit"]) for p in metrics["pairs"]]
    reasons = text.split("  exit reasons:\n")[1].splitlines()[2:2 + len(metrics["exit_reasons"])]
    assert [(line.split()[0], int(line.split()[1])) for line in reasons] == [
        (r["exit_reason"], r["trades"]) for r in metrics["exit_reasons"]]
    assert sum(r["trades"] for r in metrics["exit_reasons"]) == metrics["trades"]


def test_the_summary_puts_buy_and_hold_beside_the_agents_return_with_sharpe_sortino_and_profit_factor(quarter):
    run_dir, summary = quarter
    metrics = run_metrics(run_dir)

    lines = render(summary, run_dir).splitlines()

    said = f"  return {fmt.pct(metrics['return'])}   buy and hold {fmt.pct(metrics['buy_and_hold'])}"
    assert any(line.startswith(said) for line in lines)
    assert metrics["buy_and_hold"] is not None and set(metrics["buy_and_hold_symbols"]) == {
        "BTC/USDT:USDT", "ETH/USDT:USDT"}
    assert any(line.startswith(f"  Sharpe {fmt.ratio(metrics['sharpe'])}   Sortino {fmt.ratio(metrics['sortino'])}")
               for line in lines)
    assert (f"  profit factor {fmt.ratio(metrics['profit_factor'])}   avg trade duration "
            f"{fmt.duration(metrics['avg_duration_ms'])}") in lines


def test_the_max_drawdown_line_says_when_in_utc(quarter):
    run_dir, summary = quarter
    futures = summary["agents"]["futures"]

    first = render(summary, run_dir).splitlines()[1]

    assert first.endswith(f"max drawdown {fmt.pct(futures['max_drawdown'])} (at {futures['max_drawdown_ts']})")
    assert futures["max_drawdown_ts"].startswith("2023-")


def test_summary_json_is_strict_json_holding_the_same_metrics(quarter, tmp_path):
    run_dir, summary = quarter

    path = write_summary(summary, tmp_path)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in summary.json")

    stored = json.loads(path.read_text(), parse_constant=refuse)
    metrics = stored["agents"]["futures"]["metrics"]
    assert metrics["trades"] == run_metrics(run_dir)["trades"]
    assert [p["pair"] for p in metrics["pairs"]] == [p["pair"] for p in run_metrics(run_dir)["pairs"]]
    assert metrics["profit_factor"] == pytest.approx(run_metrics(run_dir)["profit_factor"])
