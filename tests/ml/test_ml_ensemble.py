from __future__ import annotations

import numpy as np
import pytest

from components.ml.ensemble import Ensemble, EnsembleConfig, MetaLearner, PerformanceWeights
from components.ml.metrics import log_loss_per_sample


def members_with_skill(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """'sharp' knows the outcome well, 'vague' a little, 'wrong' is inverted."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.5).astype(float)
    signal = 2 * y - 1
    probs = {
        "sharp": 1 / (1 + np.exp(-(2.0 * signal + rng.normal(0, 1, n)))),
        "vague": 1 / (1 + np.exp(-(0.3 * signal + rng.normal(0, 1, n)))),
        "wrong": 1 / (1 + np.exp(-(-1.0 * signal + rng.normal(0, 1, n)))),
    }
    return probs, y


def test_weights_start_equal_and_move_to_the_member_with_lower_log_loss() -> None:
    weights = PerformanceWeights(decay=0.99, temperature=0.1, names=("sharp", "vague", "wrong"))
    probs, y = members_with_skill(500, seed=1)

    assert weights.weights == pytest.approx({"sharp": 1 / 3, "vague": 1 / 3, "wrong": 1 / 3})
    after = weights.update(probs, y)

    assert after["sharp"] > after["vague"] > after["wrong"]
    assert after["sharp"] > 0.9
    assert sum(after.values()) == pytest.approx(1.0)


def test_update_in_one_batch_equals_update_one_outcome_at_a_time() -> None:
    probs, y = members_with_skill(50, seed=2)
    batch = PerformanceWeights(0.9, 0.5)
    single = PerformanceWeights(0.9, 0.5)

    batch.update(probs, y)
    for i in range(len(y)):
        single.update({k: v[i : i + 1] for k, v in probs.items()}, y[i : i + 1])

    assert batch.ew_loss == pytest.approx(single.ew_loss)
    ew = np.log(2.0)
    for loss in log_loss_per_sample(probs["vague"], y):
        ew = 0.9 * ew + 0.1 * loss
    assert batch.ew_loss["vague"] == pytest.approx(ew)


def test_recent_outcomes_outweigh_old_ones() -> None:
    weights = PerformanceWeights(decay=0.95, temperature=0.1)
    probs, y = members_with_skill(300, seed=3)
    weights.update({"a": probs["sharp"], "b": probs["wrong"]}, y)
    assert weights.weights["a"] > 0.99

    weights.update({"a": probs["wrong"], "b": probs["sharp"]}, y)  # the two swap skill

    assert weights.weights["b"] > 0.99


def test_unresolved_outcomes_are_refused() -> None:
    with pytest.raises(ValueError, match="resolved"):
        PerformanceWeights(0.9, 1.0).update({"a": np.array([0.4])}, np.array([np.nan]))


def test_meta_learner_beats_the_worst_member_and_learns_to_invert_it() -> None:
    probs, y = members_with_skill(2000, seed=4)
    fresh, fresh_y = members_with_skill(2000, seed=5)
    names = ("vague", "wrong")
    X = np.column_stack([probs[n] for n in names])

    meta = MetaLearner(l2=1.0).fit(X, y)
    stacked = meta.predict(np.column_stack([fresh[n] for n in names]))

    losses = {n: log_loss_per_sample(fresh[n], fresh_y).mean() for n in names}
    assert log_loss_per_sample(stacked, fresh_y).mean() < min(losses.values())
    assert meta.coef is not None and meta.coef[1] < 0  # 'wrong' is read backwards


def test_ensemble_updates_weights_only_every_cadence_outcomes() -> None:
    names = ("sharp", "wrong")
    ensemble = Ensemble(names, EnsembleConfig(cadence=10, decay=0.9, temperature=0.1))
    probs, y = members_with_skill(25, seed=6)
    rows = np.column_stack([probs[n] for n in names])

    updates = [ensemble.observe(rows[i], y[i : i + 1]) for i in range(25)]

    assert [i for i, u in enumerate(updates) if u is not None] == [9, 19]
    assert updates[19]["sharp"] > updates[9]["sharp"] > 0.5
    assert ensemble.weights == updates[19]  # the last 5 outcomes wait for the next update


@pytest.mark.parametrize("combiner", ["weighted", "stacking"])
def test_ensemble_state_round_trips_and_combines_identically(combiner: str) -> None:
    names = ("sharp", "vague", "wrong")
    probs, y = members_with_skill(400, seed=7)
    ensemble = Ensemble(names, EnsembleConfig(combiner=combiner, temperature=0.1))
    ensemble.fit_combiner(probs, y)

    restored = Ensemble.from_state(ensemble.state())

    np.testing.assert_array_equal(restored.combine(probs), ensemble.combine(probs))
    combined = log_loss_per_sample(ensemble.combine(probs), y).mean()
    assert combined < log_loss_per_sample(probs["vague"], y).mean()
