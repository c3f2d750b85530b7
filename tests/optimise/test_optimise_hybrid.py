"""The hybrid agent optimises weekly beside its ML gate: trials and shadows follow the scores of the
model version that was live at each bar, so the optimiser trains no model of its own."""

from __future__ import annotations

import json

import duckdb
import pytest

from machine.compose import compose_run
from machine.engine import run_replay
from tests.optimise.support import DAY_MS, first_close, param_rows

HYBRID = ("agent=hybrid", "market=spot_1h", "market.symbols=[BTC/USDT,ETH/USDT]", "market.start=2023-06-01",
          "market.end=2023-07-20", "agent.optimise.enabled=true", "agent.optimise.trials=10",
          "agent.components.ml_gate.retrainer.training.epochs=1",
          "agent.components.ml_gate.retrainer.training.max_samples=2000",
          "agent.components.ml_gate.retrainer.training.threads=1")


@pytest.fixture(scope="module")
def hybrid(tmp_path_factory):
    return run_replay(compose_run(*HYBRID), tmp_path_factory.mktemp("hybrid") / "run")


def test_the_hybrid_agent_proposes_weekly_and_each_proposal_gets_its_verdict(hybrid):
    rows = param_rows(hybrid.ledger_path)
    proposals = [r for r in rows if r["kind"] == "param_proposal"]
    assert proposals[0]["ts"] == first_close(hybrid.ledger_path) + 7 * DAY_MS and len(proposals) >= 4
    verdicts = [(a, b) for a, b in zip(rows, rows[1:], strict=False) if a["kind"] == "param_proposal"]
    assert len(verdicts) >= len(proposals) - 1  # the last canary may outlast the data
    for proposal, verdict in verdicts:  # rows in the order they were written
        assert verdict["kind"] in ("param_promotion", "param_rejection")
        assert proposal["after"] in (verdict["after"], verdict["after"].get("params"))


def test_trials_and_shadows_follow_the_live_models_and_train_none(hybrid):
    con = duckdb.connect(str(hybrid.ledger_path), read_only=True)
    try:
        retrains = con.execute("SELECT ts, evidence->>'requested_at' FROM adjustments WHERE kind = 'model_retrain' "
                               "ORDER BY ts").fetchall()
        versions = {v for (v,) in con.execute("SELECT DISTINCT model_version FROM decisions "
                                              "WHERE model_version IS NOT NULL").fetchall()}
    finally:
        con.close()
    registry = json.loads((hybrid.run_dir / "models" / "index.json").read_text())["records"]
    assert len(registry) == len(retrains) >= 2  # every version in the folder is one the live gate trained
    assert sorted(r["train_end"] for r in registry) == [int(requested) for _, requested in retrains]
    assert versions <= {r["version"] for r in registry}
    rows = param_rows(hybrid.ledger_path)
    looked_back = [r["evidence"]["lookback"]["best"]["trades"] for r in rows if r["kind"] == "param_proposal"]
    shadowed = [r["evidence"]["challenger"]["trades"] + r["evidence"]["incumbent"]["trades"]
                for r in rows if "canary" in r["evidence"]]
    assert max(looked_back) > 0 and max(shadowed) > 0  # gated entries: the followers had the live scores
