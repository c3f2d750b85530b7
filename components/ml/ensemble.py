"""Combining members: performance weights (softmax of EW log-loss) or a stacking meta-learner.

Member predictions travel as a matrix (n, M) whose columns follow ``names``; a mapping
name -> (n,) array is accepted wherever a matrix is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.ml.metrics import EPS, log_loss_per_sample

COIN_FLIP_LOG_LOSS = math.log(2.0)

MemberProbs = np.ndarray | Mapping[str, np.ndarray]


class EnsembleConfig(BaseModel):
    """How members are combined."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    combiner: Literal["weighted", "stacking"] = "weighted"
    # Per resolved prediction; 0.998 halves an outcome's say after ~350 outcomes (~0.6 day of
    # two symbols on 5m bars).
    decay: float = Field(0.998, gt=0, lt=1)
    # Log-loss gap (nats) that moves weight by a factor of e; members differ by ~0.01 nats.
    temperature: float = Field(0.02, gt=0)
    cadence: int = Field(288, ge=1)  # resolved outcomes between weight updates
    meta_l2: float = Field(1.0, ge=0)  # ridge penalty of the stacking regression


class PerformanceWeights:
    """Weights = softmax(-EW log-loss / temperature) over each member's resolved predictions.

    Every member starts at the coin-flip log-loss (ln 2), so weights start equal.
    """

    def __init__(
        self,
        decay: float,
        temperature: float,
        names: Sequence[str] = (),
        ew_loss: Mapping[str, float] | None = None,
    ) -> None:
        if not 0 < decay < 1 or temperature <= 0:
            raise ValueError(f"need 0 < decay < 1 and temperature > 0, got {decay}, {temperature}")
        self.decay = decay
        self.temperature = temperature
        self.ew_loss: dict[str, float] = {n: COIN_FLIP_LOG_LOSS for n in names}
        self.ew_loss.update(ew_loss or {})

    @property
    def weights(self) -> dict[str, float]:
        names = list(self.ew_loss)
        if not names:
            return {}
        score = -np.array([self.ew_loss[n] for n in names]) / self.temperature
        w = np.exp(score - score.max())
        return dict(zip(names, (w / w.sum()).tolist(), strict=True))

    def update(self, model_probs: Mapping[str, np.ndarray], outcomes: np.ndarray) -> dict[str, float]:
        """Fold in resolved predictions (oldest first) and return the new weights."""
        outcomes = np.asarray(outcomes, dtype=np.float64)
        if np.isnan(outcomes).any():
            raise ValueError("outcomes must be resolved (no NaN)")
        k = len(outcomes)
        if k:
            # ew_k = d^k ew_0 + (1 - d) sum_j d^(k-1-j) loss_j, the recursion unrolled
            kernel = (1 - self.decay) * self.decay ** np.arange(k - 1, -1, -1, dtype=np.float64)
            for name, probs in model_probs.items():
                loss = log_loss_per_sample(probs, outcomes)
                prior = self.ew_loss.get(name, COIN_FLIP_LOG_LOSS)
                self.ew_loss[name] = float(self.decay**k * prior + kernel @ loss)
        return self.weights


class MetaLearner:
    """Logistic regression on member logits, fit on out-of-fold predictions (Newton, ridge)."""

    def __init__(self, l2: float = 1.0) -> None:
        self.l2 = l2
        self.coef: np.ndarray | None = None  # (M,)
        self.intercept = 0.0

    def fit(self, member_probs: np.ndarray, y: np.ndarray, iterations: int = 50) -> MetaLearner:
        Z = _design(member_probs)
        y = np.asarray(y, dtype=np.float64)
        beta = np.zeros(Z.shape[1])
        ridge = np.full(Z.shape[1], self.l2)
        ridge[0] = 0.0  # the intercept is not shrunk
        for _ in range(iterations):
            p = 1 / (1 + np.exp(-(Z @ beta)))
            grad = Z.T @ (p - y) + ridge * beta
            hess = (Z * (p * (1 - p))[:, None]).T @ Z + np.diag(ridge) + 1e-9 * np.eye(len(beta))
            step = np.linalg.solve(hess, grad)
            beta -= step
            if np.abs(step).max() < 1e-10:
                break
        self.intercept, self.coef = float(beta[0]), beta[1:]
        return self

    def predict(self, member_probs: np.ndarray) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("MetaLearner.predict before fit")
        z = _design(member_probs) @ np.concatenate(([self.intercept], self.coef))
        return 1 / (1 + np.exp(-z))


class Ensemble:
    """Members' probabilities -> one probability, by performance weights or stacking."""

    def __init__(self, names: Sequence[str], config: EnsembleConfig) -> None:
        self.names = tuple(names)
        self.config = config
        self.performance = PerformanceWeights(config.decay, config.temperature, self.names)
        self.meta: MetaLearner | None = None
        self._pending_probs: list[np.ndarray] = []
        self._pending_outcomes: list[np.ndarray] = []

    @property
    def weights(self) -> dict[str, float]:
        return self.performance.weights

    def fit_combiner(self, member_probs: MemberProbs, outcomes: np.ndarray) -> None:
        """Start from out-of-fold predictions: seed the weights and, for stacking, fit the meta."""
        probs = self.as_matrix(member_probs)
        self.performance.update(self._as_mapping(probs), outcomes)
        if self.config.combiner == "stacking":
            self.meta = MetaLearner(self.config.meta_l2).fit(probs, outcomes)

    def combine(self, member_probs: MemberProbs) -> np.ndarray:
        probs = self.as_matrix(member_probs)
        if self.config.combiner == "stacking":
            if self.meta is None:
                raise RuntimeError("stacking ensemble used before fit_combiner")
            return self.meta.predict(probs)
        w = self.weights
        return probs @ np.array([w[n] for n in self.names])

    def observe(self, member_probs: MemberProbs, outcomes: np.ndarray) -> dict[str, float] | None:
        """Queue newly resolved predictions; every ``cadence`` of them, update and return weights."""
        self._pending_probs.append(self.as_matrix(member_probs))
        self._pending_outcomes.append(np.atleast_1d(np.asarray(outcomes, dtype=np.float64)))
        if sum(len(o) for o in self._pending_outcomes) < self.config.cadence:
            return None
        probs = np.concatenate(self._pending_probs)
        outcomes_all = np.concatenate(self._pending_outcomes)
        self._pending_probs.clear()
        self._pending_outcomes.clear()
        return self.performance.update(self._as_mapping(probs), outcomes_all)

    def as_matrix(self, member_probs: MemberProbs) -> np.ndarray:
        if isinstance(member_probs, Mapping):
            missing = set(self.names) - set(member_probs)
            if missing:
                raise ValueError(f"member predictions missing for {sorted(missing)}")
            return np.stack([np.asarray(member_probs[n], dtype=np.float64) for n in self.names], 1)
        probs = np.asarray(member_probs, dtype=np.float64)
        probs = probs[None, :] if probs.ndim == 1 else probs
        if probs.shape[1] != len(self.names):
            raise ValueError(f"expected {len(self.names)} member columns, got {probs.shape[1]}")
        return probs

    def state(self) -> dict[str, Any]:
        """Plain-data state (no pending outcomes) for the registry."""
        return {
            "names": list(self.names),
            "config": self.config.model_dump(),
            "ew_loss": dict(self.performance.ew_loss),
            "meta": None
            if self.meta is None or self.meta.coef is None
            else {"intercept": self.meta.intercept, "coef": self.meta.coef.tolist()},
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Ensemble:
        ensemble = cls(state["names"], EnsembleConfig(**state["config"]))
        ensemble.performance.ew_loss.update(state["ew_loss"])
        if state["meta"] is not None:
            ensemble.meta = MetaLearner(ensemble.config.meta_l2)
            ensemble.meta.intercept = float(state["meta"]["intercept"])
            ensemble.meta.coef = np.asarray(state["meta"]["coef"], dtype=np.float64)
        return ensemble

    def _as_mapping(self, probs: np.ndarray) -> dict[str, np.ndarray]:
        return {n: probs[:, i] for i, n in enumerate(self.names)}


def _design(member_probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(member_probs, dtype=np.float64), EPS, 1 - EPS)
    return np.column_stack([np.ones(len(p)), np.log(p / (1 - p))])
