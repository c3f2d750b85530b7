"""Trials and shadows are the agent itself, muted: a backtest steps the bars as the engine does, and a
canary of two shadows promotes a better candidate and rejects a deliberately bad one, on real bars."""

from __future__ import annotations

import calendar
import time

import duckdb
import pytest

from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from machine.optimise.backtest import Backtest
from machine.optimise.canary import Canary
from machine.optimise.space import merged
from tests.support.perturb import bar_closing_at

FUTURES_SUMMER = ("agent=futures", "market=perp_1h", "market.start=2023-06-01", "market.end=2023-08-01")
BETTER = {"signal.fast": 11, "signal.slow": 48, "atr_exits.trailing_atr": 2.4, "atr_exits.stop_atr.normal": 3.0,
          "regime_gate.trade_with_trend": False}
CHURN = {"signal.fast": 2, "signal.slow": 3}  # an EMA 2/3 cross: trades nearly every swing, pays the fees


def _ms(utc: str) -> int:
    return calendar.timegm(time.strptime(utc, "%Y-%m-%d %H:%M")) * 1000


@pytest.fixture(scope="module")
def summer():
    cfg = compose_run(*FUTURES_SUMMER)
    return cfg, load_run_market(cfg)


def test_a_backtest_marks_the_equity_and_closes_the_trades_the_engine_does(summer, tmp_path):
    cfg, market = summer
    replay = run_replay(cfg, tmp_path / "run", market=market)
    con = duckdb.connect(str(replay.ledger_path), read_only=True)
    try:
        equity = [e for (e,) in con.execute("SELECT equity FROM equity ORDER BY ts").fetchall()]
        trades = con.execute("SELECT trade_id, pnl FROM trades WHERE exit_reason <> 'end_of_data' "
                             "ORDER BY trade_id").fetchall()
    finally:
        con.close()
    backtest = Backtest(cfg, cfg.agent.components, market, market.trade_from, len(market), leaders={},
                        artifacts_dir=tmp_path)
    backtest.advance(len(market))
    assert len(trades) > 20
    assert backtest.tape.marks().tolist()[:-1] == equity[:-1]  # the engine closes what is open at the last bar
    assert sorted((t.trade_id, t.pnl) for t in backtest.tape.trades) == trades
    assert not (tmp_path / "ledger.duckdb").exists()


@pytest.mark.parametrize(("candidate", "promoted"), [(BETTER, True), (CHURN, False)])
@pytest.mark.parametrize("week", ["2023-06-29 01:00", "2023-07-06 01:00"])
def test_a_canary_promotes_a_better_candidate_and_rejects_a_churning_one(summer, tmp_path, candidate, promoted, week):
    cfg, market = summer
    start = bar_closing_at(market, _ms(week)) + 1
    end = start + 7 * 24 - 1
    canary = Canary(cfg, merged(cfg.agent.components, candidate), cfg.agent.components, market, start,
                    int(market.ts[end]) + market.timeframe_ms, leaders={}, artifacts_dir=tmp_path)
    canary.advance(market, end)
    verdict = canary.verdict("return_over_drawdown", 0.25)
    assert verdict.challenger_wins is promoted
    assert verdict.challenger.bars == verdict.incumbent.bars == 7 * 24
    if promoted:
        assert verdict.lead > 0.25 and verdict.challenger.total_return > verdict.incumbent.total_return
    else:
        assert verdict.challenger.trades > 3 * verdict.incumbent.trades and verdict.challenger.total_return < 0


def test_shadows_stepped_bar_by_bar_earn_what_shadows_stepped_in_one_go_earn(summer, tmp_path):
    cfg, market = summer
    start = bar_closing_at(market, _ms("2023-07-06 01:00")) + 1
    end = start + 7 * 24 - 1
    verdicts = []
    for steps in ([end], range(start, end + 1)):
        canary = Canary(cfg, merged(cfg.agent.components, BETTER), cfg.agent.components, market, start,
                        int(market.ts[end]) + market.timeframe_ms, leaders={}, artifacts_dir=tmp_path)
        for i in steps:
            canary.advance(market, i)
        verdicts.append(canary.verdict("sharpe", 0.0))
    assert verdicts[0] == verdicts[1]
