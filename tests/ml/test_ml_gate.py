"""The ML gate in a replay of real 5m BTC and ETH bars: trade labels, the probability it acted on,
the base-rate gate (its versions fall back to the base rate and recover on this timeline), feature
importance per version, and the views that read them."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pytest

from components.ml.metrics import auc
from components.ml.registry import ModelRegistry
from ledger.views import create_views
from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from tests.support.ledger_export import export

GATE = "agent.components.ml_gate"
# Small and quick: ten-day windows, a retrain a week, one epoch of small members, weights every 8 outcomes;
# the trade label (the signal's entries are the samples and the predictions; 12-hour time-out).
SHORT = (
    "experiment=hybrid_5m", "market.start=2024-01-01", "market.end=2024-02-15",
    "agent.components.regime.vol_lookback=2016",
    f"{GATE}.retrainer.label=trade", f"{GATE}.retrainer.horizon=144",
    f"{GATE}.retrain_every_days=7", f"{GATE}.retrainer.window_days=10",
    f"{GATE}.retrainer.training.epochs=1", f"{GATE}.retrainer.training.max_samples=1500",
    f"{GATE}.retrainer.training.width=8", f"{GATE}.retrainer.training.threads=1",
    f"{GATE}.retrainer.ensemble.cadence=8",
    "++agent.optimise=null",  # the gate alone: no parameter optimiser following it
)


def replay(tmp_path_factory, name: str, *overrides: str):
    result = run_replay(compose_run(*SHORT, *overrides), tmp_path_factory.mktemp(name))
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    create_views(con)
    return result, con


@pytest.fixture(scope="module")
def gate_run(tmp_path_factory):
    result, con = replay(tmp_path_factory, "gate")
    yield result, con
    con.close()


def in_force(rows: list[tuple], ts: int, version: str | None = None):
    """The latest (ts, version, value) row at or before ``ts`` (for ``version``), or None."""
    found = [r for r in rows if r[0] <= ts and (version is None or r[1] == version)]
    return max(found, key=lambda r: r[0])[2] if found else None


def test_a_predictions_probability_is_the_one_the_gate_had_when_it_made_it(gate_run):
    result, con = gate_run
    cfg = compose_run(*SHORT)
    horizon = cfg.agent.components["ml_gate"]["retrainer"]["horizon"] * 300_000  # 5m bars
    weights = [(ts, json.loads(ev)["model_version"], json.loads(after)) for ts, ev, after in con.execute(
        "SELECT ts, evidence, after FROM adjustments WHERE kind = 'ensemble_weights' ORDER BY ts").fetchall()]
    fallback = [(ts, None, json.loads(after).get("base_rate")) for ts, after in con.execute(
        "SELECT ts, after FROM adjustments WHERE kind = 'model_fallback' ORDER BY ts").fetchall()]
    registry = ModelRegistry(result.run_dir / "models")
    initial = {r.version: registry.load(r.version).ensemble.weights for r in registry.records()}
    columns = ("attention_mlp", "lstm", "cnn", "transformer")
    predictions = con.execute(f"SELECT ts, model_version, probability, {', '.join('p_' + c for c in columns)} "
                              "FROM predictions ORDER BY ts").fetchall()

    assert len(predictions) > 100 and len(weights) >= 3
    for ts, version, probability, *members in predictions:
        base_rate = in_force(fallback, ts)
        w = in_force(weights, ts, version) or initial[version]
        expected = base_rate if base_rate is not None else sum(w[c] * p for c, p in zip(columns, members, strict=True))
        assert probability == pytest.approx(expected, rel=1e-12, abs=1e-15)
    # the weights moved while predictions were waiting to resolve: a late probability would differ
    moved = [p for p in predictions if any(p[0] < ts <= p[0] + horizon and v == p[1] for ts, v, _ in weights)]
    assert len(moved) > 10
    decided = con.execute("SELECT d.probability, p.probability FROM decisions d JOIN predictions p "
                          "USING (ts, symbol, model_version) WHERE d.probability IS NOT NULL").fetchall()
    assert len(decided) > 5 and all(d == p for d, p in decided)


def test_a_model_that_cannot_beat_the_base_rate_does_not_gate(gate_run):
    _, con = gate_run
    rows = con.execute("SELECT ts, before, after, reason, evidence FROM adjustments "
                       "WHERE kind = 'model_fallback' ORDER BY ts").fetchall()
    fallbacks = [(ts, json.loads(b), json.loads(a), reason, json.loads(e)) for ts, b, a, reason, e in rows]
    rates = [(ts, None, after.get("base_rate")) for ts, _, after, _, _ in fallbacks]

    assert any(after["probability"] == "base_rate" for _, _, after, _, _ in fallbacks)
    for _, _, after, reason, evidence in fallbacks:
        fell_back = after["probability"] == "base_rate"
        assert ("does not beat the base rate" in reason) == fell_back
        assert (evidence["live_log_loss"] >= evidence["base_rate_log_loss"]) == fell_back
        assert not fell_back or after["base_rate"] == evidence["label_base_rate"]
    for table in ("decisions", "predictions"):  # while it stands in, every signal gets the base rate
        rows = con.execute(f"SELECT ts, probability FROM {table} WHERE probability IS NOT NULL").fetchall()
        standing = [(ts, p) for ts, p in rows if in_force(rates, ts) is not None]
        assert len(standing) > 5 and all(p == in_force(rates, ts) for ts, p in standing), table


def test_the_gate_fails_over_to_the_base_rate_only_when_the_held_out_evidence_says_so(gate_run):
    result, con = gate_run
    gates = {r.version: r.metrics for r in ModelRegistry(result.run_dir / "models").records()}
    retrains = con.execute("SELECT ts, after ->> 'champion' FROM adjustments WHERE kind = 'model_retrain' "
                           "ORDER BY ts").fetchall()
    switches = {ts: json.loads(after) for ts, after in con.execute(
        "SELECT ts, after FROM adjustments WHERE kind = 'model_fallback'").fetchall()}

    state = {"probability": "model"}
    for (ts, champion), version in zip(retrains, sorted(gates), strict=True):
        metrics = gates[version]
        beats = metrics["gate_live_log_loss"] < metrics["gate_base_rate_log_loss"]
        assert metrics["gate_beats_base_rate"] == float(beats)
        wanted = {"probability": "model"} if beats else {"probability": "base_rate",
                                                         "base_rate": metrics["gate_label_base_rate"]}
        assert switches.get(ts, state) == wanted, (version, champion)
        assert (ts in switches) == (wanted != state)  # an adjustment for every change, and only then
        state = wanted
    assert len(switches) >= 2  # this short timeline falls back and recovers


def test_model_hit_rates_adds_the_base_rate_and_an_auc_equal_to_the_mann_whitney_one(gate_run):
    _, con = gate_run
    rows = con.execute("SELECT model, predictions, base_rate, base_rate_log_loss, mean_probability, auc "
                       "FROM model_hit_rates").fetchall()
    column = {"ensemble": "probability", **{m: f"p_{m}" for m in ("attention_mlp", "lstm", "cnn", "transformer")}}

    assert {r[0] for r in rows} == set(column)
    for model, n, base_rate, base_loss, mean_p, sql_auc in rows:
        p, y = np.array(con.execute(f"SELECT {column[model]}, outcome FROM predictions").fetchall()).T
        assert n == len(y) and base_rate == pytest.approx(y.mean())
        assert base_loss == pytest.approx(-(y.mean() * np.log(y.mean()) + (1 - y.mean()) * np.log(1 - y.mean())))
        assert mean_p == pytest.approx(p.mean())
        assert sql_auc == pytest.approx(auc(p, y), abs=1e-12)


def test_every_version_records_feature_importance_and_the_view_follows_it_across_versions(gate_run):
    result, con = gate_run
    versions = [v for (v,) in con.execute("SELECT version FROM models ORDER BY ts").fetchall()]
    importance = con.execute("SELECT version, method, model, feature, importance, rank, change "
                             "FROM feature_importance").fetchall()
    features = 14

    assert len(versions) >= 4
    by = {(v, m, model): [] for v, m, model, *_ in importance}
    for v, method, model, feature, value, rank, change in importance:
        by[(v, method, model)].append((feature, value, rank, change))
    for v in versions:
        attention = by[(v, "attention", "attention_mlp")]
        assert len(attention) == features and sum(x[1] for x in attention) == pytest.approx(1.0, abs=1e-5)
        for model in ("attention_mlp", "lstm", "cnn", "transformer", "ensemble"):
            assert len(by[(v, "permutation", model)]) == features
    metrics = {v: json.loads(m) for v, m in con.execute("SELECT version, metrics FROM models").fetchall()}
    for (v, method, model), rows in by.items():
        previous = versions.index(v) - 1
        for feature, value, rank, change in rows:
            key = (f"importance.{method}.{feature}" if method == "attention"
                   else f"importance.{method}.{model}.{feature}")
            assert value == metrics[v][key]
            assert rank == 1 + sum(other[1] > value for other in rows)
            if previous < 0:
                assert change is None
            else:
                assert change == pytest.approx(value - metrics[versions[previous]][key])


def test_a_stopped_run_resumes_to_the_same_ledger_with_the_same_verdicts(gate_run, tmp_path):
    """The models trained before the stop are reused from the registry, with the gates' verdicts kept
    there: the champion and the base-rate fallback swap in at the same bars as in the whole run."""
    result, con = gate_run
    cfg = compose_run(*SHORT)
    market = load_run_market(cfg)
    fallback_at = con.execute("SELECT min(ts) FROM adjustments WHERE kind = 'model_fallback'").fetchone()[0]
    stop = int(np.searchsorted(market.ts, fallback_at)) + 300 - market.trade_from  # a day after a fallback

    cut = run_replay(cfg, tmp_path / "cut", market=market, stop_after_bars=stop)
    resumed = run_replay(cfg, tmp_path / "cut", market=market)

    assert resumed.resumed_from_bar is not None and resumed.resumed_from_bar <= cut.bars
    assert export(resumed.ledger_path) == export(result.ledger_path)
