"""A machine declaration is validated before anything trades, with errors that name the culprit."""

from __future__ import annotations

import copy
import functools
import warnings

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.facts import AgentFacts
from machine.builder import AgentMachine
from machine.compose import compose_dict, compose_run
from machine.config import AgentConfig
from machine.guards import GUARDS
from machine.soundness import GUARD_DRIVERS, MachineWarning
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


# --- soundness: a machine that would sit still is refused before a run, naming the state ----------------

TRADES = ["features", "regime", "signal", "regime_gate", "fixed_risk", "atr_exits"]  # a signal and a sizer


@functools.cache
def _futures_agent() -> dict:
    return compose_dict("agent=futures")["agent"]


def _machine() -> dict:
    """warmup -> conservative (trades) <-> circuit_broken, on the futures agent's real components."""
    return {
        "initial": "warmup",
        "states": {"warmup": {"components": ["features", "regime"]}, "conservative": {"components": TRADES},
                   "circuit_broken": {"components": ["features", "regime", "atr_exits"]}},
        "transitions": [
            {"trigger": "ready", "source": "warmup", "dest": "conservative", "when": "history_ready"},
            {"trigger": "trip", "source": "conservative", "dest": "circuit_broken", "when": {"drawdown_at_least": 0.1}},
            {"trigger": "resume", "source": "circuit_broken", "dest": "conservative", "when": {"cooldown_elapsed": 24}},
        ],
    }


def _agent(machine: dict) -> AgentConfig:
    """The agent validated as a run validates it (``load_run_config`` and ``ratchet-diagram`` both do this)."""
    return AgentConfig.model_validate({**copy.deepcopy(_futures_agent()), "machine": machine})


def _refusal(machine: dict) -> str:
    with pytest.raises(ConfigError) as err:
        _agent(machine)
    return str(err.value)


def _machine_warnings(machine: dict) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _agent(machine)
    return [str(w.message) for w in caught if issubclass(w.category, MachineWarning)]


@pytest.mark.parametrize(("agent", "market"), [("futures", "perp_1h"), ("hybrid", "spot_1h"), ("ema_cross", "spot_1h")])
def test_every_shipped_machine_is_accepted_without_a_warning(agent, market):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cfg = compose_run(f"agent={agent}", f"market={market}")
    assert cfg.agent.name == agent
    assert [str(w.message) for w in caught] == []


def test_the_sound_example_machine_is_accepted():
    assert _machine_warnings(_machine()) == []


def test_a_warmup_whose_only_exit_needs_closed_trades_can_never_end():
    machine = _machine()
    machine["transitions"][0]["when"] = {"closed_trades_at_least": 10}
    assert _refusal(machine) == (
        "agent.machine.states.warmup: the initial state can never be left: closed_trades_at_least(10) "
        "(transition 'ready') needs trades, but 'warmup' enables no signal and sizer and the agent starts "
        "with no positions")


def test_a_warmup_that_opens_trades_may_wait_for_closed_trades():
    machine = _machine()
    machine["states"]["warmup"]["components"] = TRADES
    machine["transitions"][0]["when"] = {"closed_trades_at_least": 10}
    assert _machine_warnings(machine) == []


def test_a_warmup_waiting_on_a_fact_fixed_when_the_state_is_entered_can_never_end():
    machine = _machine()
    machine["states"]["warmup"]["components"] = TRADES  # trading does not change where the agent came from
    machine["transitions"][0]["when"] = {"came_from": "conservative"}
    assert "came_from(conservative) (transition 'ready') is false when the agent starts" in _refusal(machine)


def test_a_trading_guard_already_true_for_a_fresh_agent_lets_the_warmup_end():
    machine = _machine()
    machine["transitions"][0]["when"] = "kelly_edge_not_positive"  # no trades yet: no edge, so it holds
    _agent(machine)
    fired = AgentMachine(MachineSpec.model_validate(machine)).evaluate(AgentFacts())
    assert (fired.trigger, fired.dest) == ("ready", "conservative")


def test_a_state_no_transition_leads_to_is_refused_by_name():
    machine = _machine()
    machine["states"]["parked"] = {"components": TRADES}
    machine["transitions"].append({"trigger": "unpark", "source": "parked", "dest": "conservative",
                                   "when": "history_ready"})
    assert _refusal(machine) == ("agent.machine.states.parked: cannot be reached from the initial state 'warmup': "
                                 "no transition leads to it")


def test_a_state_reached_only_through_a_transition_that_can_never_fire_is_refused():
    machine = _machine()
    machine["states"]["kelly_active"] = {"components": TRADES}
    machine["transitions"] += [
        {"trigger": "skip_ahead", "source": "warmup", "dest": "kelly_active", "when": {"closed_trades_at_least": 5}},
        {"trigger": "settle", "source": "kelly_active", "dest": "conservative", "when": "history_ready"},
    ]
    assert _refusal(machine) == ("agent.machine.states.kelly_active: cannot be reached from the initial state "
                                 "'warmup': only transitions 'skip_ahead' lead to it, from states the agent "
                                 "cannot reach")


def test_a_state_without_a_way_out_that_opens_no_trades_is_refused_unless_declared_terminal():
    machine = _machine()
    del machine["transitions"][2]  # circuit_broken keeps its positions' exits but never trades again
    assert _refusal(machine).startswith(
        "agent.machine.states.circuit_broken: no transition leaves it and its components open no trades")

    machine["states"]["circuit_broken"]["terminal"] = True
    assert _machine_warnings(machine) == []


def test_a_state_without_a_way_out_that_opens_trades_is_accepted_because_it_trades_on():
    machine = _machine()
    del machine["transitions"][1:]  # like the EMA baseline: warmup, then conservative for good
    del machine["states"]["circuit_broken"]
    assert _machine_warnings(machine) == []


def test_a_terminal_state_with_a_way_out_is_refused():
    machine = _machine()
    machine["states"]["circuit_broken"]["terminal"] = True
    assert _refusal(machine) == ("agent.machine.states.circuit_broken: declared terminal, "
                                 "but transition 'resume' leaves it")


def test_every_problem_of_a_machine_is_named_at_once():
    machine = _machine()
    del machine["transitions"][2]
    machine["states"]["parked"] = {"components": TRADES}
    lines = _refusal(machine).split("\n  ")
    assert [line.split(":")[0] for line in lines] == ["agent.machine.states.circuit_broken",
                                                      "agent.machine.states.parked"]


def test_a_state_reached_only_by_an_operator_command_is_a_warning_naming_the_transition():
    machine = _machine()
    machine["states"]["manual"] = {"components": TRADES}
    machine["transitions"] += [
        {"trigger": "take_over", "source": "circuit_broken", "dest": "manual", "when": "resume_requested"},
        {"trigger": "hand_back", "source": "manual", "dest": "conservative", "when": {"cooldown_elapsed": 24}},
    ]
    with pytest.warns(MachineWarning) as caught:
        _agent(machine)
    assert [str(w.message) for w in caught] == [
        "agent.machine.states.manual: reached only after transition 'take_over' (an operator command): "
        "a run without that event never visits it"]


def test_a_state_reached_only_when_a_component_fails_is_a_warning():
    machine = _machine()
    machine["states"]["safe_mode"] = {"components": ["features", "regime", "atr_exits"]}
    machine["transitions"] += [
        {"trigger": "fall_back", "source": "conservative", "dest": "safe_mode", "when": "component_failed"},
        {"trigger": "recover", "source": "safe_mode", "dest": "conservative", "when": {"cooldown_elapsed": 24}},
    ]
    assert _machine_warnings(machine) == [
        "agent.machine.states.safe_mode: reached only after transition 'fall_back' (a component's role): "
        "a run without that event never visits it"]


def test_a_warmup_left_only_by_an_operator_command_is_a_warning():
    machine = _machine()
    machine["transitions"][0]["when"] = "resume_requested"
    assert _machine_warnings(machine) == [
        "agent.machine.states.warmup: the initial state is left only after an operator command"]


def test_a_state_left_only_by_an_operator_command_is_a_design_not_a_warning():
    machine = _machine()
    machine["states"]["halted"] = {"components": ["features", "regime"]}
    machine["transitions"] += [
        {"trigger": "escalate", "source": "circuit_broken", "dest": "halted",
         "when": {"trips_within_at_least": {"count": 3, "hours": 720}}},
        {"trigger": "lift_halt", "source": "halted", "dest": "conservative", "when": "resume_requested"},
    ]
    assert _machine_warnings(machine) == []


def test_every_guard_declares_what_can_make_it_true():
    assert set(GUARD_DRIVERS) == set(GUARDS)
