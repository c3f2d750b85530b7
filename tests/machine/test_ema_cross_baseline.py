"""The baseline agent (experiment=ema_cross_baseline) against an oracle written from its spec alone.

Spec: EMA 12/26 on close, SMA-seeded (talib.EMA); long-only; enter when the fast EMA crosses above
the slow one, exit when it crosses below; the signal is taken at a bar's close and filled at the next
bar's open; all-in with fractional units (all free cash, the fee included, is spent at the fill);
0.1 % fee per side; no slippage; 10,000 USDT; a position still open after the last bar is closed at
that bar's close, fee paid. A window's EMAs warm up on the 26 bars before its start (freqtrade's
startup candles: the slow period), so a cross at the window's first bar counts. The oracle reads
the bundled Parquet file itself and shares no code with the product beyond TA-Lib.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest
import talib

from machine.compose import compose_run
from machine.engine import run_replay

BTC_1H = Path(__file__).parents[2] / "components/market/data/binance_spot_BTC-USDT_1h.parquet"
HOUR_MS = 3_600_000
FEE = 0.001
STARTING_CASH = 10_000.0
REL = 1e-9
WARMUP_BARS = 26  # the slow EMA's period: what the signal declares it needs before its first decision

# (start, end) half-open on candle open times, as market.start / market.end read them; None: all.
WHOLE_HISTORY = (None, None)  # 2022-01 to 2026-05, 38,321 bars, the 2023-03-24 gap included
YEAR_2023 = ("2023-01-01", "2024-01-01")  # ends long, so the end-of-data close is exercised


@dataclass(frozen=True)
class OracleTrade:
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    qty: float
    entry_fee: float
    exit_fee: float

    @property
    def fees(self) -> float:
        return self.entry_fee + self.exit_fee

    @property
    def pnl(self) -> float:
        return self.qty * (self.exit_price - self.entry_price) - self.fees


@dataclass(frozen=True)
class Oracle:
    trades: list[OracleTrade]
    final_cash: float
    ends_open: bool  # a position was still open after the last bar
    close_ts: np.ndarray  # each bar's close time, the time its equity mark is stamped with
    marks: np.ndarray  # equity at each bar's close: cash plus the position at the close


def _ms(day: str | None) -> int | None:
    return None if day is None else int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def ema_cross_oracle(start: str | None, end: str | None) -> Oracle:
    table = pq.read_table(BTC_1H, columns=["ts", "open", "close"])
    ts, opens, closes = (table[c].to_numpy() for c in ("ts", "open", "close"))
    first = 0 if start is None else int(np.searchsorted(ts, _ms(start)))
    warmup = min(first, WARMUP_BARS)
    stop = len(ts) if end is None else int(np.searchsorted(ts, _ms(end)))
    ts, opens, closes = ts[first - warmup:stop], opens[first - warmup:stop], closes[first - warmup:stop]
    fast, slow = talib.EMA(closes, timeperiod=12), talib.EMA(closes, timeperiod=26)

    cash, trades, marks = STARTING_CASH, [], np.full(len(ts), np.nan)
    held: tuple[int, float, float, float] | None = None  # entry ts, price, qty, fee
    pending: str | None = None  # "buy" or "sell", decided at the previous close
    for i in range(warmup, len(ts)):
        if pending == "buy":
            price = opens[i]
            qty = cash / (price * (1 + FEE))  # notional + fee = all free cash
            fee = qty * price * FEE
            cash -= qty * price + fee
            held = (int(ts[i]), price, qty, fee)
        elif pending == "sell":
            assert held is not None
            entry_ts, entry_price, qty, entry_fee = held
            price = opens[i]
            fee = qty * price * FEE
            cash += qty * price - fee
            trades.append(OracleTrade(entry_ts, int(ts[i]), entry_price, price, qty, entry_fee, fee))
            held = None
        pending = None
        marks[i] = cash + (held[2] * closes[i] if held else 0.0)
        if i == 0 or math.isnan(slow[i - 1]) or i == len(ts) - 1:  # no next open to fill at
            continue
        if held is None and fast[i - 1] <= slow[i - 1] and fast[i] > slow[i]:
            pending = "buy"
        elif held is not None and fast[i - 1] >= slow[i - 1] and fast[i] < slow[i]:
            pending = "sell"

    ends_open = held is not None
    if held is not None:  # closed at the last close, stamped at that close's time
        entry_ts, entry_price, qty, entry_fee = held
        price = closes[-1]
        fee = qty * price * FEE
        cash += qty * price - fee
        trades.append(OracleTrade(entry_ts, int(ts[-1]) + HOUR_MS, entry_price, price, qty, entry_fee, fee))
        marks[-1] = cash  # the last close's mark is taken after that close-out
    return Oracle(trades, cash, ends_open, ts[warmup:] + HOUR_MS, marks[warmup:])


@dataclass(frozen=True)
class Replayed:
    oracle: Oracle
    ledger: Path


@pytest.fixture(scope="module", params=[WHOLE_HISTORY, YEAR_2023], ids=["whole_history", "year_2023"])
def replayed(request, tmp_path_factory) -> Replayed:
    start, end = request.param
    window = [f"market.{k}={v}" for k, v in (("start", start), ("end", end)) if v is not None]
    run_dir = tmp_path_factory.mktemp("ema_cross_baseline")
    result = run_replay(compose_run("experiment=ema_cross_baseline", *window), run_dir)
    return Replayed(ema_cross_oracle(start, end), result.ledger_path)


def _query(ledger: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _assert_rows_close(got: list[tuple], expected: list[tuple]) -> None:
    """Strings and timestamps exactly, prices, quantities, fees and pnl to REL relative."""
    assert len(got) == len(expected)
    for k, (g, e) in enumerate(zip(got, expected, strict=True)):
        same = len(g) == len(e) and all(
            math.isclose(a, b, rel_tol=REL, abs_tol=0.0) if isinstance(b, float) else a == b
            for a, b in zip(g, e, strict=True))
        assert same, f"row {k}: ledger {g} != oracle {e}"


@pytest.mark.slow
def test_the_oracle_trades_often_enough_to_mean_something(replayed):
    trades = replayed.oracle.trades
    assert len(trades) > 100
    assert any(t.pnl > 0 for t in trades) and any(t.pnl < 0 for t in trades)


@pytest.mark.slow
def test_every_trade_equals_the_oracle(replayed):
    got = _query(replayed.ledger, "SELECT side, entry_ts, exit_ts, entry_price, exit_price, qty, fees, pnl "
                                  "FROM trades ORDER BY entry_ts")
    expected = [("long", t.entry_ts, t.exit_ts, t.entry_price, t.exit_price, t.qty, t.fees, t.pnl)
                for t in replayed.oracle.trades]
    assert len(got) > 100
    _assert_rows_close(got, expected)


@pytest.mark.slow
def test_a_position_open_after_the_last_bar_is_closed_at_its_close(replayed):
    last_exit = _query(replayed.ledger, "SELECT exit_reason FROM trades ORDER BY exit_ts DESC LIMIT 1")[0][0]
    assert (last_exit == "end_of_data") == replayed.oracle.ends_open


def test_the_2023_window_does_end_with_a_position_open():
    assert ema_cross_oracle(*YEAR_2023).ends_open


@pytest.mark.slow
def test_every_fill_equals_the_oracle(replayed):
    got = _query(replayed.ledger, "SELECT ts, side, qty, price, fee FROM fills ORDER BY ts, side")
    expected = []
    for t in replayed.oracle.trades:
        expected += [(t.entry_ts, "buy", t.qty, t.entry_price, t.entry_fee),
                     (t.exit_ts, "sell", t.qty, t.exit_price, t.exit_fee)]
    _assert_rows_close(got, expected)


@pytest.mark.slow
def test_the_equity_mark_at_every_bar_close_equals_the_oracle(replayed):
    rows = _query(replayed.ledger, "SELECT ts, equity FROM equity ORDER BY ts")
    oracle = replayed.oracle
    ts = np.array([r[0] for r in rows])
    equity = np.array([r[1] for r in rows])
    assert len(ts) == len(oracle.close_ts)
    assert np.array_equal(ts, oracle.close_ts)
    np.testing.assert_allclose(equity, oracle.marks, rtol=REL, atol=0.0)


@pytest.mark.slow
def test_final_equity_is_the_cash_after_every_position_is_closed(replayed):
    last = _query(replayed.ledger,
                  "SELECT equity, cash, open_positions FROM equity ORDER BY ts DESC LIMIT 1")[0]
    final = replayed.oracle.final_cash
    assert last == pytest.approx((final, final, 0), rel=REL, abs=0.0)
    # and the trades account for every dollar of it
    assert STARTING_CASH + sum(t.pnl for t in replayed.oracle.trades) == pytest.approx(final, rel=REL)
