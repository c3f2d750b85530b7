"""The guarantees of a replay, on the bundled Binance data: deterministic, resumable, in-memory
facts equal to the ledger, and failures that fall back instead of stopping the run. Causality
(no lookahead) has its own module: test_no_lookahead.py."""

from __future__ import annotations

import duckdb
import pytest

from core.errors import ConfigError
from ledger.views import create_views
from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from tests.support.ledger_export import export

FUTURES_H1_2022 = ("experiment=futures", "market.start=2022-01-01", "market.end=2022-07-01")


def test_same_config_seed_and_data_give_an_identical_ledger(replay):
    a = replay(*FUTURES_H1_2022)
    b = replay(*FUTURES_H1_2022)
    ea, eb = export(a.ledger_path), export(b.ledger_path)
    assert len(ea["trades"]) >= 5 and len(ea["transitions"]) >= 2
    assert ea == eb


def test_in_memory_facts_equal_the_ledger_views(replay):
    result = replay("experiment=futures", "market.start=2022-01-01", "market.end=2023-01-01")
    stats = result.facts.stats
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    create_views(con)
    row = con.execute("SELECT trades, wins, losses, total_wins, total_losses, win_rate, "
                      "win_loss_ratio, kelly_edge FROM stats").fetchone()
    last_equity = con.execute("SELECT equity FROM equity ORDER BY ts DESC LIMIT 1").fetchone()[0]
    con.close()
    assert row[0] == stats.closed_trades >= 10
    assert (row[1], row[2]) == (stats.wins, stats.losses)
    assert row[3:] == pytest.approx((stats.total_wins, stats.total_losses, stats.win_rate,
                                     stats.win_loss_ratio, stats.kelly_edge))
    assert last_equity == pytest.approx(result.facts.equity)


def test_kelly_activates_only_after_the_tenth_closed_trade(replay):
    result = replay("experiment=futures", "market.start=2022-01-01", "market.end=2023-01-01")
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    first = con.execute("SELECT min(ts) FROM transitions WHERE dest = 'kelly_active'").fetchone()[0]
    closed_before = con.execute("SELECT count(*) FROM trades WHERE exit_ts <= ?", [first]).fetchone()[0]
    evidence = con.execute("SELECT evidence->>'$.\"closed_trades_at_least(10)\".closed_trades' "
                           "FROM transitions WHERE ts = ? AND dest = 'kelly_active'", [first]).fetchone()[0]
    before = con.execute("SELECT max(risk_fraction) FROM trades WHERE entry_ts < ? AND mode = 'normal'",
                         [first]).fetchone()[0]
    con.close()
    assert closed_before >= 10
    assert int(evidence) == closed_before
    assert before <= 0.003


def test_a_stopped_run_resumes_to_the_same_ledger_as_an_uninterrupted_one(tmp_path):
    cfg = compose_run(*FUTURES_H1_2022)
    market = load_run_market(cfg)
    whole = run_replay(cfg, tmp_path / "whole", market=market)
    cut = run_replay(cfg, tmp_path / "cut", market=market, stop_after_bars=len(market.ts) // 2 + 37)
    resumed = run_replay(cfg, tmp_path / "cut", market=market)
    assert resumed.resumed_from_bar is not None and resumed.resumed_from_bar <= cut.bars
    assert export(resumed.ledger_path) == export(whole.ledger_path)
    again = run_replay(cfg, tmp_path / "cut", market=market)  # complete: nothing doubled
    assert again.bars == 0 and export(again.ledger_path) == export(whole.ledger_path)


@pytest.mark.parametrize("produce", ["exception", "not_a_number"])
def test_a_failing_component_drops_the_agent_to_conservative_and_the_run_goes_on(replay, produce):
    result = replay(
        *FUTURES_H1_2022,
        "+agent.components.kelly_boom={_target_: tests.support.faults.FailingSizer, fail_on_nth_entry: 1, "
        f"produce: {produce}}}",
        "agent.machine.states.kelly_active.components=[features,regime,signal,regime_gate,kelly_boom,atr_exits]")
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    fallback = con.execute("SELECT reason, evidence->>'component' FROM adjustments "
                           "WHERE kind = 'fallback'").fetchall()
    moves = con.execute("SELECT source, dest, trigger FROM transitions "
                        "WHERE trigger = 'fall_back'").fetchall()
    last_exit = con.execute("SELECT max(exit_ts) FROM trades").fetchone()[0]
    fallback_ts = con.execute("SELECT min(ts) FROM adjustments WHERE kind = 'fallback'").fetchone()[0]
    con.close()
    assert fallback and fallback[0][1] == "kelly_boom"
    assert moves[0] == ("kelly_active", "conservative", "fall_back")
    assert last_exit > fallback_ts  # trading went on after the failure


def test_resuming_a_run_folder_under_another_config_is_refused(tmp_path):
    cfg = compose_run(*FUTURES_H1_2022)
    run_replay(cfg, tmp_path / "run", stop_after_bars=500)
    other = compose_run(*FUTURES_H1_2022, "agent.components.fixed_risk.risk=0.002")
    with pytest.raises(ConfigError, match=r"agent.components.fixed_risk.risk: 0.003 in the ledger, 0.002 now"):
        run_replay(other, tmp_path / "run")
