"""The ``optimise`` block: a search space the agent can vary, or a one-line error naming the key."""

from __future__ import annotations

import re

import pytest

from core.errors import ConfigError
from machine.compose import compose_run
from machine.optimise.space import in_force, merged
from tests.support.cli import ratchet

HYBRID = ("agent=hybrid", "market=spot_1h")


@pytest.mark.parametrize(("override", "named"), [
    ("agent.optimise.space.signal.fastt={type: int, low: 5, high: 13}",
     "agent.optimise.space.signal.fastt: agent.components.signal has no parameter 'fastt' (it has ['allow_short', "),
    ("agent.optimise.space.nope.x={type: int, low: 5, high: 13}",
     "agent.optimise.space.nope.x: the agent has no component 'nope' (it has ['atr_exits', "),
    ("agent.optimise.space.signal.fast={type: int, low: 13, high: 5}",
     "agent.optimise.space.signal.fast: empty range: low 13 is not below high 5"),
    ("agent.optimise.space.signal.fast={type: int, low: 9, high: 9}",
     "agent.optimise.space.signal.fast: empty range: low 9 is not below high 9"),
    ("agent.optimise.space.signal.fast={type: int, low: 10, high: 14}",
     "agent.optimise.space.signal.fast: the value in force 9 lies outside [10, 14]"),
    ("agent.optimise.space.signal.fast={type: float, low: 5, high: 14}",
     "agent.optimise.space.signal.fast: the value in force 9 is an integer: use type: int"),
    ("agent.optimise.space.signal.rsi_period={low: 10, high: 20}",
     "agent.optimise.space.signal.rsi_period: a range needs `type` (int, float or choice)"),
    ("agent.optimise.space.fixed_risk.risk={type: float, low: 0.001, high: 0.2}",
     "agent.optimise.space.fixed_risk.risk: 0.2 is not a value agent.components.fixed_risk.risk accepts: "
     "Input should be less than or equal to 0.05"),
    ("agent.optimise.space.fixed_risk.risk={type: float, low: 0, high: 0.01, log: true}",
     "agent.optimise.space.fixed_risk.risk: a log scale needs low > 0 (got 0)"),
    ("agent.optimise.space.ml_gate.threshold={type: float, low: 0.4, high: 0.6}",
     "agent.optimise.space.ml_gate.threshold: ml_gate learns on the agent's clock; rebuilding it"),
    ("agent.optimise.space.regime_gate.trade_with_trend={type: choice, choices: [true]}",
     "agent.optimise.space.regime_gate.trade_with_trend: a choice needs at least two `choices`"),
    ("agent.optimise.space.regime_gate.admit={type: int, low: 0, high: 1}",
     "agent.optimise.space.regime_gate.admit: the value in force is 'inside', not a number: use type: choice"),
    ("agent.optimise.trials=0", "agent.optimise.trials: Input should be greater than or equal to 1 (got 0)"),
    ("agent.optimise.objective=profit", "agent.optimise.objective: Input should be 'return_over_drawdown', 'sharpe' "
                                        "or 'return' (got 'profit')"),
])
def test_a_bad_optimise_block_is_one_line_naming_the_key(override, named):
    plus = "+" if ".space." in override else ""
    with pytest.raises(ConfigError) as err:
        compose_run(*HYBRID, plus + override)
    assert str(err.value).startswith(named), str(err.value)
    assert "\n" not in str(err.value)


def test_the_cli_refuses_a_bad_space_before_it_trades(tmp_path):
    out = ratchet(*HYBRID, "+agent.optimise.space.signal.fast={type: int, low: 10, high: 14}",
                  f"hydra.run.dir={tmp_path / 'run'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert re.search(r"ratchet: ConfigError: agent.optimise.space.signal.fast: the value in force 9 lies outside",
                     out.stderr)
    assert not (tmp_path / "run" / "ledger.duckdb").exists()


def test_nested_parameters_and_defaults_of_a_component_can_vary():
    cfg = compose_run(*HYBRID, "+agent.optimise.space.atr_exits.take_profit_atr.high={type: float, low: 4, high: 8}",
                      "+agent.optimise.space.signal.rsi_period={type: int, low: 10, high: 20}")
    space = cfg.agent.optimise.space
    assert {"atr_exits.take_profit_atr.high", "atr_exits.stop_atr.normal", "signal.rsi_period"} <= set(space)
    current = in_force(space, cfg.agent.components)
    assert current["atr_exits.take_profit_atr.high"] == 6.0 and current["signal.rsi_period"] == 14  # a default
    decls = merged(cfg.agent.components, {"atr_exits.take_profit_atr.high": 7.5, "signal.rsi_period": 11})
    assert decls["atr_exits"]["take_profit_atr"] == {"low": 3.0, "normal": 4.0, "high": 7.5}
    assert decls["signal"]["rsi_period"] == 11 and decls["signal"]["fast"] == 9
    assert decls["kelly"] == cfg.agent.components["kelly"]  # untouched components stay as declared


def test_the_shipped_agents_declare_a_weekly_optimiser_that_is_off_until_enabled():
    for agent in (compose_run(*HYBRID).agent, compose_run("agent=futures", "market=perp_1h").agent):
        block = agent.optimise
        assert block is not None and not block.enabled, agent.name
        assert (block.every_days, block.stale_after_days, block.canary_days) == (7, 8, 7)
