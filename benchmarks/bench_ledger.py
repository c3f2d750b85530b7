"""Ledger write speed: a bulk commit of equity marks, and the small commit of one bar.

Run: .venv/bin/python benchmarks/bench_ledger.py [--rows 100000] [--small-commits 1000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from ledger.writer import Ledger


def bulk_commit(path: Path, rows: int) -> tuple[float, float]:
    """Seconds to append `rows` equity marks, and to commit them."""
    with Ledger.open(path, "bench-bulk") as ledger:
        started = time.perf_counter()
        for bar in range(rows):
            ledger.append("equity", {"ts": bar * 60_000, "agent": "futures",
                                     "equity": 10_000.0 + bar, "cash": 10_000.0,
                                     "unrealized": 0.5, "open_positions": 1,
                                     "state": "conservative"})
        appended = time.perf_counter()
        ledger.commit()
        committed = time.perf_counter()
    return appended - started, committed - appended


def small_commits(path: Path, commits: int) -> list[float]:
    """Seconds per commit of one bar's rows: an equity mark, a decision and an order."""
    timings = []
    with Ledger.open(path, "bench-small") as ledger:
        for bar in range(commits):
            ts = bar * 60_000
            ledger.append("equity", {"ts": ts, "agent": "futures", "equity": 10_000.0,
                                     "open_positions": 0, "state": "conservative"})
            ledger.append("decisions", {"ts": ts, "agent": "futures", "symbol": "BTCUSDT",
                                        "model_version": "v1", "probability": 0.61,
                                        "threshold": 0.55, "passed": True, "mode": "normal"})
            ledger.append("orders", {"ts": ts, "agent": "futures", "order_id": f"o{bar}",
                                     "symbol": "BTCUSDT", "side": "buy", "qty": 0.01,
                                     "order_type": "market", "intent": "entry", "leverage": 3.0,
                                     "mode": "normal", "state": "conservative", "reason": "signal"})
            started = time.perf_counter()
            ledger.commit()
            timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--small-commits", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        append_s, commit_s = bulk_commit(Path(folder) / "bulk.duckdb", args.rows)
        timings = small_commits(Path(folder) / "small.duckdb", args.small_commits)
    print(f"bulk: {args.rows} equity rows")
    print(f"  append  {args.rows / append_s:>12,.0f} rows/s  ({append_s * 1e3:.0f} ms)")
    print(f"  commit  {args.rows / commit_s:>12,.0f} rows/s  ({commit_s * 1e3:.0f} ms)")
    print(f"  total   {args.rows / (append_s + commit_s):>12,.0f} rows/s")
    ms = sorted(t * 1e3 for t in timings)
    print(f"small: {len(ms)} commits of 3 rows in 3 tables")
    print(f"  median {statistics.median(ms):.2f} ms, mean {statistics.fmean(ms):.2f} ms, "
          f"p95 {ms[int(len(ms) * 0.95)]:.2f} ms")


if __name__ == "__main__":
    main()
