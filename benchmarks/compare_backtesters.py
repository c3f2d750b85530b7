"""The EMA 12/26 all-in baseline in Ratchet and in backtesting.py, on the bundled BTC/USDT 1h bars.

    .venv/bin/python benchmarks/compare_backtesters.py [--backtesting-python /tmp/btvenv/bin/python]
                                                       [--repeats 3] [--window 2023-01-01:2024-01-01]

backtesting.py is not a dependency of this project. Install it in a throwaway venv
(``python3 -m venv /tmp/btvenv && /tmp/btvenv/bin/pip install backtesting pyarrow ta-lib``) and pass
that interpreter with ``--backtesting-python``; the backtesting.py half then runs there, in a child
process, and this script compares its trades and final equity with Ratchet's ledger. Without it, and
with backtesting.py not importable here, the script says so and exits 0.

Both sides: EMA 12/26 on close (TA-Lib, SMA-seeded), long-only, enter on the cross up and exit on
the cross down, signal at the close and fill at the next open, all free cash in, 0.1 % commission
per side, no spread, 10,000 USDT. backtesting.py trades whole units only, so it runs as a
``FractionalBacktest`` in satoshis (1e-8 BTC): its quantities are rounded down to a satoshi, ours
are not, and the equities drift apart by that rounding alone. Speed: Ratchet's time is
``run_replay`` (Parquet load, indicators, replay loop, durable DuckDB ledger); backtesting.py's is
``Backtest.run`` on a DataFrame already in memory; both best of ``--repeats`` in one process each
(Ratchet computes an indicator once per input in a process, so its first run is printed too).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BTC_1H = ROOT / "components/market/data/binance_spot_BTC-USDT_1h.parquet"
FEE = 0.001
CASH = 10_000.0


def _ms(day: str | None) -> int | None:
    return None if day is None else int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def run_backtesting_py(start: str | None, end: str | None, repeats: int) -> dict:
    """backtesting.py's run of the baseline: its trades, final equity and best run time."""
    import pandas as pd
    import pyarrow.parquet as pq
    import talib
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    table = pq.read_table(BTC_1H)
    ts = table["ts"].to_numpy()
    keep = (ts >= (_ms(start) or ts[0])) & (ts < (_ms(end) or ts[-1] + 1))
    frame = pd.DataFrame({c.capitalize(): table[c].to_numpy()[keep]
                          for c in ("open", "high", "low", "close", "volume")},
                         index=pd.to_datetime(ts[keep], unit="ms", utc=True).tz_localize(None))

    class EmaCrossAllIn(Strategy):
        def init(self) -> None:
            self.fast = self.I(talib.EMA, self.data.Close, 12)
            self.slow = self.I(talib.EMA, self.data.Close, 26)

        def next(self) -> None:
            f0, f1, s0, s1 = self.fast[-2], self.fast[-1], self.slow[-2], self.slow[-1]
            if not self.position and f0 <= s0 and f1 > s1:
                self.buy()
            elif self.position and f0 >= s0 and f1 < s1:
                self.position.close()

    best, stats = float("inf"), None
    for _ in range(repeats):
        bt = FractionalBacktest(frame, EmaCrossAllIn, cash=CASH, commission=FEE, spread=0.0,
                                trade_on_close=False, exclusive_orders=True, finalize_trades=True)
        started = time.perf_counter()
        stats = bt.run()
        best = min(best, time.perf_counter() - started)
    trades = stats["_trades"]
    to_ms = lambda col: [int(pd.Timestamp(t).tz_localize("UTC").timestamp() * 1000) for t in trades[col]]  # noqa: E731
    return {"bars": len(frame), "seconds": best, "final_equity": float(stats["Equity Final [$]"]),
            "entry_ts": to_ms("EntryTime"), "exit_ts": to_ms("ExitTime"),
            "qty": trades["Size"].astype(float).tolist(),
            "entry_price": trades["EntryPrice"].astype(float).tolist(),
            "exit_price": trades["ExitPrice"].astype(float).tolist()}


def run_ratchet(start: str | None, end: str | None, repeats: int) -> dict:
    """Ratchet's replay of experiment=ema_cross_baseline, read back from its ledger."""
    import duckdb

    sys.path.insert(0, str(ROOT))
    from machine.compose import compose_run
    from machine.engine import run_replay

    window = [f"market.{k}={v}" for k, v in (("start", start), ("end", end)) if v is not None]
    cfg = compose_run("experiment=ema_cross_baseline", *window)
    times = []
    with tempfile.TemporaryDirectory(prefix="compare_backtesters_") as folder:
        for r in range(repeats):
            started = time.perf_counter()
            result = run_replay(cfg, Path(folder) / f"run{r}")
            times.append(time.perf_counter() - started)
        con = duckdb.connect(str(result.ledger_path), read_only=True)
        rows = con.execute("SELECT entry_ts, exit_ts, qty, entry_price, exit_price FROM trades "
                           "ORDER BY entry_ts").fetchall()
        final = con.execute("SELECT equity FROM equity ORDER BY ts DESC LIMIT 1").fetchone()[0]
        con.close()
    cols = list(zip(*rows, strict=True)) if rows else [[]] * 5
    return {"bars": result.bars, "seconds": min(times), "first_seconds": times[0], "final_equity": final,
            "entry_ts": list(cols[0]), "exit_ts": list(cols[1]), "qty": list(cols[2]),
            "entry_price": list(cols[3]), "exit_price": list(cols[4])}


def _backtesting_side(args: argparse.Namespace) -> dict | None:
    if args.backtesting_python:
        command = [args.backtesting_python, __file__, "--backtesting-only", "--repeats", str(args.repeats)]
        if args.window:
            command += ["--window", args.window]
        out = subprocess.run(command, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            print(f"backtesting.py run failed under {args.backtesting_python}:\n{out.stderr[-3000:]}")
            return None
        return json.loads(out.stdout.strip().splitlines()[-1])
    try:
        import backtesting  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        return None
    return run_backtesting_py(*_window(args), args.repeats)


def _window(args: argparse.Namespace) -> tuple[str | None, str | None]:
    if not args.window:
        return None, None
    start, end = args.window.split(":")
    return start or None, end or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backtesting-python", default=None, help="interpreter with backtesting.py")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--window", default=None, help="START:END, half-open, e.g. 2023-01-01:2024-01-01")
    parser.add_argument("--backtesting-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.backtesting_only:
        print(json.dumps(run_backtesting_py(*_window(args), args.repeats)))
        return

    theirs = _backtesting_side(args)
    if theirs is None:
        print("skipped: backtesting.py is not importable here; install it in a throwaway venv and "
              "pass --backtesting-python (see this script's docstring)")
        return
    ours = run_ratchet(*_window(args), args.repeats)

    matched = sum(1 for a, b in zip(zip(ours["entry_ts"], ours["exit_ts"], strict=True),
                                    zip(theirs["entry_ts"], theirs["exit_ts"], strict=True), strict=False)
                  if a == b)
    same_prices = all(
        abs(a - b) <= 1e-9 * abs(a)
        for key in ("entry_price", "exit_price")
        for a, b in zip(ours[key], theirs[key], strict=False))
    qty_gap = max((abs(a - b) / a for a, b in zip(ours["qty"], theirs["qty"], strict=False)), default=0.0)
    where = args.window or "all bundled data"
    print(f"EMA 12/26 all-in, BTC/USDT 1h, {ours['bars']:,} bars (window: {where})")
    line = "{:<16} {:>7} {:>16} {:>10} {:>10}"
    print(line.format("", "trades", "final equity", "seconds", "bars/s"))
    for name, side in (("ratchet", ours), ("backtesting.py", theirs)):
        print(line.format(name, len(side["entry_ts"]), f"{side['final_equity']:,.6f}",
                          f"{side['seconds']:.3f}", f"{side['bars'] / side['seconds']:,.0f}"))
    ratio = (ours["bars"] / ours["seconds"]) / (theirs["bars"] / theirs["seconds"])
    cold = (ours["bars"] / ours["first_seconds"]) / (theirs["bars"] / theirs["seconds"])
    print(f"ratchet / backtesting.py bars/s: {ratio:.2f} (best of {args.repeats} each; ratchet's first run, "
          f"indicators not yet computed in the process: {ours['first_seconds']:.3f} s, {cold:.2f})")
    gap = theirs["final_equity"] / ours["final_equity"] - 1
    print(f"trades with the same entry and exit bar: {matched} of {len(ours['entry_ts'])}; "
          f"same fill prices: {same_prices}; largest qty gap {qty_gap:.2e} (satoshi rounding); "
          f"final equity gap {gap:+.2e} relative")


if __name__ == "__main__":
    main()
