"""Throughput of SimExchange.process_bar on the bundled BTC+ETH perpetuals (a script, not a test).

    .venv/bin/python tests/exchange/bench_sim_exchange.py

Runs 38k hourly bars twice: with nothing open, and with one 3x BTC position open half the time
(50 bars in, 50 out; funding settles every 8 bars while it is open).
"""

from __future__ import annotations

import time

from conftest import load_futures_market

from components.exchange.sim import SimExchange, SimExchangeConfig
from core.records import EntryOrder, ExitOrder, ExitReason

BTC = "BTC/USDT:USDT"


def run(market, trade: bool) -> tuple[float, int]:
    exchange = SimExchange(SimExchangeConfig(slippage_bps=1.0), market, 1_000_000.0)
    closed = 0
    started = time.perf_counter()
    for i in range(len(market)):
        closed += len(exchange.process_bar(i).closed)
        if trade and i % 100 == 0:
            exchange.submit_entry(EntryOrder(f"t{i}", BTC, 1, 1.0, 3.0, 1.0, 10_000_000.0,
                                             "normal", "bench", "bench", 0.01))
        elif trade and i % 100 == 50:
            exchange.submit_exit(ExitOrder(f"x{i}", BTC, ExitReason.SIGNAL))
    return time.perf_counter() - started, closed


def main() -> None:
    started = time.perf_counter()
    market = load_futures_market()
    SimExchange(SimExchangeConfig(), market, 1.0)
    print(f"load + init: {time.perf_counter() - started:.2f} s, {len(market)} bars x 2 symbols")
    for trade in (False, True):
        best, closed = min(run(market, trade) for _ in range(5))
        label = "position open half the time" if trade else "nothing open"
        print(f"{label:28s}: {len(market) / best:>12,.0f} bars/s  "
              f"({best * 1e6 / len(market):.2f} us/bar, {closed} round trips)")


if __name__ == "__main__":
    main()
