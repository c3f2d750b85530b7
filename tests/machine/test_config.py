"""Every config group composes and validates; bad values stop the run with a message, not a traceback."""

from __future__ import annotations

import re
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
    ("market.symbols=[BTC/USDT]", "market.symbols: symbol 'BTC/USDT' does not fit a futures market"),
    ("market.symbols=[btc/usdt:usdt]", "market.symbols: symbol 'btc/usdt:usdt' is not upper case"),
    ("market.start=2024-13-01", "market.start: month must be in 1..12 (got '2024-13-01')"),
    ("market=spot_1h", "pick a futures market"),
])
def test_invalid_values_name_the_key_and_the_value(override, named):
    with pytest.raises(ConfigError, match=re.escape(named.replace("+", ""))):
        compose_run("agent=futures", override)


@pytest.mark.parametrize(("agent", "market", "kind", "example"), [("futures", "perp_1h", "futures", "BTC/USDT:USDT"),
                                                                  ("hybrid", "spot_1h", "spot", "BTC/USDT")])
def test_a_lowercase_symbol_is_told_symbols_are_upper_case_not_blamed_on_the_market_kind(agent, market, kind,
                                                                                        example):
    with pytest.raises(ConfigError) as err:
        compose_run(f"agent={agent}", f"market={market}", "market.symbols=[btc/usdt]")
    assert str(err.value) == f"market.symbols: symbol 'btc/usdt' is not upper case: ccxt {kind} symbols look like " \
                             f"{example!r}"


@pytest.mark.parametrize(("start", "end", "relation"), [("2024-03-01", "2024-01-01", "is after"),
                                                        ("2024-01-01", "2024-01-01", "equals")])
def test_a_start_not_before_the_end_is_refused_naming_both(start, end, relation):
    with pytest.raises(ConfigError) as err:
        compose_run("agent=futures", f"market.start={start}", f"market.end={end}")
    assert str(err.value).startswith(f"market.start: {start} {relation} market.end {end};")


@pytest.mark.parametrize(("override", "named"), [
    ("agent.machine.initial=nowhere", "agent.machine.initial: state 'nowhere' is not declared; states: "),
    ("agent.machine.transitions.0.dest=nowhere", "agent.machine.transitions.0: transition 'fall_back' names "
                                                 "unknown state 'nowhere'"),
    ("agent.machine.transitions.1.when.drawdown_at_least=twelve", "agent.machine.transitions.1: transition "
     "'trip_drawdown': guard 'drawdown_at_least' needs a number, got 'twelve'"),
])
def test_a_machine_error_names_the_key_and_the_value_and_dumps_nothing_else(override, named):
    with pytest.raises(ConfigError) as err:
        compose_run("agent=futures", override)
    message = str(err.value)
    assert message.startswith(named)
    assert "\n" not in message and len(message) < 250  # the whole agent config was 3-5 KB
    assert "description" not in message and "_target_" not in message


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


def test_the_cli_says_the_start_is_after_the_end_before_trading(tmp_path):
    out = ratchet("agent=futures", "market.start=2024-03-01", "market.end=2024-01-01", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert out.stderr.startswith("ratchet: ConfigError: market.start: 2024-03-01 is after market.end 2024-01-01")
    assert "Traceback" not in out.stderr and not (tmp_path / "ledger.duckdb").exists()


def test_the_cli_rejects_an_unknown_symbol_before_trading(tmp_path):
    out = ratchet("agent=futures", "market.symbols=[DOGE/USDT:USDT]", f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2
    assert "DOGE/USDT:USDT" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "ledger.duckdb").exists()
