"""Every config group composes and validates; bad values stop the run with a message, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.exchange.sim import SimExchange
from core.component import build_component
from core.errors import ConfigError
from ledger.writer import Ledger
from machine.compose import compose_run
from machine.engine import build_agent, load_run_market
from machine.recorder import Recorder
from tests.support.cli import ratchet

CONF = Path(__file__).parents[2] / "conf"


def _choices(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("market", _choices("market"))
def test_every_market_composes(market):
    kind = "futures" if market.startswith("perp") else "spot"
    agent = "futures" if kind == "futures" else "hybrid"
    cfg = compose_run(f"agent={agent}", f"market={market}")
    assert cfg.market.kind == kind and cfg.market.symbols


@pytest.mark.parametrize("experiment", _choices("experiment"))
def test_every_experiment_composes_and_its_agent_builds(experiment, tmp_path):
    cfg = compose_run(f"experiment={experiment}")
    market = load_run_market(cfg.model_copy(update={"market": cfg.market.model_copy(
        update={"start": "2024-01-01", "end": "2024-01-03"})}))
    with Ledger.open(tmp_path / "l.duckdb", "t") as ledger:
        agent = build_agent(cfg, market, SimExchange(cfg.exchange, market, 1000.0), Recorder(ledger, "x"),
                            tmp_path)
    assert set(agent.components) == set(cfg.agent.components)


def test_overrides_reach_the_validated_config():
    cfg = compose_run("agent=futures", "market=perp_1h", "agent.components.fixed_risk.risk=0.002",
                      "market.symbols=[BTC/USDT:USDT]")
    assert cfg.agent.components["fixed_risk"]["risk"] == 0.002
    assert cfg.market.symbols == ("BTC/USDT:USDT",)


@pytest.mark.parametrize(("override", "named"), [
    ("agent.max_leverage=10", "agent.max_leverage"),
    ("starting_cash=-5", "starting_cash"),
    ("+agent.risk_appetite=high", "agent.risk_appetite: unknown key"),
    ("market.on_gap=ignore", "market.on_gap"),
    ("market.symbols=[BTC/USDT]", "does not fit a futures market"),
    ("market=spot_1h", "pick a futures market"),
])
def test_invalid_values_name_the_key_and_the_value(override, named):
    with pytest.raises(ConfigError, match=named.replace("[", r"\[").replace("+", "")):
        compose_run("agent=futures", override)


def test_an_invalid_component_parameter_is_named_with_its_path(tmp_path):
    cfg = compose_run("agent=futures", "agent.components.kelly.cap=0.5")
    named = r"agent.components.kelly.cap: Input should be less than or equal to 0.15 \(got 0.5\)"
    with pytest.raises(ConfigError, match=named):
        build_component("kelly", cfg.agent.components["kelly"], "agent.components.kelly")


def test_the_cli_prints_one_clear_line_and_no_traceback_for_a_user_error(tmp_path):
    out = ratchet("agent=futures", "agent.max_leverage=10", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "agent.max_leverage: Input should be less than or equal to 5 (got 10)" in out.stderr
    assert "Traceback" not in out.stderr


def test_the_cli_rejects_an_unknown_symbol_before_trading(tmp_path):
    out = ratchet("agent=futures", "market.symbols=[DOGE/USDT:USDT]", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "DOGE/USDT:USDT" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ledger.duckdb").exists()
