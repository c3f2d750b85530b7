"""Drive a LiveExchange bar by bar the way the engine does in live mode, into a real ledger.

Per bar: wait until the exchange's clock closes it, poll the feed, ``process_bar`` and record what it
answered, let a scenario decide (orders recorded, then submitted, as the agent does), mark equity,
commit, ``dispatch`` and record its answer, commit. Recording is the agent's (fills, trades, funding,
refusals) plus ``Recorder.exchange_events`` for what only a live exchange answers. A restarted driver
fast-forwards through the bars its ledger holds with the recorder muted, as the engine does, the
exchange answering from its journal.

Run as a process (the kill -9 tests)::

    python -c "from tests.live.driver import main; main()" RUN_DIR BASE_URL SCENARIO BARS
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from components.exchange.account import BinanceAccount
from components.exchange.ccxt_client import ApiKeys, connect
from components.exchange.connection import ConnectionConfig
from components.exchange.live import LiveExchange, LiveSettings
from components.market.polling_feed import PollingFeed
from core.records import BarEvents, EntryOrder, ExitOrder, ExitReason
from ledger.writer import Ledger
from machine.engine import _run_id
from machine.exchange_modes import exchange_journal
from machine.recorder import Recorder
from machine.run_folder import LEDGER_FILE

AGENT = "futures"
PERP = "BTC/USDT:USDT"
API_KEY, API_SECRET = "rk-test-4f1d9c", "rs-test-secret-77ab"  # what the loopback venue accepts

Order = EntryOrder | ExitOrder
Scenario = Callable[["LiveDriver", int], list[Order]]


def entry(driver: LiveDriver, side: int = 1, qty: float = 0.05, stop_pct: float = 0.02,
          target_pct: float | None = 0.03, symbol: str = PERP, leverage: float = 3.0) -> EntryOrder:
    """A market entry sized like the agent's, with a stop (and target) that far from the last close."""
    close = driver.close(symbol)
    stop = close * (1 - side * stop_pct)
    target = None if target_pct is None else close * (1 + side * target_pct)
    return EntryOrder(driver.next_id(), symbol, side, qty, leverage, stop, target, "normal", "conservative",
                      "test entry", 0.01)


def exit_order(driver: LiveDriver, symbol: str = PERP) -> ExitOrder:
    return ExitOrder(driver.next_id(), symbol, ExitReason.SIGNAL)


class LiveDriver:
    """A LiveExchange over the loopback venue, a PollingFeed and a ledger in ``run_dir``."""

    def __init__(self, run_dir: Path, base_url: str, *, kind: str = "futures", symbols: tuple[str, ...] = (PERP,),
                 keys: tuple[str, str] = (API_KEY, API_SECRET), settings: LiveSettings | None = None,
                 set_clock: Callable[[int], None] | None = None, retries: int = 3, timeout_ms: int = 2_000) -> None:
        self.run_dir = run_dir
        self.set_clock = set_clock  # in-process tests move the clock; a driver process waits for it
        connection = ConnectionConfig(base_url=base_url, rate_limit_ms=1, retries=retries, backoff_ms=1,
                                      max_backoff_ms=50, timeout_ms=timeout_ms)
        self.client = connect(kind, connection, keys=ApiKeys(*keys))
        self.feed = PollingFeed(self.client, kind, list(symbols), "1h", on_gap="skip", store_dir=run_dir / "market",
                                warmup_bars=3)
        replies, self.last_ts = exchange_journal(run_dir / LEDGER_FILE, AGENT)
        self.market = self.feed.history()
        run_dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger.open(run_dir / LEDGER_FILE, _run_id(run_dir))
        self.recorder = Recorder(self.ledger, AGENT)
        self.exchange = LiveExchange(BinanceAccount(self.client), self.market, run_id=_run_id(run_dir),
                                     settings=settings)
        if self.last_ts is not None:
            self.exchange.resume(replies, self.last_ts)
        self.i = self.market.trade_from
        self._seq = 0
        self.answers: list[BarEvents] = []  # every unmuted answer, for the tests

    def close(self, symbol: str = PERP) -> float:
        return float(self.market.symbols[symbol].bars.close[self.i])

    def next_id(self) -> str:
        self._seq += 1
        return f"{AGENT}-{self._seq:06d}"

    @property
    def tf(self) -> int:
        return self.market.timeframe_ms

    def close_ts(self, i: int | None = None) -> int:
        """When bar ``i`` (the next one by default) closes: the market's first bar plus i bars."""
        return int(self.market.ts[0]) + ((self.i if i is None else i) + 1) * self.tf

    def step(self, scenario: Scenario | None = None, *, crash_before_send: bool = False,
             crash_after_send: bool = False) -> tuple[BarEvents, BarEvents]:
        """One bar, as the engine steps it; returns what process_bar and dispatch answered. The process
        dies once the bar is committed (``crash_before_send``), or once dispatch has sent, before its
        answer is recorded (``crash_after_send``)."""
        self._wait_for_close()
        i, now = self.i, self.close_ts()
        self.recorder.muted = self.last_ts is not None and now <= self.last_ts
        events = self.exchange.process_bar(i)
        self._record(events, now)
        for order in scenario(self, i) if scenario is not None else []:
            if isinstance(order, EntryOrder):
                self.exchange.submit_entry(order)
                self.recorder.entry_order(now, order)
            else:
                pos = self.exchange.positions[order.symbol]
                self.exchange.submit_exit(order)
                self.recorder.exit_order(now, order, pos.side, pos.qty, "conservative")
        equity, cash, unrealized = self.exchange.mark_to_market(i)
        self.recorder.equity(now, equity, cash, unrealized, len(self.exchange.positions), "conservative")
        self.recorder.commit()
        if crash_before_send:
            return events, BarEvents()
        answered = self.exchange.dispatch()
        if crash_after_send:
            return events, BarEvents()
        if answered:
            self._record(answered, now)
            self.recorder.commit()
        self.i += 1
        return events, answered

    def run(self, bars: int, scenario: Scenario | None = None) -> None:
        while self.i < self.market.trade_from + bars:
            self.step(scenario)

    def _wait_for_close(self) -> None:
        close = self.close_ts()
        if self.set_clock is not None and self.client.server_time() < close:
            self.set_clock(close + 1_000)
        while self.client.server_time() < close:
            time.sleep(0.005)
        while len(self.market) <= self.i:
            self.market = self.feed.poll(self.market, self.client.server_time())
            self.exchange.extend(self.market)

    def _record(self, events: BarEvents, now: int) -> None:
        """What the agent records of an answer (``Agent.record_events``) and what the live wiring adds."""
        if not events:
            return
        rec = self.recorder
        for payment in events.funding:
            rec.funding(payment)
        for fill in events.fills:
            rec.fill(fill)
        for trade in events.closed:
            rec.trade(trade)
        for order_id, why in events.rejected:
            rec.adjustment(now, "order_rejected", None, {"order_id": order_id}, why, {})
        rec.exchange_events(now, events)
        if not rec.muted:
            self.answers.append(events)

    def rows(self, sql: str, params: list | None = None) -> list[tuple]:
        """A query on the ledger the driver holds (committed rows)."""
        return self.ledger.query(sql, params or [])

    def shut(self) -> None:
        self.ledger.close()
        self.client.close()


# -- scenarios, by name, for driver processes ---------------------------------------------------
def enter_at_second_bar(driver: LiveDriver, i: int) -> list[Order]:
    return [entry(driver)] if i == driver.market.trade_from + 1 else []


SCENARIOS: dict[str, Scenario] = {"enter_at_second_bar": enter_at_second_bar}


def main() -> None:
    run_dir, base_url, scenario, bars = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
    driver = LiveDriver(run_dir, base_url)
    try:
        driver.run(bars, SCENARIOS[scenario])
    finally:
        driver.shut()
    print(f"done {driver.i - driver.market.trade_from} bars")
