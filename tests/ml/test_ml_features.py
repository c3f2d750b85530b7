from __future__ import annotations

import numpy as np
import pytest

from components.ml.dataset import head, resolved_samples
from components.ml.features import (
    FEATURE_NAMES,
    build_features,
    complete_rows,
    forward_labels,
    last_closed_index,
    prefix_features,
    resolved_until,
    windows,
)
from components.ml.labels import LabelRule
from components.ml.trade_labels import TradeLabelConfig
from core.market import Bars
from tests.ml.ml_support import perturb_after

N = 6000  # enough bars for every lookback (the longest is 302) several times over


@pytest.fixture(scope="module")
def bars(btc_bars: Bars) -> Bars:
    return head(btc_bars, N)


def test_features_have_one_column_per_name_and_nan_only_in_warm_up(bars: Bars) -> None:
    X = build_features(bars)

    assert X.shape == (N, len(FEATURE_NAMES)) and X.dtype == np.float32
    warm_up = int(np.flatnonzero(complete_rows(X, 1))[0])
    assert 288 <= warm_up <= 400
    assert not np.isnan(X[warm_up:]).any()


@pytest.mark.parametrize("t", [350, 2500, N - 2])
def test_no_feature_at_t_changes_when_every_later_bar_is_perturbed(bars: Bars, t: int) -> None:
    original = build_features(bars)
    perturbed = build_features(perturb_after(bars, t, seed=t))

    np.testing.assert_array_equal(original[: t + 1], perturbed[: t + 1])
    assert not np.allclose(original[t + 1 :], perturbed[t + 1 :], equal_nan=True)


def test_features_of_a_prefix_equal_the_prefix_of_features(bars: Bars) -> None:
    np.testing.assert_array_equal(build_features(head(bars, 1000)), build_features(bars)[:1000])


def test_features_sliced_from_the_whole_history_are_those_of_each_prefix(btc_bars: Bars) -> None:
    for n in (1000, 17_000, len(btc_bars.ts) - 1):
        sliced = prefix_features(btc_bars, n)
        np.testing.assert_array_equal(sliced, build_features(head(btc_bars, n)))
        assert not sliced.flags.writeable  # shared between the retrains and the rescoring


def test_label_is_one_when_the_forward_return_beats_the_fee(bars: Bars) -> None:
    horizon, fee = 12, 0.002
    labels = forward_labels(bars, horizon, fee)
    fwd = np.log(bars.close[horizon:] / bars.close[:-horizon])

    np.testing.assert_array_equal(labels[:-horizon], (fwd > fee).astype(float))
    assert np.isnan(labels[-horizon:]).all()
    assert 0.1 < labels[:-horizon].mean() < 0.5  # a fee makes "beats it" the rarer outcome


def test_label_at_i_is_resolved_only_once_bar_i_plus_horizon_has_closed(bars: Bars) -> None:
    horizon, now = 12, 3000
    seen = forward_labels(head(bars, now + 1), horizon, 0.0)
    full = forward_labels(bars, horizon, 0.0)
    last = resolved_until(now, horizon)

    assert last == now - horizon
    np.testing.assert_array_equal(seen[: last + 1], full[: last + 1])
    assert np.isnan(seen[last + 1 :]).all()
    assert resolved_until(5, horizon) == -1


def test_training_samples_at_now_ignore_every_later_bar(bars: Bars) -> None:
    horizon, now_idx = 12, 4000
    now_ts = int(bars.ts[now_idx]) + bars.timeframe_ms  # the moment bar now_idx closes
    args = (now_ts, LabelRule("bar", horizon, 0.0, TradeLabelConfig()), 16, 10 * 86_400_000)

    samples = resolved_samples({"BTC/USDT": bars}, *args)
    perturbed = resolved_samples({"BTC/USDT": perturb_after(bars, now_idx, seed=1)}, *args)

    assert samples.index.max() == resolved_until(now_idx, horizon)
    np.testing.assert_array_equal(samples.index, perturbed.index)
    np.testing.assert_array_equal(samples.labels, perturbed.labels)
    np.testing.assert_array_equal(samples.windows(16), perturbed.windows(16))


def test_last_closed_index_counts_a_bar_once_its_close_time_has_passed(bars: Bars) -> None:
    step = bars.timeframe_ms
    assert last_closed_index(bars, int(bars.ts[10]) + step) == 10
    assert last_closed_index(bars, int(bars.ts[10]) + step - 1) == 9
    assert last_closed_index(bars, int(bars.ts[0])) == -1


def test_windows_stack_the_rows_ending_at_each_index() -> None:
    X = np.arange(20, dtype=np.float32).reshape(10, 2)

    out = windows(X, np.array([2, 9]), 3)

    assert out.shape == (2, 3, 2)
    np.testing.assert_array_equal(out[0], X[0:3])
    np.testing.assert_array_equal(out[1], X[7:10])
    with pytest.raises(ValueError, match="window indices"):
        windows(X, np.array([1]), 3)
