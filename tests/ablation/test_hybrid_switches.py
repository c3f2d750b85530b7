"""Each hybrid switch removes its loop, shown in the ledger of a real replay (a month of 5m BTC and ETH,
tests/ablation/conf/experiment/hybrid_learning.yaml, where every loop acts).

The model loops are switched off together in one replay (each leaves its own rows: retrains, weight
updates, threshold moves, exploration, parameter studies) and the gate in another, to keep the
suite fast; every test below reads one loop's rows only.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from machine.ablation.loops import Arm, merge
from machine.ablation.runner import compose_arm, plan_ablation, write_options
from machine.config import load_run_config
from machine.engine import run_replay

CONF = Path(__file__).parent / "conf"
EXPERIMENT = (f"hydra.searchpath=['file://{CONF.resolve()}']", "experiment=hybrid_learning")
TOGETHER = ("retraining", "ensemble_weighting", "gate_threshold", "exploration", "parameter_optimisation")
LEARNING_OFF = "without_model_loops"


@pytest.fixture(scope="module")
def ledgers(tmp_path_factory):
    root = tmp_path_factory.mktemp("hybrid_switches")
    plan = plan_ablation(EXPERIMENT, loops=[*TOGETHER, "ml_gate"], every="all", out=root / "ablation")
    changes: dict = {}
    for loop in plan.loops:
        if loop.name in TOGETHER:
            changes = merge(changes, loop.off)
    gate_off = next(a for a in plan.arms if a.loop == "ml_gate")
    arms = [plan.arms[0], Arm(LEARNING_OFF, "off", None, changes), gate_off]
    write_options(plan, arms)
    out = {}
    for arm in arms:
        result = run_replay(load_run_config(compose_arm(plan, arm.name, "all")), root / arm.name)
        out[arm.name] = duckdb.connect(str(result.ledger_path), read_only=True)
    yield out
    for con in out.values():
        con.close()


def count(con: duckdb.DuckDBPyConnection, query: str) -> int:
    return con.execute(query).fetchone()[0]


def test_retraining_off_keeps_the_first_model_for_the_whole_run(ledgers):
    retrains = "SELECT count(*) FROM adjustments WHERE kind = 'model_retrain'"
    assert count(ledgers["full"], retrains) >= 3
    off = ledgers[LEARNING_OFF]
    assert count(off, retrains) == 1
    assert off.execute("SELECT DISTINCT model_version FROM predictions").fetchall() == [("v0001",)]
    assert count(off, "SELECT count(*) FROM predictions") > 1000  # it gates the whole month


def test_ensemble_weighting_off_weighs_the_members_equally_and_never_updates(ledgers):
    weights = "SELECT count(*) FROM adjustments WHERE kind = 'ensemble_weights'"
    assert count(ledgers["full"], weights) > 0
    assert count(ledgers[LEARNING_OFF], weights) == 0

    def unexplained(con: duckdb.DuckDBPyConnection) -> int:
        """Predictions whose probability is neither the members' mean nor a base rate standing in."""
        return count(con, """
            SELECT count(*) FROM predictions
            WHERE abs(probability - (p_cnn + p_attention_mlp) / 2) > 1e-9
              AND probability NOT IN (SELECT CAST(after->>'base_rate' AS DOUBLE) FROM adjustments
                                      WHERE kind = 'model_fallback' AND after->>'base_rate' IS NOT NULL)""")

    assert unexplained(ledgers["full"]) > 0
    assert unexplained(ledgers[LEARNING_OFF]) == 0


def test_gate_threshold_adaptation_off_holds_the_threshold_where_it_started(ledgers):
    moves = "SELECT count(*) FROM adjustments WHERE kind = 'gate_threshold'"
    assert count(ledgers["full"], moves) > 0
    off = ledgers[LEARNING_OFF]
    assert count(off, moves) == 0
    assert off.execute("SELECT DISTINCT round(threshold, 9) FROM decisions WHERE mode = 'normal'").fetchall() == [
        (0.2,)]


def test_exploration_off_opens_no_window_and_draws_no_epsilon(ledgers):
    into = "SELECT count(*) FROM transitions WHERE dest = 'exploring'"
    explored = "SELECT count(*) FROM trades WHERE mode IN ('window', 'epsilon')"
    assert count(ledgers["full"], into) > 0 and count(ledgers["full"], explored) > 0
    off = ledgers[LEARNING_OFF]
    assert count(off, into) == 0 and count(off, explored) == 0
    assert count(off, "SELECT count(*) FROM decisions WHERE mode <> 'normal'") == 0


def test_parameter_optimisation_off_runs_no_study(ledgers):
    studies = "SELECT count(*) FROM adjustments WHERE kind LIKE 'param_%'"
    assert count(ledgers["full"], studies) > 0
    assert count(ledgers[LEARNING_OFF], studies) == 0


def test_the_gate_off_trades_the_signals_alone(ledgers):
    off = ledgers["without_ml_gate"]
    for table in ("decisions", "models", "predictions"):
        assert count(ledgers["full"], f"SELECT count(*) FROM {table}") > 0
        assert count(off, f"SELECT count(*) FROM {table}") == 0
    gated = "SELECT count(*) FILTER (WHERE reason LIKE '%p=%'), count(*) FROM orders WHERE intent = 'entry'"
    assert ledgers["full"].execute(gated).fetchone()[0] > 0  # entries name the probability that let them through
    passed, entries = off.execute(gated).fetchone()
    assert entries > 0 and passed == 0
