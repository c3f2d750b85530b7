"""One retrain of the four-member ensemble on the default 5m window: seconds, and log-loss out of sample.

    .venv/bin/python benchmarks/bench_ml.py [--dates 2024-03-01,...] [--threads 2] [--label bar|trade]

At each date, the hybrid_5m agent's retrainer (30 days of BTC/USDT + ETH/USDT 5m bars, its
training config) trains once with the training config before issue 11's speed work and once
with the current one, both on the same samples (``--label``, default ``bar``: every bar a sample,
the heaviest case), and scores the following 7 days with one batched pass per member. Printed per
date and config: seconds (members, feature importance, in all; wall clock, and the process's CPU
seconds, which other work on the cores inflates less) and the ensemble's out-of-sample
log-loss against always predicting the training base rate; then the mean paired difference in
log-loss (after - before) with its standard error across dates.

"Before" is the training config of commit 6acb431: window 32, width 32, 6 epochs, batch 256, at
most 12,000 samples, no early stopping, no feature importance. It runs with today's members (the
transformer was rewritten since), so it is faster than it was then (19.5 s at 6acb431).
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import numpy as np
import torch

from components.ml.metrics import classification_metrics, log_loss_per_sample
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.scoring import score_span_members
from components.ml.trade_labels import ExitSeries
from components.ml.version import EnsembleVersion
from core.component import Component
from core.market import MarketData
from machine.compose import compose_run
from machine.engine import build_components, load_run_market

WEEK_MS = 7 * 86_400_000
BEFORE = {"window": 32, "width": 32, "epochs": 6, "patience": None, "batch_size": 256, "max_samples": 12_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dates", default="2024-03-01,2024-04-15,2024-06-01,2024-07-15,2024-08-29",
                        help="UTC dates the retrains happen at")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--label", choices=["bar", "trade"], default="bar")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the composed config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = compose_run("experiment=hybrid_5m", *args.overrides)
    market = load_run_market(cfg)
    series = exit_series(cfg, market)
    agent = RetrainerConfig(**cfg.agent.components["ml_gate"]["retrainer"])
    training = agent.training.model_copy(update={"threads": args.threads})
    label = {"label": "bar", "horizon": 12} if args.label == "bar" else {"label": "trade", "horizon": 144}
    configs = {
        "before": agent.model_copy(update={**label, "importance_rows": 0,
                                           "training": training.model_copy(update=BEFORE)}),
        "after": agent.model_copy(update={**label, "training": training}),
    }
    bars = {s: d.bars for s, d in market.symbols.items()}
    print(f"retrain on 30 days of 5m BTC+ETH, {args.label} label, {args.threads} threads, "
          f"load average {os.getloadavg()[0]:.1f} (other work on the cores slows every number)")
    print(f"{'date':10s} {'config':7s} {'samples':>7s} {'attn':>5s} {'lstm':>5s} {'cnn':>5s} {'trans':>5s} "
          f"{'import':>6s} {'total s':>7s} {'cpu s':>6s} {'oos ll':>7s} {'base ll':>7s} {'auc':>6s}")
    losses: dict[str, list[float]] = {name: [] for name in configs}
    totals: dict[str, list[float]] = {name: [] for name in configs}
    cpus: dict[str, list[float]] = {name: [] for name in configs}
    for date in args.dates.split(","):
        now = int(datetime.fromisoformat(date).replace(tzinfo=UTC).timestamp() * 1000)
        for name, config in configs.items():
            retrainer = Retrainer(config)
            samples = retrainer.samples(bars, now, series)
            started, cpu = time.perf_counter(), time.process_time()
            version = retrainer.train_challenger(bars, now, series)
            total, cpu = time.perf_counter() - started, time.process_time() - cpu
            scores = out_of_sample(retrainer, version, market, now, series, float(samples.labels.mean()))
            t = retrainer.last_timings
            print(f"{date:10s} {name:7s} {len(samples):7d} {t['attention_mlp']:5.1f} {t['lstm']:5.1f} "
                  f"{t['cnn']:5.1f} {t['transformer']:5.1f} {t.get('importance', 0.0):6.2f} {total:7.1f} {cpu:6.1f} "
                  f"{scores['log_loss']:7.4f} {scores['base_rate_log_loss']:7.4f} {scores['auc']:6.3f}", flush=True)
            losses[name].append(scores["log_loss"])
            totals[name].append(total)
            cpus[name].append(cpu)
    gap = np.array(losses["after"]) - np.array(losses["before"])
    se = gap.std(ddof=1) / np.sqrt(len(gap)) if len(gap) > 1 else float("nan")
    print(f"\nmean retrain: before {np.mean(totals['before']):.1f} s, after {np.mean(totals['after']):.1f} s "
          f"({np.mean(totals['before']) / np.mean(totals['after']):.1f}x); CPU seconds (all threads) "
          f"{np.mean(cpus['before']):.1f} and {np.mean(cpus['after']):.1f}")
    print(f"out-of-sample log-loss, after - before: {gap.mean():+.4f} +- {se:.4f} (mean +- standard error over "
          f"{len(gap)} dates; per date {', '.join(f'{g:+.4f}' for g in gap)})")


def out_of_sample(retrainer: Retrainer, version: EnsembleVersion, market: MarketData, now: int,
                  series: dict[str, ExitSeries], base_rate: float) -> dict[str, float]:
    """The ensemble on the week after ``now``: the label's samples there, labels from the whole data."""
    rule = retrainer.label_rule(series)
    probs, labels = [], []
    for data in market.symbols.values():
        bars = data.bars
        start, end = (int(x) for x in np.searchsorted(bars.ts, [now, now + WEEK_MS]))
        members = score_span_members(version, bars, start, end)
        y, _ = rule.resolve(bars)
        y = y[start:end]
        ok = ~np.isnan(y) & ~np.isnan(members).any(axis=1)
        probs.append(version.ensemble.combine(members[ok]) if ok.any() else np.zeros(0))
        labels.append(y[ok])
    p, y = np.concatenate(probs), np.concatenate(labels)
    scores = classification_metrics(p, y)
    scores["base_rate_log_loss"] = float(log_loss_per_sample(np.full(len(y), base_rate), y).mean())
    return scores


def prepared(cfg, market: MarketData, names: tuple[str, ...]) -> tuple[dict[str, Component], dict]:
    """The agent's components ``names``, prepared on ``market`` in order, and what they share."""
    components = build_components(cfg)
    shared: dict = {}
    for name in names:
        components[name].prepare(market, shared)
    return components, shared


def exit_series(cfg, market: MarketData) -> dict[str, ExitSeries]:
    """The agent's ATR and volatility regime per bar, from its own features and regime components."""
    _, shared = prepared(cfg, market, ("features", "regime"))
    return {s: ExitSeries.from_shared(shared, s) for s in market.symbols}


if __name__ == "__main__":
    main()
