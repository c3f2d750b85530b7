"""Batched, causal inference of one version over the span of bars it is live for."""

from __future__ import annotations

import numpy as np

from components.ml.dataset import Samples
from components.ml.features import FEATURE_NAMES, complete_rows, prefix_features
from components.ml.version import EnsembleVersion
from core.market import Bars


def score_span_members(
    version: EnsembleVersion, bars: Bars, start_idx: int, end_idx: int
) -> np.ndarray:
    """(end_idx - start_idx, M) member probabilities for bars ``start_idx .. end_idx - 1``.

    Row ``t`` is what the version says once bar ``t`` has closed: features come from
    ``bars[:end_idx]`` and each is causal, so a bar never sees a later one. Each member runs
    once over the whole span. Bars without a full window of history get NaN.
    """
    _check_features(version)
    if not 0 <= start_idx <= end_idx <= len(bars):
        raise ValueError(f"span [{start_idx}, {end_idx}) is outside 0..{len(bars)}")
    features = prefix_features(bars, end_idx)
    out = np.full((end_idx - start_idx, len(version.members)), np.nan)
    ready = complete_rows(features, version.window)[start_idx:end_idx]
    idx = np.flatnonzero(ready) + start_idx
    if len(idx):
        out[ready] = version.predict_members(features, idx)
    return out


def score_span(version: EnsembleVersion, bars: Bars, start_idx: int, end_idx: int) -> np.ndarray:
    """(end_idx - start_idx,) ensemble probabilities with the version's current combiner."""
    members = score_span_members(version, bars, start_idx, end_idx)
    out = np.full(len(members), np.nan)
    ready = ~np.isnan(members).any(axis=1)
    if ready.any():
        out[ready] = version.ensemble.combine(members[ready])
    return out


def score_samples_members(version: EnsembleVersion, samples: Samples) -> np.ndarray:
    """(n, M) member probabilities for prepared samples (one batched pass per symbol)."""
    _check_features(version)
    out = np.empty((len(samples), len(version.members)))
    for code, name in enumerate(samples.symbols):
        rows = samples.symbol == code
        if rows.any():
            out[rows] = version.predict_members(samples.features[name], samples.index[rows])
    return out


def _check_features(version: EnsembleVersion) -> None:
    if version.feature_names != FEATURE_NAMES:
        raise ValueError(
            f"model {version.version} was trained on features {version.feature_names}, "
            f"this build computes {FEATURE_NAMES}"
        )
