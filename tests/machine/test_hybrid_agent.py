"""The hybrid agent's learning on real 5-minute BTC and ETH bars: retrains on the simulated clock
with a champion gate, weight updates, an adaptive gate, exploration by the clock and by epsilon,
every decision traceable to the model version that made it; and the 5-position cap on 1h spot."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import duckdb
import pytest

from ledger.views import create_views
from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from tests.support.ledger_export import differences, entry_times, export, fills_at_the_open, known_at
from tests.support.perturb import replay_perturbed
from tests.support.quick_hybrid import QUICK_HYBRID, RULE_BASED

DAY_MS = 86_400_000
# Two months of the quick hybrid agent, its gate stricter than declared.
FAST_ML = (
    *QUICK_HYBRID, "market.start=2024-01-01", "market.end=2024-03-01",
    "agent.components.ml_gate.threshold=0.55",  # more rejections, so epsilon has something to draw on
)


@pytest.fixture(scope="module")
def hybrid_run(tmp_path_factory):
    result = run_replay(compose_run(*FAST_ML), tmp_path_factory.mktemp("hybrid5m"))
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    create_views(con)
    yield result, con
    con.close()


def test_models_are_retrained_on_the_clock_and_every_version_is_kept_with_its_hash(hybrid_run):
    result, con = hybrid_run
    models = con.execute("SELECT version, path, sha256, train_end, status FROM models ORDER BY ts").fetchall()
    retrains = con.execute("SELECT ts, after->>'promoted', reason FROM adjustments "
                           "WHERE kind = 'model_retrain' ORDER BY ts").fetchall()
    assert len(models) == len(retrains) >= 3
    assert [b[0] - a[0] for a, b in zip(retrains, retrains[1:], strict=False)] == [14 * DAY_MS] * (len(retrains) - 1)
    assert retrains[0][2] == "first model" and retrains[0][1] == "true"
    for version, path, sha, _train_end, _ in models:
        assert hashlib.sha256((result.run_dir / path).read_bytes()).hexdigest() == sha
        assert path == f"models/{version}/model.pt"
    assert all(reason.startswith("beat the champion") == (promoted == "true")
               for _, promoted, reason in retrains[1:])


def test_each_entry_decision_names_the_live_champion_and_its_probability(hybrid_run):
    _, con = hybrid_run
    rows = con.execute("""
        SELECT d.ts, d.model_version, d.probability, d.threshold, d.passed,
               (SELECT m.version FROM models m WHERE m.ts <= d.ts AND m.status = 'champion'
                ORDER BY m.ts DESC LIMIT 1) AS champion
        FROM decisions d WHERE d.probability IS NOT NULL""").fetchall()
    assert len(rows) > 20
    assert all(version == champion for _, version, _, _, _, champion in rows)
    assert all(passed == (p >= thr) for _, _, p, thr, passed, _ in rows if passed is False)


def test_ensemble_weights_follow_recent_log_loss(hybrid_run):
    _, con = hybrid_run
    updates = con.execute("SELECT before, after, evidence FROM adjustments WHERE kind = 'ensemble_weights'").fetchall()
    assert len(updates) >= 5
    for _before, after, evidence in updates:
        after, losses = json.loads(after), json.loads(evidence)["ew_log_loss"]
        assert sum(after.values()) == pytest.approx(1.0)
        best = min(losses, key=losses.get)
        assert after[best] == max(after.values())  # the lowest recent log-loss weighs most


def test_exploration_windows_are_exact_and_epsilon_takes_about_a_tenth_of_rejections(hybrid_run):
    _, con = hybrid_run
    window = con.execute("SELECT ts FROM decisions WHERE mode = 'window'").fetchall()
    assert window
    assert all(10 <= datetime.fromtimestamp(ts / 1000, UTC).minute < 20 for (ts,) in window)
    opens = con.execute("SELECT ts FROM transitions WHERE trigger = 'open_window'").fetchall()
    assert opens and all(datetime.fromtimestamp(ts / 1000, UTC).minute == 10 for (ts,) in opens)
    taken, still_rejected = con.execute(
        "SELECT count(*) FILTER (WHERE mode = 'epsilon'), count(*) FILTER (WHERE mode = 'normal' AND NOT passed) "
        "FROM decisions WHERE probability IS NOT NULL").fetchone()
    assert still_rejected >= 10 and 0 < taken < still_rejected
    moves = con.execute("SELECT count(*) FROM transitions WHERE trigger = 'explore_epsilon'").fetchone()[0]
    assert moves == taken


def test_predictions_resolve_into_hit_rates_for_the_ensemble_and_each_member(hybrid_run):
    _, con = hybrid_run
    rates = {r[0]: r[1:] for r in con.execute(
        "SELECT model, predictions, hit_rate, majority_rate FROM model_hit_rates").fetchall()}
    assert set(rates) == {"ensemble", "attention_mlp", "lstm", "cnn", "transformer"}
    assert all(n > 1000 and 0.3 < hit < 0.9 for n, hit, _ in rates.values())


def test_an_ml_replay_is_deterministic_and_causal(hybrid_run, tmp_path):
    result, con = hybrid_run
    again = run_replay(compose_run(*FAST_ML), tmp_path / "again")
    tables = ("orders", "fills", "trades", "transitions", "adjustments", "models", "decisions", "predictions")
    assert export(again.ledger_path, tables=tables) == export(result.ledger_path, tables=tables)


@pytest.fixture(scope="module")
def hybrid_cuts(hybrid_run, tmp_path_factory):
    """The probe's perturbed replays: cut at the agent's middle entry (decided at t, filled at the open of
    the perturbed bar at t, with two models behind it), and at the ML gate's first decision."""
    result, con = hybrid_run
    cfg = compose_run(*FAST_ML)
    market = load_run_market(cfg)
    horizon = cfg.agent.components["ml_gate"]["retrainer"]["horizon"]
    entries = entry_times(result.ledger_path)
    first_gated = con.execute("SELECT min(ts) FROM decisions WHERE probability IS NOT NULL").fetchone()[0]
    cuts = ((entries[len(entries) // 2], 3), (first_gated, 4))
    folder = tmp_path_factory.mktemp("cuts")
    rules = {"timeframe_ms": market.timeframe_ms, "horizon_bars": horizon}
    return rules, [(t, replay_perturbed(cfg, market, t, seed, folder, horizon_bars=horizon)) for t, seed in cuts]


def test_nothing_known_at_a_hybrid_decision_changes_when_every_bar_it_must_not_see_does(hybrid_run, hybrid_cuts):
    """Every table, at every cut."""
    result, con = hybrid_run
    rules, cuts = hybrid_cuts
    for t, shaken in cuts:
        assert differences(known_at(result.ledger_path, t, **rules), known_at(shaken, t, **rules)) == []
    t, shaken = cuts[0]
    before = known_at(result.ledger_path, t, **rules)
    gated = con.execute("SELECT count(*) FROM decisions WHERE probability IS NOT NULL AND ts <= ?", [t]).fetchone()[0]
    assert gated > 10 and len(before["models"]) >= 2
    assert before["predictions"] and before["adjustments"] and before["equity"]
    # the entry decided at t filled at the open of the perturbed bar: stamped t, changed, and left out
    opened = fills_at_the_open(result.ledger_path, t)
    assert opened and opened != fills_at_the_open(shaken, t)


def test_the_hybrid_agent_reaches_but_never_exceeds_five_open_positions(tmp_path):
    """On its rule-based path (no ML gate), which takes every signal the filters let through."""
    cfg = compose_run("experiment=hybrid", "market.start=2022-01-01", "market.end=2024-01-01", *RULE_BASED)
    result = run_replay(cfg, tmp_path / "cap")
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    most, at_cap = con.execute("SELECT max(open_positions), count(*) FILTER (WHERE open_positions = 5) "
                               "FROM equity").fetchone()
    con.close()
    assert most == 5 and at_cap > 0


def test_a_spot_entry_clipped_to_the_free_cash_leaves_room_for_its_fee_and_is_filled(tmp_path):
    """A risk far above what the cash buys: every entry is clipped to the free cash, less the taker fee and
    slippage the fill pays at the next open, so the exchange fills it instead of refusing it."""
    cfg = compose_run("experiment=hybrid", "market.start=2023-01-01", "market.end=2023-07-01", *RULE_BASED,
                      "agent.components.fixed_risk.risk=0.05")
    result = run_replay(cfg, tmp_path / "clip")
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    clips = con.execute("SELECT count(*) FROM adjustments WHERE kind = 'leverage_clip'").fetchone()[0]
    refused = con.execute("SELECT count(*) FROM adjustments WHERE kind = 'order_rejected'").fetchone()[0]
    entries, filled = con.execute("SELECT count(*), count(f.order_id) FROM orders o LEFT JOIN fills f "
                                  "USING (order_id) WHERE o.intent = 'entry'").fetchone()
    lowest = con.execute("SELECT min(cash) FROM equity").fetchone()[0]
    con.close()
    assert clips >= 3 and refused == 0
    assert entries == filled  # every entry was filled, the clipped ones too
    assert lowest >= 0
