"""A machine declaration is validated before anything trades, with errors that name the culprit."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.facts import AgentFacts
from machine.builder import AgentMachine
from machine.guards import GUARDS
from machine.spec import MachineSpec


def _spec(**overrides):
    decl = {
        "initial": "warmup",
        "states": {"warmup": {"components": ["features"]}, "conservative": {"components": ["features"]},
                   "kelly_active": {}, "circuit_broken": {}},
        "transitions": [
            {"trigger": "trip", "source": ["conservative", "kelly_active"], "dest": "circuit_broken",
             "when": {"drawdown_at_least": 0.1}},
            {"trigger": "ready", "source": "warmup", "dest": "conservative", "when": "history_ready"},
            {"trigger": "earn_kelly", "source": "conservative", "dest": "kelly_active",
             "when": [{"closed_trades_at_least": 10}, "kelly_edge_positive"]},
        ],
    }
    decl.update(overrides)
    return decl


def test_a_transition_to_an_undeclared_state_is_rejected_by_name():
    decl = _spec()
    decl["transitions"][0]["dest"] = "circuit_brokn"
    with pytest.raises(ValidationError, match="unknown state 'circuit_brokn'"):
        MachineSpec.model_validate(decl)


def test_hyphenated_state_ids_are_rejected_because_they_break_mermaid():
    decl = _spec(states={"warmup": {}, "kelly-active": {}}, transitions=[])
    with pytest.raises(ValidationError, match="snake_case"):
        MachineSpec.model_validate(decl)


def test_wildcard_source_is_rejected_because_it_includes_the_destination():
    decl = _spec()
    decl["transitions"][0]["source"] = "*"
    with pytest.raises(ValidationError, match="list the sources"):
        MachineSpec.model_validate(decl)


def test_unknown_guard_and_unknown_component_are_named():
    spec = MachineSpec.model_validate(_spec())
    with pytest.raises(ConfigError, match="unknown component 'features'"):
        spec.check_references(set(GUARDS), {"signal"}, "agent(x)")
    bad = _spec()
    bad["transitions"][1]["when"] = "histroy_ready"
    with pytest.raises(ConfigError, match="unknown guard 'histroy_ready'"):
        MachineSpec.model_validate(bad).check_references(set(GUARDS), {"features"}, "agent(x)")


def test_guard_parameters_are_checked_when_the_machine_is_built():
    bad = _spec()
    bad["transitions"][0]["when"] = {"drawdown_at_least": "ten percent"}
    with pytest.raises(ConfigError, match="needs a number"):
        AgentMachine(MachineSpec.model_validate(bad))


def test_the_first_declared_transition_whose_guards_pass_fires_with_its_evidence():
    machine = AgentMachine(MachineSpec.model_validate(_spec()))
    facts = AgentFacts(history_ready=True)
    fired = machine.evaluate(facts)
    assert (fired.source, fired.dest, fired.trigger) == ("warmup", "conservative", "ready")
    assert fired.evidence == {"history_ready": {"history_ready": True}}
    for pnl in [2.0] * 6 + [-1.0] * 4:
        facts.stats.record(pnl)
    facts.mark_equity(1, 100.0)
    facts.mark_equity(2, 85.0)  # drawdown 15 % and Kelly earned: the trip is declared first
    fired = machine.evaluate(facts)
    assert fired.dest == "circuit_broken"
    assert fired.evidence["drawdown_at_least(0.1)"]["drawdown"] == pytest.approx(0.15)


def test_kelly_stays_off_until_ten_closed_trades():
    machine = AgentMachine(MachineSpec.model_validate(_spec()))
    facts = AgentFacts(history_ready=True)
    machine.evaluate(facts)
    for n in range(1, 11):
        facts.stats.record(3.0 if n % 2 else -1.0)
        fired = machine.evaluate(facts)
        assert (fired is not None) == (n == 10)
    assert machine.state == "kelly_active"
    assert fired.evidence["closed_trades_at_least(10)"] == {"closed_trades": 10, "threshold": 10.0}
