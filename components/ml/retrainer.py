"""Rolling-window retraining of the ensemble, gated against the champion on recent held-out bars.

At ``now`` the resolved samples of the last ``window_days`` are split in time order:

    | fit (members train; their last val_fraction picks the epoch) | stacking | holdout |

The stacking slice gives out-of-fold member predictions that seed the combiner; the holdout
(the most recent slice) is touched only by the gates and by the feature importances:

* the champion gate scores champion and challenger on it, and promotes the better;
* the base-rate gate scores the version that will be live against always predicting the base
  rate of the labels before the holdout: a version that does not beat it must not gate trades.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.ml.dataset import Samples, chronological_split, resolved_samples
from components.ml.ensemble import Ensemble, EnsembleConfig
from components.ml.features import FEATURE_NAMES
from components.ml.importance import feature_importance
from components.ml.labels import LabelKind, LabelRule
from components.ml.metrics import classification_metrics, log_loss_per_sample
from components.ml.models import MODEL_REGISTRY
from components.ml.registry import ModelRecord, ModelRegistry
from components.ml.scoring import score_samples_members, score_span
from components.ml.trade_labels import ExitSeries, TradeLabelConfig
from components.ml.training import TrainingConfig, train_model
from components.ml.version import EnsembleVersion
from core.market import Bars

DAY_MS = 86_400_000


class RetrainerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # bar: does the log return over `horizon` bars beat the fee; trade: does the signal's trade win
    # under the agent's exits (trade_labels.py). Compared in benchmarks/bench_gate_labels.py.
    label: LabelKind = "bar"
    trade: TradeLabelConfig = TradeLabelConfig()
    horizon: int = Field(12, ge=1)  # bars a label looks ahead (1 h on 5m bars); the trade label's time-out
    fee: float = Field(0.002, ge=0)  # round-trip cost as a log return (2 x 0.1 % taker)
    window_days: float = Field(30.0, gt=0)  # rolling training window ending at 'now'
    stacking_fraction: float = Field(0.15, gt=0, lt=1)
    holdout_fraction: float = Field(0.15, gt=0, lt=1)
    members: tuple[str, ...] = tuple(MODEL_REGISTRY)
    min_improvement: float = Field(0.0, ge=0)  # log-loss (nats) a challenger must gain
    min_gain_over_base_rate: float = Field(0.0, ge=0)  # log-loss (nats) the live version must gain on the base rate
    importance_rows: int = Field(1000, ge=0)  # held-out rows permutation importance scores (0: none)
    training: TrainingConfig = TrainingConfig()
    ensemble: EnsembleConfig = EnsembleConfig()


@dataclass(frozen=True)
class RetrainResult:
    record: ModelRecord  # the challenger's record after the gate (champion or rejected)
    promoted: bool
    metrics: dict[str, float]  # the gate's evidence


class Retrainer:
    score_span = staticmethod(score_span)

    def __init__(self, config: RetrainerConfig) -> None:
        unknown = set(config.members) - set(MODEL_REGISTRY)
        if unknown:
            raise ValueError(f"unknown members {sorted(unknown)}; known: {sorted(MODEL_REGISTRY)}")
        self.config = config
        self.last_timings: dict[str, float] = {}

    def label_rule(self, exit_series: Mapping[str, ExitSeries] | None = None) -> LabelRule:
        c = self.config
        return LabelRule(c.label, c.horizon, c.fee, c.trade, exit_series)

    def samples(self, bars_by_symbol: Mapping[str, Bars], now_ts: int,
                exit_series: Mapping[str, ExitSeries] | None = None) -> Samples:
        """Resolved samples of the rolling window ending at ``now_ts``."""
        c = self.config
        return resolved_samples(bars_by_symbol, now_ts, self.label_rule(exit_series), c.training.window,
                                int(c.window_days * DAY_MS))

    def split(self, samples: Samples) -> tuple[Samples, Samples, Samples]:
        """(fit, stacking, holdout), oldest first, purged at the seams."""
        c = self.config
        fit, stacking, holdout = chronological_split(samples, (c.stacking_fraction, c.holdout_fraction))
        return fit, stacking, holdout

    def holdout(self, bars_by_symbol: Mapping[str, Bars], now_ts: int,
                exit_series: Mapping[str, ExitSeries] | None = None) -> Samples:
        return self.split(self.samples(bars_by_symbol, now_ts, exit_series))[2]

    def train_challenger(self, bars_by_symbol: Mapping[str, Bars], now_ts: int,
                         exit_series: Mapping[str, ExitSeries] | None = None) -> EnsembleVersion:
        return self._train(self.samples(bars_by_symbol, now_ts, exit_series), now_ts)[0]

    def champion_gate(
        self, champion: EnsembleVersion | None, challenger: EnsembleVersion, holdout: Samples,
        challenger_members: np.ndarray | None = None,
    ) -> tuple[bool, dict[str, float]]:
        """Promote when the challenger's log-loss on ``holdout`` beats the champion's by
        ``min_improvement``; with no champion the challenger wins by default. ``challenger_members``:
        the challenger's member probabilities on ``holdout``, when they are scored already."""
        if len(holdout) == 0:
            raise ValueError("empty held-out slice: the gate has nothing to compare on")
        metrics = {"n_holdout": float(len(holdout))}
        challenger_scores = _version_metrics(challenger, holdout, challenger_members)
        metrics.update({f"challenger_{k}": v for k, v in challenger_scores.items()})
        if champion is None:
            return True, metrics
        champion_scores = _version_metrics(champion, holdout)
        metrics.update({f"champion_{k}": v for k, v in champion_scores.items()})
        # Retraining more often than the holdout is long lets the champion have trained on it:
        # the gate then favours the champion, the safe direction, and the evidence says so.
        metrics["champion_trained_on_holdout"] = float(champion.train_end > holdout.ts.min())
        gain = champion_scores["log_loss"] - challenger_scores["log_loss"]
        metrics["log_loss_gain"] = gain
        return gain > self.config.min_improvement, metrics

    def base_rate_gate(self, live_log_loss: float, prior: Samples, holdout: Samples) -> dict[str, float]:
        """Does the version going live beat always predicting the base rate of the labels before
        the holdout (``prior``), on the holdout? ``beats_base_rate`` is 1.0 or 0.0."""
        base_rate = float(prior.labels.mean()) if len(prior) else 0.5
        base_log_loss = float(log_loss_per_sample(np.full(len(holdout), base_rate), holdout.labels).mean())
        return {"base_rate": base_rate, "base_rate_log_loss": base_log_loss, "live_log_loss": live_log_loss,
                "beats_base_rate": float(live_log_loss < base_log_loss - self.config.min_gain_over_base_rate)}

    def retrain(
        self, bars_by_symbol: Mapping[str, Bars], now_ts: int, registry: ModelRegistry,
        exit_series: Mapping[str, ExitSeries] | None = None,
    ) -> RetrainResult:
        """Train a challenger, store it, gate it against the champion, promote or reject it, and
        say whether the version live from now beats the base rate (the gate's metrics)."""
        samples = self.samples(bars_by_symbol, now_ts, exit_series)
        challenger, holdout, challenger_members = self._train(samples, now_ts)
        record = registry.save(challenger)
        current = registry.champion()
        champion = registry.load(current.version) if current is not None else None
        promoted, metrics = self.champion_gate(champion, challenger, holdout, challenger_members)
        live = "challenger" if promoted else "champion"
        prior = samples.take(np.flatnonzero(samples.ts < holdout.ts.min())) if len(holdout) else samples
        metrics.update(self.base_rate_gate(metrics[f"{live}_log_loss"], prior, holdout))
        metrics["label_base_rate"] = float(samples.labels.mean())  # the whole window's, for the fallback
        if current is None:
            return RetrainResult(registry.promote(record.version, "first model", metrics), True, metrics)
        verdict = (
            f"holdout log-loss {metrics['challenger_log_loss']:.5f} vs {current.version}'s "
            f"{metrics['champion_log_loss']:.5f} (min gain {self.config.min_improvement})"
        )
        if promoted:
            record = registry.promote(record.version, f"beat the champion: {verdict}", metrics)
        else:
            record = registry.reject(record.version, f"did not beat the champion: {verdict}", metrics)
        return RetrainResult(record, promoted, metrics)

    def _train(self, samples: Samples, now_ts: int) -> tuple[EnsembleVersion, Samples, np.ndarray]:
        """The challenger, the holdout and the challenger's member probabilities on it."""
        c = self.config
        fit, stacking, holdout = self.split(samples)
        X = fit.windows(c.training.window)
        members, metrics = {}, {}
        self.last_timings = {}  # wall-clock seconds per member: kept out of the (deterministic) version
        for name in c.members:
            started = time.perf_counter()
            members[name], member_metrics = train_model(name, X, fit.labels, c.training)
            self.last_timings[name] = time.perf_counter() - started
            metrics[f"{name}_val_log_loss"] = float(member_metrics.get("val_log_loss", np.nan))
        ensemble = Ensemble(c.members, c.ensemble)
        version = EnsembleVersion(
            members=members,
            ensemble=ensemble,
            feature_names=FEATURE_NAMES,
            horizon=c.horizon,
            fee=c.fee,
            train_start=int(samples.ts[0]),
            train_end=int(now_ts),
        )
        oof = score_samples_members(version, stacking)
        ensemble.fit_combiner(oof, stacking.labels)
        for i, name in enumerate(c.members):
            metrics[f"{name}_oof_log_loss"] = classification_metrics(oof[:, i], stacking.labels)[
                "log_loss"
            ]
        holdout_members = score_samples_members(version, holdout)
        metrics.update({f"holdout_{k}": v for k, v in _version_metrics(version, holdout, holdout_members).items()})
        metrics.update({"n_fit": len(fit), "n_stacking": len(stacking), "n_holdout": len(holdout)})
        started = time.perf_counter()
        metrics.update(feature_importance(version, holdout, holdout_members, c.importance_rows, c.training.seed))
        self.last_timings["importance"] = time.perf_counter() - started
        version = dataclasses.replace(version, metrics={k: float(v) for k, v in metrics.items()})
        return version, holdout, holdout_members


def _version_metrics(version: EnsembleVersion, samples: Samples, members: np.ndarray | None = None
                     ) -> dict[str, float]:
    """The ensemble's scores on ``samples``, from its ``members``' probabilities there when given."""
    probs = version.ensemble.combine(score_samples_members(version, samples) if members is None else members)
    return classification_metrics(probs, samples.labels)
