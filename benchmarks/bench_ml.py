"""One retrain of the four-member ensemble on the default data, then a week out of sample.

    .venv/bin/python benchmarks/bench_ml.py [--now 2024-08-29] [--combiner weighted|stacking]

Trains on the 30 days of BTC/USDT + ETH/USDT 5m bars before --now on 2 threads (seconds per
member and in all), then scores the following 7 days with one batched pass per member and
prints each member's and the ensemble's hit rate against a coin flip and the majority class.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch

from components.market.catalog import BUNDLED_DATA_DIR
from components.market.loader import load_bars
from components.ml.ensemble import EnsembleConfig
from components.ml.features import forward_labels, last_closed_index
from components.ml.metrics import classification_metrics
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.scoring import score_span_members
from components.ml.training import TrainingConfig

SYMBOLS = {"BTC/USDT": "binance_spot_BTC-USDT_5m.parquet", "ETH/USDT": "binance_spot_ETH-USDT_5m.parquet"}
WEEK_BARS = 7 * 288


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--now", default="2024-08-29", help="UTC date the retrain happens at")
    parser.add_argument("--combiner", default="weighted", choices=["weighted", "stacking"])
    parser.add_argument("--fee", type=float, default=0.002, help="label threshold (log return)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", type=Path, default=BUNDLED_DATA_DIR)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    bars = {s: load_bars(args.data / f, s, "5m", on_gap="fail")[0] for s, f in SYMBOLS.items()}
    now_ts = int(datetime.fromisoformat(args.now).replace(tzinfo=UTC).timestamp() * 1000)
    config = RetrainerConfig(
        fee=args.fee,
        ensemble=EnsembleConfig(combiner=args.combiner),
        training=TrainingConfig(threads=args.threads),
    )
    retrainer = Retrainer(config)
    load_before = os.getloadavg()[0]

    started = time.perf_counter()
    version = retrainer.train_challenger(bars, now_ts)
    total = time.perf_counter() - started
    m = version.metrics
    print(f"retrain at {args.now}: {int(m['n_fit'])} fit / {int(m['n_stacking'])} stacking / "
          f"{int(m['n_holdout'])} holdout samples, {args.threads} threads, "
          f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} (other work shares the cores)")
    for name in version.ensemble.names:
        print(f"  {name:14s} {retrainer.last_timings[name]:6.1f} s")
    print(f"  {'total':14s} {total:6.1f} s (features, four members, combiner, holdout scoring)")
    print(f"  weights {({k: round(v, 3) for k, v in version.ensemble.weights.items()})}")

    probs, labels = [], []
    started = time.perf_counter()
    for b in bars.values():
        start = last_closed_index(b, now_ts) + 1
        end = min(start + WEEK_BARS, len(b))
        probs.append(score_span_members(version, b, start, end))
        labels.append(forward_labels(b, version.horizon, version.fee)[start:end])
    scoring = time.perf_counter() - started
    P, y = np.concatenate(probs), np.concatenate(labels)
    ok = ~np.isnan(y) & ~np.isnan(P).any(axis=1)
    P, y = P[ok], y[ok]
    columns = {n: P[:, i] for i, n in enumerate(version.ensemble.names)}
    columns["ensemble"] = version.ensemble.combine(P)
    base = y.mean()
    print(f"\nnext 7 days, {len(y)} bars (2 symbols), scored in {scoring:.2f} s; label: "
          f"{version.horizon}-bar log return > {version.fee}; base rate {base:.3f}")
    print(f"  coin flip hit rate 0.500, majority class {max(base, 1 - base):.3f}, "
          f"base-rate log-loss {classification_metrics(np.full(len(y), base), y)['log_loss']:.4f}")
    print("  hit = accuracy at p > 0.5; top-20% = share of 1s among the 20% highest-p bars")
    for name, p in columns.items():
        s = classification_metrics(p, y)
        top = y[p >= np.quantile(p, 0.8)].mean()
        print(f"  {name:14s} hit {s['hit_rate']:.3f}  top-20% {top:.3f}  auc {s['auc']:.3f}  "
              f"log-loss {s['log_loss']:.4f}")


if __name__ == "__main__":
    main()
