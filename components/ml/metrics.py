"""Scores of probabilistic binary predictions: log-loss, hit rate, AUC."""

from __future__ import annotations

import numpy as np

EPS = 1e-7


def log_loss_per_sample(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Binary cross-entropy of each prediction (natural log), probabilities clipped."""
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    y = np.asarray(y, dtype=np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def auc(p: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties averaged); 0.5 when one class is absent."""
    y = np.asarray(y) > 0.5
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(p, kind="mergesort")
    sorted_p = np.asarray(p)[order]
    ranks = np.empty(len(p))
    ranks[order] = np.arange(1, len(p) + 1)
    # average ranks over ties
    _, first, counts = np.unique(sorted_p, return_index=True, return_counts=True)
    for start, count in zip(first[counts > 1], counts[counts > 1], strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(p: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """log_loss, hit_rate (accuracy at 0.5), auc, base_rate (share of 1s) and the log-loss of
    always predicting the base rate (the no-skill yardstick)."""
    y = np.asarray(y, dtype=np.float64)
    base = float(y.mean()) if len(y) else float("nan")
    return {
        "log_loss": float(log_loss_per_sample(p, y).mean()),
        "hit_rate": float(((np.asarray(p) > 0.5) == (y > 0.5)).mean()),
        "auc": auc(p, y),
        "base_rate": base,
        "base_log_loss": float(log_loss_per_sample(np.full(len(y), base), y).mean()),
    }
