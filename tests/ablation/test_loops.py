"""The loops each agent declares, the arms that switch them off, and the stretches, as composed configs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from core.errors import ConfigError
from machine.ablation.loops import NEVER, declared_loops
from machine.ablation.placebo import coin_arm, risk_arm
from machine.ablation.runner import check_arms, compose_arm, plan_ablation, write_options
from machine.compose import compose_dict, compose_run

FUTURES = ("agent=futures", "market=perp_1h")
HYBRID = ("agent=hybrid", "market=spot_1h")
CONF = Path(__file__).parent / "conf"
LEARNING = (f"hydra.searchpath=['file://{CONF.resolve()}']", "experiment=hybrid_learning")  # optimiser on


def test_each_agent_declares_the_loops_it_learns_with():
    futures = [loop.name for loop in declared_loops(compose_dict(*FUTURES)["agent"])]
    hybrid = [loop.name for loop in declared_loops(compose_dict(*HYBRID)["agent"])]
    assert futures == ["kelly", "exploration", "regime_gating", "adaptive_stops", "breakers"]
    assert [n for n in hybrid if n != "parameter_optimisation"] == [
        "retraining", "ensemble_weighting", "gate_threshold", "ml_gate", "kelly", "exploration", "regime_gating",
        "adaptive_stops", "breakers"]


def test_parameter_optimisation_is_a_loop_while_the_optimiser_is_enabled():
    enabled = [loop.name for loop in declared_loops(compose_dict(*LEARNING)["agent"])]
    disabled = [loop.name for loop in declared_loops(compose_dict(*LEARNING, "agent.optimise.enabled=false")["agent"])]
    assert enabled.index("parameter_optimisation") == enabled.index("exploration") + 1
    assert "parameter_optimisation" not in disabled


@pytest.mark.parametrize("agent", [FUTURES, HYBRID], ids=["futures", "hybrid"])
def test_every_arm_composes_into_a_valid_agent_that_holds_its_switch(agent, tmp_path):
    plan = plan_ablation([*agent, "market.start=2024-01-01", "market.end=2024-02-01"], every="all", out=tmp_path)
    arms = list(plan.arms)
    for loop in plan.loops:  # placebos with made-up shares: they compose as the measured ones do
        if loop.placebo == "coin":
            arms.append(coin_arm(loop, plan.agent, 0.25))
        elif loop.placebo == "risk":
            arms.append(risk_arm(loop, plan.agent, [0.003, 0.006]))
    write_options(plan, arms)
    check_arms(plan, arms)  # composes and validates each (soundness included) and checks it holds its changes
    placebo = compose_arm(plan, arms[-1].name, "all")
    assert placebo["agent"]["name"] == f"{plan.agent['name']}~{arms[-1].name}"
    assert placebo["market"]["start"] == "2024-01-01" and placebo["market"]["end"] == "2024-02-01"
    assert placebo["agent"]["components"] != compose_arm(plan, "full", "all")["agent"]["components"]


def test_a_closed_transition_keeps_its_guards_and_gains_one_no_run_passes(tmp_path):
    plan = plan_ablation(FUTURES, loops=["breakers"], every="all", out=tmp_path)
    (arm,) = plan.arms[1:]
    write_options(plan, [arm])
    machine = compose_run(*FUTURES, f"hydra.searchpath=['file://{tmp_path.resolve() / 'conf'}']",
                          f"+ablation={arm.name}").agent.machine
    closed = [t for t in machine.transitions if t.dest in ("circuit_broken", "halted")]
    assert closed and all(t.when[-1].name == "closed_trades_at_least" and t.when[-1].param == NEVER[
        "closed_trades_at_least"] for t in closed)
    assert [t.trigger for t in machine.transitions] == [t["trigger"] for t in plan.agent["machine"]["transitions"]]


def test_an_override_that_would_undo_a_switch_is_refused_naming_its_key(tmp_path):
    plan = plan_ablation([*HYBRID, "agent.components.ml_gate.epsilon=0.2"], loops=["exploration"], every="all",
                         out=tmp_path)
    write_options(plan, plan.arms)
    with pytest.raises(ConfigError, match=r"without_exploration: an override of agent\.components\.ml_gate\.epsilon"):
        check_arms(plan, plan.arms)


def test_a_loop_the_agent_does_not_declare_is_refused_with_those_it_does(tmp_path):
    with pytest.raises(ConfigError, match=r"--loops: retraining not declared by this agent; it declares: kelly, "):
        plan_ablation(FUTURES, loops=["kelly", "retraining"], out=tmp_path)


def test_stretches_follow_each_other_from_the_first_bar_with_warm_up_to_the_end_of_the_data(tmp_path):
    plan = plan_ablation(FUTURES, loops=["kelly"], every="year", out=tmp_path)
    names = [s.name for s in plan.stretches]
    assert names == ["y2022", "y2023", "y2024", "y2025", "y2026"]
    first = plan.stretches[0]
    assert first.start == "2022-02-01"  # 2022-01-01 plus the regime detector's 734 warm-up bars, to midnight
    assert [s.end for s in plan.stretches] == ["2023-01-01", "2024-01-01", "2025-01-01", "2026-01-01", None]
    assert [s.start for s in plan.stretches[1:]] == [s.end for s in plan.stretches[:-1]]


def test_quarters_of_a_given_window_start_at_its_start_and_end_at_its_end(tmp_path):
    plan = plan_ablation([*FUTURES, "market.start=2023-02-15", "market.end=2023-08-01"], loops=["kelly"],
                         every="quarter", out=tmp_path)
    assert [(s.name, s.start, s.end) for s in plan.stretches] == [
        ("q2023-1", "2023-02-15", "2023-04-01"), ("q2023-2", "2023-04-01", "2023-07-01"),
        ("q2023-3", "2023-07-01", "2023-08-01")]
    for stretch in plan.stretches:  # each is a window the loader accepts, warm-up history included
        start = datetime.fromisoformat(stretch.start).replace(tzinfo=UTC)
        assert start >= datetime(2022, 2, 1, tzinfo=UTC)


def test_a_window_that_leaves_no_bar_after_the_warm_up_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="no bars left for the ablation after the agent's warm-up"):
        plan_ablation([*FUTURES, "market.end=2022-01-20"], loops=["kelly"], every="month", out=tmp_path)
