"""The agent's two hooks for the optimiser: a job on its clock, and new parameters at a bar boundary."""

from __future__ import annotations

from machine.compose import compose_run
from machine.engine import load_run_market
from machine.optimise.backtest import Backtest
from machine.optimise.space import merged


def test_replacing_the_signal_rebuilds_it_at_that_bar_and_keeps_the_other_components(tmp_path):
    cfg = compose_run("agent=futures", "market=perp_1h", "market.start=2023-08-01", "market.end=2023-11-01")
    market = load_run_market(cfg)
    backtest = Backtest(cfg, cfg.agent.components, market, market.trade_from, len(market), leaders={},
                        artifacts_dir=tmp_path)
    half = market.trade_from + (len(market) - market.trade_from) // 2
    backtest.advance(half)
    agent, switched = backtest.agent, int(market.ts[half])  # the bar boundary: bar ``half`` closes after it
    before = dict(agent.components)
    agent.replace_components({"signal": merged(cfg.agent.components, {"signal.fast": 7, "signal.slow": 30})["signal"]})
    assert agent.components["signal"] is not before["signal"]
    assert all(agent.components[n] is before[n] for n in before if n != "signal")  # what they learned stays
    backtest.advance(len(market))
    crossed = [(ts, reason) for ts, reason in backtest.tape.entries if "crossed" in reason]
    old = [reason for ts, reason in crossed if ts <= switched]
    new = [reason for ts, reason in crossed if ts > switched]
    assert old and all(r.startswith("ema20 crossed") and "ema50" in r for r in old)
    assert new and all(r.startswith("ema7 crossed") and "ema30" in r for r in new)  # whichever state decided
