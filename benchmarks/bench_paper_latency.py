"""Paper trading's bar latency: from a bar's close on the exchange's clock to its rows committed and
the snapshot published, for each bar, with and without a retrain running beside the loop.

    .venv/bin/python benchmarks/bench_paper_latency.py [--bars 40] [--speed 3600] [OVERRIDE ...]

The hybrid agent (spot 1h, BTC and ETH) trades on the loopback Binance server of the tests
(tests/support/binance: the real ccxt client, the bundled candles) on an exchange clock running
``--speed`` times wall time, polling every 20 ms. A bar's latency is the wall time its equity mark
was written (``equity.wall_ts``: the bar's step, committed and published before the next) minus the
wall time the clock passed its close; it includes the poll interval and fetching the bar.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from machine.compose import compose_run  # noqa: E402
from machine.engine import run_replay  # noqa: E402
from tests.support.binance import FakeBinance, FakeClock  # noqa: E402

T0 = 1_691_280_000_000 + 1_800_000  # 2023-08-06 00:30 UTC


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=40)
    parser.add_argument("--speed", type=float, default=3600.0, help="exchange ms per wall ms (3600: a 1h bar a second)")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory(prefix="bench_paper_") as folder, \
            FakeBinance(FakeClock(T0, wall=time.time)) as exchange:
        run_dir = Path(folder) / "run"
        cfg = compose_run("agent=hybrid", "market=spot_1h", "market.symbols=[BTC/USDT,ETH/USDT]", "mode=paper",
                          f"exchange.base_url={exchange.base_url}", "mode.poll_seconds=0.02",
                          "exchange.rate_limit_ms=1", *overrides)
        exchange.clock.run(args.speed)
        anchor_wall, anchor_ms = time.time(), exchange.clock.now()
        run_replay(cfg, run_dir, stop_after_bars=args.bars)
        con = duckdb.connect(str(run_dir / "ledger.duckdb"), read_only=True)
        marks = con.execute("SELECT ts, epoch_ms(wall_ts) FROM equity ORDER BY ts").fetchall()
        retrains = [json.loads(e) for (e,) in con.execute(
            "SELECT evidence FROM adjustments WHERE kind = 'model_retrain'").fetchall()]
        con.close()
    spans = [(r["requested_at"], r["live_from"]) for r in retrains]
    latency: dict[bool, list[float]] = {True: [], False: []}
    for close, written_ms in marks[1:]:  # the first bar waits for the warm-up history
        passed_wall = anchor_wall + (close - anchor_ms) / args.speed / 1000
        training = any(start < close < live for start, live in spans)
        latency[training].append(written_ms / 1000 - passed_wall)
    print(f"paper bar latency, hybrid agent, BTC+ETH 1h, clock x{args.speed:g}, {len(marks)} bars")
    for training, values in latency.items():
        if values:
            label = "a retrain running beside the loop" if training else "no retrain running"
            print(f"  {label:<36} {len(values):>3} bars  median {statistics.median(values) * 1000:6.0f} ms  "
                  f"max {max(values) * 1000:6.0f} ms")
    for start, live in spans:
        print(f"  retrain asked at bar close {start}, live from {live}: {(live - start) / 3_600_000:g} bars later")


if __name__ == "__main__":
    main()
