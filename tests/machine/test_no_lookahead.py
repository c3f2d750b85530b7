"""No lookahead, proven at the boundary bar: replay the bundled data with everything a decision at
a bar close t must not see changed (the bar that opens at t and every later one, funding settled
after the last bar the decision saw), and every ledger row known at t stays as it was. A component
that reads a single bar ahead is caught. The hybrid agent's probe is in test_hybrid_agent.py."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from tests.machine.test_replay_guarantees import FUTURES_H1_2022
from tests.support.ledger_export import entry_times, export, known_at
from tests.support.perturb import bar_closing_at, perturbed_from, probe

# (where among the run's entry decisions, seed): a cut at an entry is where a peek would decide something
CUTS = ((0.1, 1), (0.35, 2), (0.6, 3), (0.85, 4))
PEEK = ("+agent.components.peek={_target_: tests.support.peeking.NextBarPeekingGate}",
        "agent.machine.states.conservative.components=[features,regime,signal,regime_gate,peek,fixed_risk,atr_exits]",
        "agent.machine.states.kelly_active.components=[features,regime,signal,regime_gate,peek,kelly,atr_exits]",
        "agent.machine.states.exploring.components=[features,regime,signal,discovery_gate,peek,explore,atr_exits]")
# The ML gate on a short cheap timeline: a 3-day first model of two quick members (one that beats the base
# rate, so the gate's probability is the model's), rescored daily, on the bar label (every bar a sample
# and a prediction, resolved an hour later).
QUICK_ML = (
    "experiment=hybrid_5m", "market.start=2024-01-01", "market.end=2024-01-10",
    "agent.components.ml_gate.retrainer.label=bar", "agent.components.ml_gate.retrainer.horizon=12",
    "+agent.components.ml_gate.retrainer.members=[attention_mlp,cnn]",
    "agent.components.regime.vol_lookback=288",
    "agent.components.ml_gate.retrain_every_days=1",
    "agent.components.ml_gate.retrainer.window_days=3",
    "agent.components.ml_gate.retrainer.training.epochs=3",
    "agent.components.ml_gate.retrainer.training.max_samples=2000",
    "agent.components.ml_gate.retrainer.training.threads=1",
)


def cuts_at_entries(ledger, where=CUTS) -> list[tuple[int, int]]:
    times = entry_times(ledger)
    return [(times[int(f * (len(times) - 1))], seed) for f, seed in where]


@pytest.fixture(scope="module")
def futures(tmp_path_factory):
    cfg = compose_run(*FUTURES_H1_2022)
    market = load_run_market(cfg)
    return cfg, market, run_replay(cfg, tmp_path_factory.mktemp("futures"), market=market)


def test_the_perturbation_changes_exactly_what_a_decision_at_t_must_not_see(futures):
    _, market, base = futures
    t = cuts_at_entries(base.ledger_path)[1][0]
    i = bar_closing_at(market, t)
    shaken = perturbed_from(market, t, np.random.default_rng(0))
    for symbol, data in market.symbols.items():
        moved = shaken.symbols[symbol]
        for b, m, names in ((data.bars, moved.bars, ("open", "high", "low", "close", "volume")),
                            (data.mark, moved.mark, ("open", "high", "low", "close"))):  # mark candles: no volume
            for name in names:
                before, after = getattr(b, name), getattr(m, name)
                assert np.array_equal(before[: i + 1], after[: i + 1])
                assert (before[i + 1:] != after[i + 1:]).all(), (symbol, name)
            assert (m.high >= np.maximum(m.open, m.close)).all() and (m.low <= np.minimum(m.open, m.close)).all()
        seen = data.funding.ts <= market.ts[i]
        assert np.array_equal(data.funding.rate[seen], moved.funding.rate[seen])
        assert (data.funding.rate[~seen] != moved.funding.rate[~seen]).all()


def test_nothing_known_at_a_futures_decision_changes_when_every_bar_it_must_not_see_does(futures, tmp_path):
    cfg, market, base = futures
    con = duckdb.connect(str(base.ledger_path), read_only=True)
    stops = con.execute("SELECT exit_ts FROM trades WHERE exit_reason = 'stop_loss' ORDER BY 1").fetchall()
    con.close()
    entries = cuts_at_entries(base.ledger_path)
    stop = (stops[len(stops) // 2][0], 5)  # and a cut at a stop that fired inside the bar closing at t
    results = probe(cfg, market, base.ledger_path, [*entries, stop], tmp_path)
    assert [r.differences for r in results] == [[]] * (len(entries) + 1)
    known = {t: known_at(base.ledger_path, t, timeframe_ms=market.timeframe_ms) for t, _ in (*entries, stop)}
    # the boundary rows stamped t: the entry decided at t is compared, its fill at the perturbed open is not
    assert all(any(order[0] == t for order in known[t]["orders"]) for t, _ in entries)
    assert all(before and before != after for before, after in (r.open_fills for r in results[:-1]))
    # ...and a stop inside the bar closing at t is compared
    assert any(fill[0] == stop[0] and fill[-1] == "stop_loss" for fill in known[stop[0]]["fills"])
    for table in ("orders", "fills", "trades", "funding", "equity", "transitions", "adjustments", "runs"):
        assert len(known[entries[-1][0]][table]) > 0, table


def test_a_futures_gate_that_reads_the_next_bar_is_caught(tmp_path):
    cfg = compose_run(*FUTURES_H1_2022, *PEEK)
    market = load_run_market(cfg)
    base = run_replay(cfg, tmp_path / "base", market=market)
    results = probe(cfg, market, base.ledger_path, cuts_at_entries(base.ledger_path), tmp_path)
    caught = [r for r in results if r.differences]
    assert caught
    # what the peek changed first is the entry decided at the cut itself
    assert all(any(d.startswith("orders") for d in r.differences) for r in caught)


def quick_ml_probe(folder, *overrides: str) -> tuple[int, Path, list[str]]:
    """The probe of QUICK_ML at one cut t, an hour after the first model went live: (t, the unperturbed
    replay's ledger, the differences)."""
    cfg = compose_run(*QUICK_ML, *overrides)
    market = load_run_market(cfg)
    retrainer, tf = cfg.agent.components["ml_gate"]["retrainer"], market.timeframe_ms
    horizon = retrainer["horizon"]
    t = int(market.ts[0]) + int(retrainer["window_days"] * 86_400_000) + 12 * tf
    stop = bar_closing_at(market, t) + horizon + 2 - market.trade_from
    base = run_replay(cfg, folder / "base", market=market, stop_after_bars=stop)
    assert any(model[0] < t for model in export(base.ledger_path, tables=("models",))["models"])  # live at t
    [cut] = probe(cfg, market, base.ledger_path, [(t, 5)], folder, horizon_bars=horizon)
    return t, base.ledger_path, cut.differences


@pytest.mark.parametrize(("gate", "peeks"), [("components.ml_gate.MLGate", False),
                                             ("tests.support.peeking.NextBarPeekingMLGate", True)])
def test_the_ml_gate_passes_the_probe_and_the_same_gate_fed_the_next_bar_is_caught(tmp_path, gate, peeks):
    _, _, found = quick_ml_probe(tmp_path, f"agent.components.ml_gate._target_={gate}")
    if peeks:  # each member's scores of the bars up to t moved, through the bar after each
        assert any(d.startswith("predictions") for d in found)
    else:
        assert found == []


def test_a_predictions_probability_is_the_one_made_at_its_bar_though_it_resolves_later(tmp_path):
    """The ensemble reweighs every 4 bars, so the predictions made by t resolve under weights learned
    from outcomes after t; the probability recorded is still the one the gate had at the prediction's bar."""
    t, ledger, found = quick_ml_probe(tmp_path, "agent.components.ml_gate.retrainer.ensemble.cadence=8")
    assert found == []
    con = duckdb.connect(str(ledger), read_only=True)
    reweighs = con.execute("SELECT count(*) FROM adjustments WHERE kind = 'ensemble_weights' AND ts > ?",
                           [t]).fetchone()[0]
    made = con.execute("SELECT count(DISTINCT probability) FROM predictions WHERE ts <= ?", [t]).fetchone()[0]
    con.close()
    assert reweighs >= 2 and made > 10  # weights moved after t, and the probabilities are the model's


def test_a_ledger_table_without_a_known_at_rule_is_refused(futures, tmp_path):
    _, market, base = futures
    ledger = tmp_path / "ledger.duckdb"
    ledger.write_bytes(base.ledger_path.read_bytes())
    con = duckdb.connect(str(ledger))
    con.execute("CREATE TABLE margin_calls (ts BIGINT, symbol VARCHAR)")
    con.close()
    with pytest.raises(LookupError, match="'margin_calls' has no known-at rule"):
        known_at(ledger, int(market.ts[100]), timeframe_ms=market.timeframe_ms)
