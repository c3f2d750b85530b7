"""Which label makes the better gate? The bar label against the trade label, on the same folds.

    .venv/bin/python benchmarks/bench_gate_labels.py                  # 5m BTC+ETH (hybrid_5m)
    .venv/bin/python benchmarks/bench_gate_labels.py --market 1h     # five 1h spot pairs (hybrid)

Walk-forward: every ``--step-days`` a model is trained, as the hybrid agent's retrainer does, on
the ``window_days`` before the fold's start, and scores the next ``--test-days``. Each variant is
the agent's retrainer with only the label changed:

* ``bar``: "the log return over 12 bars beats the fee", every bar a sample (the agent's default);
* ``trade``: "the signal's long wins, net of fees, under the agent's exits", trained on the
  signal's entries (meta-labelling);
* ``trade/every_bar``: the same outcome, for a long entered at any bar (more samples).

All are scored on the same events: the bars of the test spans where the signal enters, with the
trade's outcome as the truth (``components/ml/trade_labels.py``); ``filtered`` rows keep the
events the agent's regime gate and ATR band let through (what the gate sees in its normal states).
Printed per variant, pooled over the folds: the base rate (share of winning signal trades), AUC,
the precision of the trades a gate at the agent's starting threshold takes and of the top 30 % by
probability, log-loss against always predicting the training window's base rate, and calibration
(mean probability against the win rate; expected calibration error over 10 bins).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
from bench_ml import prepared

from components.ml.metrics import auc, log_loss_per_sample
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.scoring import score_span_members
from components.ml.trade_labels import ExitSeries, TradeLabelConfig, signal_entries, trade_labels
from core.component import Decision
from core.market import MarketData
from machine.compose import compose_run
from machine.engine import load_run_market

DAY_MS = 86_400_000
MARKETS = {"5m": "experiment=hybrid_5m", "1h": "experiment=hybrid"}
TRADE_HORIZON = {"5m": 144, "1h": 96}  # bars: nearly every signal trade has left by then (base rate steady)
TOP_SHARE = 0.3


@dataclass
class Scored:
    """Pooled out-of-sample scores of one variant on the test events."""

    p: list[np.ndarray]
    y: list[np.ndarray]
    fold: list[np.ndarray]
    filtered: list[np.ndarray]
    base: list[np.ndarray]  # the training window's base rate of trade wins, per event
    seconds: float = 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--market", choices=sorted(MARKETS), default="5m")
    parser.add_argument("--step-days", type=float, default=None, help="days between folds (5m: 30, 1h: 90)")
    parser.add_argument("--test-days", type=float, default=30.0)
    parser.add_argument("--folds", type=int, default=None, help="at most this many folds (the first ones)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trade-horizon", type=int, default=None,
                        help="bars before an open trade is valued at the close (5m: 144, 1h: 96)")
    parser.add_argument("--variants", default="bar,trade,trade/every_bar")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the composed config")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    cfg = compose_run(MARKETS[args.market], *args.overrides)
    market = load_run_market(cfg)
    gate = cfg.agent.components["ml_gate"]
    agent_retrainer = RetrainerConfig(**gate["retrainer"])
    base = agent_retrainer.model_copy(update={"training": agent_retrainer.training.model_copy(
        update={"threads": args.threads})})
    trade = base.trade
    series, filtered = exit_series_and_filters(cfg, market)
    horizon = args.trade_horizon or TRADE_HORIZON[args.market]
    variants = {
        "bar": base.model_copy(update={"label": "bar", "horizon": 12}),
        "trade": base.model_copy(update={"label": "trade", "horizon": horizon,
                                         "trade": trade.model_copy(update={"events": "signal"})}),
        "trade/every_bar": base.model_copy(update={"label": "trade", "horizon": horizon,
                                                   "trade": trade.model_copy(update={"events": "every_bar"})}),
    }
    chosen = {name: variants[name] for name in args.variants.split(",")}

    step = (args.step_days or (30.0 if args.market == "5m" else 90.0)) * DAY_MS
    first = int(market.ts[market.trade_from]) + int(base.window_days * DAY_MS)
    last_ts = int(market.ts[-1])
    starts = list(range(first, last_ts - int(args.test_days * DAY_MS) // 2, int(step)))[: args.folds]
    truth = {s: trade_labels(d.bars, series[s], trade, horizon, base.fee, np.flatnonzero(
        signal_entries(d.bars, trade.signal)))[0] for s, d in market.symbols.items()}
    print(f"{args.market}: {len(market.symbols)} symbols, {len(starts)} folds of {args.test_days:g} test days, "
          f"{args.threads} threads, window {base.window_days:g} days, trade horizon {horizon} bars; "
          f"load average {os.getloadavg()[0]:.1f}")

    results = {name: Scored([], [], [], [], []) for name in chosen}
    for k, now in enumerate(starts):
        end_ts = now + int(args.test_days * DAY_MS)
        prior = Retrainer(variants["trade"]).samples(market_bars(market), now, series).labels
        for name, config in chosen.items():
            retrainer = Retrainer(config)
            started = time.perf_counter()
            version = retrainer.train_challenger(market_bars(market), now, series)
            results[name].seconds += time.perf_counter() - started
            for symbol, data in market.symbols.items():
                bars = data.bars
                start, stop = np.searchsorted(bars.ts, [now, end_ts - bars.timeframe_ms])
                y = truth[symbol][start:stop]
                members = score_span_members(version, bars, int(start), int(stop))
                rows = ~np.isnan(y) & ~np.isnan(members).any(axis=1)
                r = results[name]
                r.p.append(version.ensemble.combine(members[rows]) if rows.any() else np.zeros(0))
                r.y.append(y[rows])
                r.fold.append(np.full(int(rows.sum()), k))
                r.filtered.append(filtered[symbol][start:stop][rows])
                r.base.append(np.full(int(rows.sum()), prior.mean() if len(prior) else 0.5))
        print(f"  fold {k + 1}/{len(starts)} done ({time.strftime('%H:%M:%S')})", flush=True)

    threshold = float(gate.get("threshold", 0.5))
    for subset in ("all", "filtered"):
        print(f"\nsignal trades: {subset} events; gate at the agent's starting threshold {threshold}")
        print(f"{'variant':16s} {'events':>6s} {'base':>6s} {'auc':>6s} {'auc>.5':>7s} {'taken':>6s} "
              f"{'prec@thr':>8s} {'prec@30%':>8s} {'logloss':>8s} {'base ll':>8s} {'mean p':>7s} {'ece':>6s} "
              f"{'train s':>8s}")
        for name, r in results.items():
            p, y, fold, keep, prior = (np.concatenate(x) for x in (r.p, r.y, r.fold, r.filtered, r.base))
            if subset == "filtered":
                p, y, fold, prior = p[keep], y[keep], fold[keep], prior[keep]
            print(row(name, p, y, fold, prior, threshold, r.seconds / max(len(starts), 1)))


def row(name: str, p: np.ndarray, y: np.ndarray, fold: np.ndarray, prior: np.ndarray, threshold: float,
        seconds: float) -> str:
    taken = p >= threshold
    top = np.zeros(len(p), dtype=bool)
    for k in np.unique(fold):  # the top share by probability within each fold, as a gate's rank
        rows = np.flatnonzero(fold == k)
        top[rows[np.argsort(-p[rows], kind="stable")[: max(1, int(round(len(rows) * TOP_SHARE)))]]] = True
    fold_auc = [auc(p[fold == k], y[fold == k]) for k in np.unique(fold)]
    return (f"{name:16s} {len(y):6d} {y.mean():6.3f} {auc(p, y):6.3f} "
            f"{sum(a > 0.5 for a in fold_auc):3d}/{len(fold_auc):<3d} {taken.mean():6.3f} "
            f"{y[taken].mean() if taken.any() else float('nan'):8.3f} {y[top].mean():8.3f} "
            f"{log_loss_per_sample(p, y).mean():8.4f} {log_loss_per_sample(prior, y).mean():8.4f} "
            f"{p.mean():7.3f} {calibration_error(p, y):6.3f} {seconds:8.1f}")


def calibration_error(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error: |mean p - win rate| per probability decile bin, weighted."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    return float(sum(abs(p[which == b].mean() - y[which == b].mean()) * (which == b).mean()
                     for b in range(bins) if (which == b).any()))


def market_bars(market: MarketData) -> dict:
    return {s: d.bars for s, d in market.symbols.items()}


def exit_series_and_filters(cfg, market: MarketData) -> tuple[dict[str, ExitSeries], dict[str, np.ndarray]]:
    """The agent's ATR and volatility regime per bar (its own features and regime components), and
    which bars its regime gate and ATR band let an entry through (the components themselves decide)."""
    components, shared = prepared(cfg, market, ("features", "regime", "regime_gate", "atr_filter"))
    series = {s: ExitSeries.from_shared(shared, s) for s in market.symbols}
    trade = TradeLabelConfig(**cfg.agent.components["ml_gate"]["retrainer"]["trade"])
    passes = {}
    for s, data in market.symbols.items():
        keep = np.zeros(len(data.bars), dtype=bool)
        closes = data.bars.close
        for i in np.flatnonzero(signal_entries(data.bars, trade.signal)):
            d = Decision(s, int(i), 0, float(closes[i]), None, vol_regime=int(shared[s]["vol_regime"][i]),
                         trend_regime=int(shared[s]["trend_regime"][i]), entry=1)
            for name in ("regime_gate", "atr_filter"):
                components[name].on_bar(d, None)  # neither reads the context
            keep[i] = d.entry == 1
        passes[s] = keep
    return series, passes


if __name__ == "__main__":
    main()
