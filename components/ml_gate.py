"""The hybrid agent's ML gate: an ensemble's probability must clear an adaptive threshold.

Learning runs on the agent's clock, inline in replay (deterministic):

* every ``retrain_every_days`` a challenger is trained on the rolling window ending now and gated
  against the champion on the most recent held-out slice (``components/ml/retrainer.py``); the
  live version then scores the coming span of bars in one batched, causal pass per model;
* a live version that does not beat the base rate on that slice does not gate: the base rate
  stands in for its probability until a retrain beats it (a ``model_fallback`` adjustment);
* each bar the live version predicts the label (``retrainer.label``: the signal's trade, or the
  bar's forward return) where the label has samples, with the probability the gate acts on;
  ``horizon`` bars later the prediction resolves: it is written to the ledger (``predictions``)
  with that probability, and feeds the ensemble's performance weights (adjustments);
* each closed gated trade moves the threshold within its bounds, toward the target win rate;
* a rejected signal is taken anyway, at reduced size, with probability ``epsilon`` (seeded).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from components.ml.dataset import head
from components.ml.ensemble import Ensemble
from components.ml.labels import LabelRule
from components.ml.registry import ModelRecord, ModelRegistry
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.scoring import score_span_members
from components.ml.trade_labels import CHUNK, ExitSeries
from components.ml.version import EnsembleVersion
from core.component import NEVER, AgentContext, Component, Decision, Stage
from core.errors import ConfigError
from core.market import Bars, MarketData
from core.records import ClosedTrade

DAY_MS = 86_400_000
RECENT_PREDICTIONS = 500  # the window of the hit rate a heartbeat shows
MEMBER_COLUMNS = {"attention_mlp": "p_attention_mlp", "lstm": "p_lstm", "cnn": "p_cnn",
                  "transformer": "p_transformer"}


class EpsilonDraw:
    """Seeded coin for epsilon-greedy exploration: ``take()`` is True with probability epsilon."""

    def __init__(self, epsilon: float, seed: int):
        self.epsilon = epsilon
        self._rng = np.random.default_rng(seed)

    def take(self) -> bool:
        return bool(self._rng.random() < self.epsilon)


@dataclass(frozen=True)
class _Prediction:
    """What the gate predicted at bar ``i``, with the probability it acted on."""

    i: int
    version: str
    members: np.ndarray
    probability: float


@dataclass(frozen=True)
class _Training:
    """A retrain requested at bar close ``requested_at``; ``live_from`` is set when resuming."""

    requested_at: int
    wall_started: float
    future: Future[tuple[ModelRecord, bool, dict[str, float]]]
    live_from: int | None

    def ready(self, now: int) -> bool:
        if self.live_from is not None:
            return now >= self.live_from
        return self.future.done()


@dataclass(frozen=True)
class _Span:
    """A live version's bars ``[start, end)``: its member scores so far, the combiner it went live with."""

    start: int
    end: int
    version: EnsembleVersion
    ensemble: Ensemble
    base_rate: float | None
    probs: dict[str, np.ndarray]


class MLGateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    retrainer: RetrainerConfig = RetrainerConfig()
    retrain_every_days: float = Field(default=30.0, gt=0.0)  # simulated days between retrains
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)  # starting probability an entry must reach
    threshold_min: float = Field(default=0.35, gt=0.0, lt=1.0)
    threshold_max: float = Field(default=0.75, gt=0.0, lt=1.0)
    threshold_step: float = Field(default=0.01, gt=0.0)  # per adaptation
    target_win_rate: float = Field(default=0.45, gt=0.0, lt=1.0)  # of gated trades
    tolerance: float = Field(default=0.05, ge=0.0)  # no change while within target +- tolerance
    lookback_trades: int = Field(default=20, ge=1)  # gated trades the win rate is measured over
    min_trades: int = Field(default=5, ge=1)
    epsilon: float = Field(default=0.10, ge=0.0, le=1.0)  # share of rejections taken anyway
    epsilon_size: float = Field(default=0.5, gt=0.0, le=1.0)  # their size, relative to normal

    @model_validator(mode="after")
    def _bounds(self) -> MLGateConfig:
        if not self.threshold_min <= self.threshold <= self.threshold_max:
            raise ValueError(f"threshold {self.threshold} must lie in [threshold_min, threshold_max] "
                             f"= [{self.threshold_min}, {self.threshold_max}]")
        unknown = set(self.retrainer.members) - set(MEMBER_COLUMNS)
        if unknown:
            raise ValueError(f"unknown ensemble members {sorted(unknown)}; known: {sorted(MEMBER_COLUMNS)}")
        return self


class MLGate(Component):
    """Entries pass only when the live ensemble's probability clears the adaptive threshold."""

    stage = Stage.MODEL_GATE
    Config = MLGateConfig
    config: MLGateConfig
    acts_on_entries_only = True

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self._retrainer = Retrainer(self.config.retrainer)
        self._registry: ModelRegistry | None = None
        self._live: EnsembleVersion | None = None
        self._live_version: str | None = None
        self._span_start = 0
        self._span_end = 0  # the live version scores bars [span_start, span_end) as they arrive
        self._probs: dict[str, np.ndarray] = {}
        self._next_retrain: int | None = None
        self._training: _Training | None = None  # a retrain started and not yet swapped in
        self._recent_hits: deque[bool] = deque(maxlen=RECENT_PREDICTIONS)  # (p > 0.5) == outcome
        self._made: dict[str, deque[_Prediction]] = {}  # per symbol, oldest first, until resolved
        self._outcomes: dict[str, np.ndarray] = {}  # per symbol, labels computed so far (NaN: not yet)
        self._base_rate: float | None = None  # set while the live version does not beat the base rate
        self.threshold = self.config.threshold
        self._gated: deque[bool] = deque(maxlen=self.config.lookback_trades)
        self._epsilon: EpsilonDraw | None = None
        self._horizon = self.config.retrainer.horizon
        self._spans: list[_Span] = []  # every live version's span, for ``probability``
        self._leader: Callable[[str, int], float | None] | None = None  # set by ``follow``

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        self._bars: dict[str, Bars] = {s: d.bars for s, d in market.symbols.items()}
        self._ts = market.ts
        self._tf = market.timeframe_ms
        series = None
        if self.config.retrainer.label == "trade":
            try:
                series = {s: ExitSeries.from_shared(shared, s) for s in self._bars}
            except ValueError as exc:
                raise ConfigError(f"{self.name}: retrainer.label=trade: {exc}") from None
        self._rule: LabelRule = self._retrainer.label_rule(series)
        self._domain = {s: self._rule.rows(b) for s, b in self._bars.items()}  # causal: signal entries
        for s, b in self._bars.items():
            self._made.setdefault(s, deque())
            known = self._outcomes.get(s, np.zeros(0))
            self._outcomes[s] = np.concatenate([known, np.full(len(b) - len(known), np.nan)])
        if self._next_retrain is None and len(market.ts):  # the first model: once a window of history exists
            first_close = int(market.ts[0]) + self._tf
            self._next_retrain = first_close + int(self.config.retrainer.window_days * DAY_MS)

    def warmup_bars(self, timeframe_ms: int) -> int:
        """A training window of history: the first model is trained once it has passed."""
        return int(math.ceil(self.config.retrainer.window_days * DAY_MS / timeframe_ms))

    # --- learning on the clock --------------------------------------------------------------
    def on_clock(self, i: int, now: int, ctx: AgentContext) -> None:
        if self._leader is not None:  # a follower learns nothing
            self._epsilon = self._epsilon or EpsilonDraw(self.config.epsilon, ctx.seed)
            return
        if self._epsilon is None:
            self._epsilon = EpsilonDraw(self.config.epsilon, ctx.seed)
            self._registry = ModelRegistry(ctx.artifacts_dir / "models")
        if self._next_retrain is not None and now >= self._next_retrain:
            self._training = self._start_training(now, ctx)
            self._next_retrain = now + int(self.config.retrain_every_days * DAY_MS)
        if self._training is not None and self._training.ready(now):
            training, self._training = self._training, None
            self._swap_in(i, now, training, ctx)
        self._resolve(i, ctx)
        self._make_predictions(i)

    def _start_training(self, now: int, ctx: AgentContext) -> _Training:
        """Train beside the loop (paper, live) or inline (replay). A resumed run reuses the version
        it trained at this bar and swaps it in at the bar it went live at the first time."""
        assert self._registry is not None
        for record in self._registry.records():
            if record.train_end == now and record.status != "candidate":
                done: Future[tuple[ModelRecord, bool, dict[str, float]]] = Future()
                gate = {k.removeprefix("gate_"): v for k, v in record.metrics.items() if k.startswith("gate_")}
                done.set_result((record, record.status in ("champion", "retired"), gate))
                return _Training(now, time.perf_counter(), done, record.live_from)
        retrainer, bars, registry, series = self._retrainer, dict(self._bars), self._registry, self._rule.exit_series

        def train() -> tuple[ModelRecord, bool, dict[str, float]]:
            result = retrainer.retrain(bars, now, registry, series)
            return result.record, result.promoted, result.metrics

        return _Training(now, time.perf_counter(), ctx.learn(train), None)

    def _swap_in(self, i: int, now: int, training: _Training, ctx: AgentContext) -> None:
        assert self._registry is not None
        record, promoted, metrics = training.future.result()
        if record.live_from is None:
            record = self._registry.mark_live_from(record.version, now)
        path = (self._registry.root / record.path).relative_to(ctx.artifacts_dir)
        ctx.record("models", {"version": record.version, "path": str(path),
                              "sha256": record.sha256, "train_start": record.train_start,
                              "train_end": record.train_end,
                              "metrics": {**record.metrics, **{f"gate_{k}": v for k, v in metrics.items()}},
                              "status": "champion" if promoted else "rejected"})
        before = self._live_version
        if promoted:
            self._live = self._registry.load(record.version)
            self._live_version = record.version
        evidence = {"gate": metrics, "train_start": record.train_start, "train_end": record.train_end,
                    "requested_at": training.requested_at, "live_from": now}
        if not ctx.learns_inline:  # beside the loop: how long it took (wall clock, so never in replay)
            evidence["wall_seconds"] = round(time.perf_counter() - training.wall_started, 3)
        ctx.adjust("model_retrain", {"champion": before},
                   {"champion": self._live_version, "challenger": record.version, "promoted": promoted},
                   record.reason, evidence)
        self._check_base_rate(metrics, ctx)
        if self._live is not None:
            self._score_span(i)

    def _check_base_rate(self, metrics: dict[str, float], ctx: AgentContext) -> None:
        """The live version gates only while it beats the base rate on held-out data; otherwise the
        base rate of the training window is the probability every signal gets (it passes only if the
        base rate clears the threshold). Each change is an adjustment with the held-out evidence."""
        if "beats_base_rate" not in metrics:
            return
        base_rate = None if metrics["beats_base_rate"] else metrics["label_base_rate"]
        if base_rate == self._base_rate:
            return

        def source(rate: float | None) -> dict[str, Any]:
            return {"probability": "model"} if rate is None else {"probability": "base_rate", "base_rate": rate}

        loss, base = metrics.get("live_log_loss", math.nan), metrics.get("base_rate_log_loss", math.nan)
        verdict = "beats" if base_rate is None else "does not beat"
        ctx.adjust("model_fallback", source(self._base_rate), source(base_rate),
                   f"{self._live_version} {verdict} the base rate on held-out data: log-loss {loss:.5f} vs {base:.5f}",
                   {"model_version": self._live_version,
                    **{k: metrics[k] for k in ("live_log_loss", "base_rate_log_loss", "base_rate",
                                                "label_base_rate", "n_holdout") if k in metrics}})
        self._base_rate = base_rate

    def _score_span(self, i: int) -> None:
        """The live version's member probabilities for the bars until the next retrain, batched."""
        assert self._live is not None
        span = int(math.ceil(self.config.retrain_every_days * DAY_MS / self._tf)) + 1
        self._span_start, self._span_end = i, i + span
        self._probs = {s: np.empty((0, len(self._live.members))) for s in self._bars}
        self._score_known_bars()
        self._spans.append(_Span(i, i + span, self._live, Ensemble.from_state(self._live.ensemble.state()),
                                 self._base_rate, self._probs))

    def _score_known_bars(self) -> None:
        """Score the span's bars known so far: all at once in replay, as they close in paper and live."""
        assert self._live is not None
        for symbol, bars in self._bars.items():
            done = self._span_start + len(self._probs[symbol])
            end = min(len(bars), self._span_end)
            if end > done:
                self._probs[symbol] = np.concatenate(
                    [self._probs[symbol], score_span_members(self._live, bars, done, end)])

    def _member_probs(self, symbol: str, i: int) -> np.ndarray | None:
        probs = self._probs.get(symbol)
        k = i - self._span_start
        if probs is not None and k >= len(probs) and i < self._span_end:
            self._score_known_bars()
            probs = self._probs[symbol]
        if probs is None or not 0 <= k < len(probs) or np.isnan(probs[k]).any():
            return None
        return probs[k]

    def _predict(self, symbol: str, i: int) -> _Prediction | None:
        """The live version's prediction for bar ``i`` with the weights in force now, or None."""
        if self._leader is not None:
            p = self._leader(symbol, i)
            return None if p is None else _Prediction(i, "leader", np.empty(0), p)
        if self._live is None:
            return None
        members = self._member_probs(symbol, i)
        if members is None:
            return None
        p = self._base_rate if self._base_rate is not None else float(self._live.ensemble.combine(members)[0])
        assert self._live_version is not None
        return _Prediction(i, self._live_version, members, p)

    def _make_predictions(self, i: int) -> None:
        """Predict every symbol whose bar ``i`` is a sample of the label; kept until resolved."""
        for symbol, made in self._made.items():
            if i < len(self._domain[symbol]) and self._domain[symbol][i]:
                prediction = self._predict(symbol, i)
                if prediction is not None:
                    made.append(prediction)

    def _outcome(self, symbol: str, j: int) -> float:
        """The label of bar ``j``, read once bar ``j + horizon`` has closed. Labels are computed a
        block at a time from the bars known; each reads only bars up to its own ``j + horizon``."""
        outcomes = self._outcomes[symbol]
        if math.isnan(outcomes[j]):
            bars = self._bars[symbol]
            end = min(len(bars) - self._horizon, j + CHUNK)
            rows = np.zeros(end + self._horizon, dtype=bool)
            rows[j:end] = self._domain[symbol][j:end]
            outcomes[j:end] = self._rule.resolve(head(bars, end + self._horizon), rows)[0][j:end]
        return float(outcomes[j])

    def _resolve(self, i: int, ctx: AgentContext) -> None:
        """Predictions made ``horizon`` bars ago (or earlier) resolve now: record each with the
        probability the gate had for it, and feed the live version's to its ensemble weights."""
        j = i - self._horizon
        rows, outcomes = [], []
        for symbol, made in self._made.items():
            while made and made[0].i <= j:
                self._record_resolved(symbol, made.popleft(), rows, outcomes, ctx)
        if not rows or self._live is None:
            return
        before = dict(self._live.ensemble.weights)
        after = self._live.ensemble.observe(np.array(rows), np.array(outcomes))
        if after is not None and after != before:
            ctx.adjust("ensemble_weights", before, after, "softmax of each member's recent log-loss",
                       {"model_version": self._live_version, "decay": self._live.ensemble.config.decay,
                        "temperature": self._live.ensemble.config.temperature,
                        "ew_log_loss": dict(self._live.ensemble.performance.ew_loss)})

    def _record_resolved(self, symbol: str, prediction: _Prediction, rows: list[np.ndarray],
                         outcomes: list[float], ctx: AgentContext) -> None:
        j = prediction.i
        outcome = self._outcome(symbol, j)
        if prediction.version == self._live_version:
            rows.append(prediction.members)
            outcomes.append(outcome)
        self._recent_hits.append((prediction.probability > 0.5) == (outcome == 1.0))
        names = self.config.retrainer.members  # every version's member columns, in this order
        ctx.record("predictions", {
            "ts": int(self._ts[j]) + self._tf, "symbol": symbol, "model_version": prediction.version,
            "probability": prediction.probability, "outcome": outcome,
            **{MEMBER_COLUMNS[n]: float(p) for n, p in zip(names, prediction.members, strict=True)}})

    def status(self) -> dict[str, Any]:
        hits = self._recent_hits
        return {"model_version": self._live_version,
                "model_hit_rate": sum(hits) / len(hits) if hits else None}

    # --- the gate ---------------------------------------------------------------------------
    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry:
            return
        made = self._made.get(d.symbol)
        prediction = made[-1] if made and made[-1].i == d.i else self._predict(d.symbol, d.i)
        threshold = self.threshold - d.gate_relaxation
        if prediction is None:
            d.entry, d.reason = 0, "ml gate: no champion model scores this bar yet"
            ctx.record("decisions", {"symbol": d.symbol, "model_version": self._live_version,
                                     "probability": None, "threshold": threshold, "passed": False,
                                     "mode": d.mode})
            return
        assert self._epsilon is not None
        p = prediction.probability
        passed = p >= threshold
        if not passed and d.gate_relaxation == 0.0 and self._epsilon.take():
            passed, d.mode, d.size_scale = True, "epsilon", self.config.epsilon_size
        ctx.record("decisions", {"symbol": d.symbol, "model_version": self._live_version, "probability": p,
                                 "threshold": threshold, "passed": passed, "mode": d.mode})
        source = "base rate" if self._base_rate is not None else "ml gate"
        if not passed:
            d.entry, d.reason = 0, f"{source}: p={p:.3f} < {threshold:.3f}"
        else:
            d.reason = f"{d.reason}; {source} p={p:.3f} (threshold {threshold:.3f}, {self._live_version})"

    def on_trade_closed(self, trade: ClosedTrade, ctx: AgentContext) -> None:
        """Gated trades move the threshold: stricter when they lose, looser when they win."""
        if trade.mode != "normal":
            return
        self._gated.append(trade.pnl > 0)
        c = self.config
        if len(self._gated) < c.min_trades:
            return
        win_rate = sum(self._gated) / len(self._gated)
        step = c.threshold_step if win_rate < c.target_win_rate - c.tolerance else (
            -c.threshold_step if win_rate > c.target_win_rate + c.tolerance else 0.0)
        new = round(min(c.threshold_max, max(c.threshold_min, self.threshold + step)), 6)
        if new != self.threshold:
            ctx.adjust("gate_threshold", {"threshold": self.threshold}, {"threshold": new},
                       "gated trades win less than the target" if step > 0 else "gated trades win more than the target",
                       {"win_rate": win_rate, "target_win_rate": c.target_win_rate, "tolerance": c.tolerance,
                        "gated_trades": len(self._gated), "trade_id": trade.trade_id})
            self.threshold = new

    # --- followers: the optimiser's trials and shadows gate on the live gate's scores -----------
    def follow(self, leader: Callable[[str, int], float | None]) -> None:
        """Gate on ``leader(symbol, i)`` (the live gate's ``probability``) instead of learning: nothing
        is trained, scored, predicted or recorded here (machine/optimise: a trial or a shadow)."""
        self._leader = leader

    def next_clock(self, i: int) -> int:
        return NEVER if self._leader is not None else super().next_clock(i)

    def probability(self, symbol: str, i: int) -> float | None:
        """What bar ``i`` (closed by now) of ``symbol`` scores under the version live at that bar, combined
        with the weights it went live with (the base rate where that stood in); None before the first
        version or without a full feature window."""
        span = next((s for s in reversed(self._spans) if s.start <= i), None)
        if span is None or i >= span.end:
            return None
        probs, k = span.probs[symbol], i - span.start
        if k >= len(probs):  # paper, live: scored as bars close
            probs = span.probs[symbol] = np.concatenate(
                [probs, score_span_members(span.version, self._bars[symbol], span.start + len(probs), i + 1)])
        if np.isnan(probs[k]).any():
            return None
        return span.base_rate if span.base_rate is not None else float(span.ensemble.combine(probs[k])[0])


class RelaxThresholdsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    by: float = Field(default=0.05, ge=0.0, lt=1.0)  # probability points off every gate threshold


class RelaxThresholds(Component):
    """Exploration windows: gates downstream accept entries ``by`` below their threshold."""

    stage = Stage.GATE
    Config = RelaxThresholdsConfig
    config: RelaxThresholdsConfig
    acts_on_entries_only = True

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if d.entry:
            d.gate_relaxation = self.config.by
            d.mode = "window"
