"""Which features a version leans on, measured on its held-out slice at every retrain.

* ``importance.attention.<feature>``: the AttentionMLP's per-feature gate (a softmax over the
  features at the latest bar), averaged over the held-out windows; the weights sum to 1.
* ``importance.permutation.<member>.<feature>``: how much the member's held-out log-loss grows
  when that feature's whole window is shuffled across samples (model-agnostic; <= 0 means the
  member does not use it). ``<member>`` is also ``ensemble``: the combined probability.

One seeded permutation, on at most ``rows`` evenly spaced held-out rows, a feature at a time (one
window-sized copy of the rows): cheap enough to run at every retrain.
"""

from __future__ import annotations

import numpy as np
import torch

from components.ml.dataset import Samples
from components.ml.metrics import log_loss_per_sample
from components.ml.models import AttentionMLP
from components.ml.training import predict_proba, standardise
from components.ml.version import EnsembleVersion

PREFIX = "importance"


def feature_importance(version: EnsembleVersion, holdout: Samples, holdout_members: np.ndarray, rows: int,
                       seed: int) -> dict[str, float]:
    """Flat ``importance.*`` metrics of ``version`` on ``holdout``, whose member probabilities are
    ``holdout_members`` (empty when ``rows`` is 0)."""
    if rows == 0 or len(holdout) < 2:
        return {}
    keep = np.unique(np.linspace(0, len(holdout) - 1, min(rows, len(holdout))).round().astype(np.int64))
    sample = holdout.take(keep)
    X, y = sample.windows(version.window), sample.labels
    names, F = version.feature_names, len(version.feature_names)
    out: dict[str, float] = {}

    attention = version.members.get("attention_mlp")
    if attention is not None and isinstance(attention.module, AttentionMLP):
        with torch.inference_mode():
            gate = attention.module.feature_importance(torch.from_numpy(standardise(attention, X)))
        out.update({f"{PREFIX}.attention.{n}": float(w) for n, w in zip(names, gate.mean(0).tolist(), strict=True)})

    order = np.random.default_rng(seed).permutation(len(y))
    base = holdout_members[keep]
    members = version.ensemble.names
    permuted = np.empty((F, len(y), len(members)))  # [f]: every member with feature f's windows shuffled
    shuffled = X.copy()
    for f in range(F):
        shuffled[:, :, f] = X[order, :, f]
        for j, m in enumerate(members):
            permuted[f, :, j] = predict_proba(version.members[m], shuffled[:, -version.members[m].config.window:])
        shuffled[:, :, f] = X[:, :, f]
    columns = {m: (base[:, j], permuted[:, :, j]) for j, m in enumerate(members)}
    columns["ensemble"] = (version.ensemble.combine(base),
                           version.ensemble.combine(permuted.reshape(-1, len(members))).reshape(F, len(y)))
    for member, (p, p_shuffled) in columns.items():
        loss = log_loss_per_sample(p, y).mean()
        for f, n in enumerate(names):
            out[f"{PREFIX}.permutation.{member}.{n}"] = float(log_loss_per_sample(p_shuffled[f], y).mean() - loss)
    return out
