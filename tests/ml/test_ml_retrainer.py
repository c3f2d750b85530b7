from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from components.ml.dataset import head
from components.ml.features import last_closed_index
from components.ml.registry import ModelRegistry
from components.ml.scoring import score_samples_members, score_span, score_span_members
from components.ml.version import EnsembleVersion
from core.market import Bars
from tests.ml.ml_support import FIVE_MIN, end_ts, planted_bars, tiny_retrainer

DAY_MS = 86_400_000


def test_training_window_ends_at_now_and_holds_only_resolved_labels(
    planted: dict[str, Bars],
) -> None:
    retrainer = tiny_retrainer()
    bars = planted["SYN/USDT"]
    now_ts = int(bars.ts[2500]) + 17  # mid-bar: bar 2499 is the last one closed
    horizon = retrainer.config.horizon

    samples = retrainer.samples(planted, now_ts)
    fit, stacking, holdout = retrainer.split(samples)

    assert last_closed_index(bars, now_ts) == 2499
    assert samples.index.max() == 2499 - horizon
    assert samples.ts.min() >= now_ts - 8 * DAY_MS
    assert fit.ts.max() + horizon * FIVE_MIN < stacking.ts.min()  # purged seams
    assert stacking.ts.max() + horizon * FIVE_MIN < holdout.ts.min()
    assert holdout.ts.max() == samples.ts.max()  # the holdout is the most recent slice


def test_gate_promotes_a_clearly_better_challenger_and_rejects_a_worse_one(
    planted: dict[str, Bars], good_version: EnsembleVersion
) -> None:
    retrainer = tiny_retrainer()
    now_ts = end_ts(planted["SYN/USDT"])
    noise = {"SYN/USDT": planted_bars(10, seed=2, drift=0.0)}  # nothing to learn there
    weak_version = retrainer.train_challenger(noise, now_ts)
    holdout = retrainer.holdout(planted, now_ts)

    promote, evidence = retrainer.champion_gate(weak_version, good_version, holdout)
    keep, _ = retrainer.champion_gate(good_version, weak_version, holdout)

    assert promote and not keep
    assert evidence["challenger_log_loss"] < evidence["champion_log_loss"] - 0.05
    assert evidence["challenger_auc"] > 0.8
    assert evidence["n_holdout"] == len(holdout)
    scored = score_samples_members(good_version, holdout)  # as retrain passes them: scored once
    assert retrainer.champion_gate(weak_version, good_version, holdout, scored) == (promote, evidence)


def test_first_retrain_is_promoted_and_a_worse_challenger_is_kept_as_rejected(
    tmp_path: Path, planted: dict[str, Bars]
) -> None:
    registry = ModelRegistry(tmp_path / "models")
    bars = planted["SYN/USDT"]

    first = tiny_retrainer().retrain(planted, end_ts(bars) - DAY_MS, registry)
    untrained = tiny_retrainer(training=tiny_retrainer().config.training.model_copy(
        update={"lr": 1e-7, "epochs": 1}))
    second = untrained.retrain(planted, end_ts(bars), registry)

    assert first.promoted and first.record.reason == "first model"
    assert not second.promoted
    assert second.metrics["champion_log_loss"] < second.metrics["challenger_log_loss"]
    reopened = ModelRegistry(tmp_path / "models")
    assert [r.status for r in reopened.records()] == ["champion", "rejected"]
    assert "did not beat the champion" in reopened.records()[1].reason


def test_retraining_is_deterministic(planted: dict[str, Bars], good_version: EnsembleVersion) -> None:
    again = tiny_retrainer().train_challenger(planted, end_ts(planted["SYN/USDT"]))

    bars = planted["SYN/USDT"]
    np.testing.assert_array_equal(
        score_span_members(again, bars, 1000, len(bars)),
        score_span_members(good_version, bars, 1000, len(bars)),
    )
    assert again.metrics.keys() == good_version.metrics.keys()


@pytest.mark.parametrize("combiner", ["weighted", "stacking"])
def test_scoring_a_span_in_one_batch_equals_scoring_it_bar_by_bar(
    planted: dict[str, Bars], combiner: str
) -> None:
    """Each bar's batched score equals the score computed when only bars up to it exist."""
    bars = planted["SYN/USDT"]
    retrainer = tiny_retrainer(
        members=("attention_mlp", "lstm", "cnn", "transformer"),
        ensemble={"combiner": combiner},
        training=tiny_retrainer().config.training.model_copy(update={"epochs": 1}),
    )
    version = retrainer.train_challenger({"SYN/USDT": head(bars, 2000)}, end_ts(head(bars, 2000)))
    start, end = 2000, 2300  # the span this version is live for: after its training window

    batched = score_span(version, bars, start, end)
    members = score_span_members(version, bars, start, end)

    assert members.shape == (end - start, 4) and not np.isnan(batched).any()
    for t in (start, start + 1, start + 137, end - 1):
        alone = score_span_members(version, head(bars, t + 1), t, t + 1)
        np.testing.assert_allclose(alone[0], members[t - start], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(score_span(version, bars, t, t + 1)[0], batched[t - start],
                                   rtol=1e-5, atol=1e-6)


def test_bars_without_a_full_window_of_history_score_nan(good_version: EnsembleVersion,
                                                         planted: dict[str, Bars]) -> None:
    scores = score_span(good_version, planted["SYN/USDT"], 0, 400)

    assert np.isnan(scores[:300]).all() and not np.isnan(scores[320:]).any()


def test_the_base_rate_gate_lets_a_model_with_skill_gate_and_stops_one_without(
    tmp_path: Path, planted: dict[str, Bars]
) -> None:
    now_ts = end_ts(planted["SYN/USDT"])
    noise = {"SYN/USDT": planted_bars(10, seed=2, drift=0.0)}  # nothing to learn there
    # a rare label (a 6-bar return above 0.4 %) and a model that barely moved from its random start
    untrained = tiny_retrainer(fee=0.004, training=tiny_retrainer().config.training.model_copy(
        update={"lr": 1e-7, "epochs": 1}))

    skilled = tiny_retrainer().retrain(planted, now_ts, ModelRegistry(tmp_path / "planted"))
    unskilled = untrained.retrain(noise, now_ts, ModelRegistry(tmp_path / "noise"))

    for result, beats in ((skilled, 1.0), (unskilled, 0.0)):
        m = result.metrics
        assert m["beats_base_rate"] == beats
        assert (m["live_log_loss"] < m["base_rate_log_loss"]) == bool(beats)
        assert m["live_log_loss"] == m["challenger_log_loss"]  # the first model goes live
        assert 0.0 < m["base_rate"] < 1.0 and 0.0 < m["label_base_rate"] < 1.0
    # the verdict is kept with the version, so a resumed run reaches the same one
    reopened = ModelRegistry(tmp_path / "noise").records()[0]
    assert reopened.metrics["gate_beats_base_rate"] == 0.0
    assert reopened.metrics["gate_label_base_rate"] == unskilled.metrics["label_base_rate"]


def test_a_version_records_which_features_it_leans_on(good_version: EnsembleVersion) -> None:
    m = good_version.metrics
    features = good_version.feature_names
    attention = {f: m[f"importance.attention.{f}"] for f in features}
    permutation = {member: {f: m[f"importance.permutation.{member}.{f}"] for f in features}
                   for member in (*good_version.ensemble.names, "ensemble")}

    assert sum(attention.values()) == pytest.approx(1.0, abs=1e-5)
    # the planted pattern is in the time of day: shuffling it costs the ensemble the most
    ranked = sorted(permutation["ensemble"], key=permutation["ensemble"].get, reverse=True)
    assert set(ranked[:2]) & {"tod_sin", "tod_cos"}
    assert max(permutation["ensemble"].values()) > 0.05
