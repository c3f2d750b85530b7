"""SimExchange on real Binance bars: fills, fees, slippage, funding, stops and liquidation."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from components.exchange.margin import BRACKETS_2022_05_21, isolated_liquidation_price
from components.exchange.sim import SimExchange, SimExchangeConfig
from core.errors import ExchangeError
from core.records import EntryOrder, ExitOrder, ExitReason

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"
BTC_SPOT = "BTC/USDT"


def entry(order_id, symbol, side, qty, leverage=1.0, stop=None, take_profit=None, **extra):
    return EntryOrder(order_id, symbol, side, qty, leverage, stop, take_profit, "normal",
                      "conservative", "test", 0.01, **extra)


def exit_(order_id, symbol, reason=ExitReason.SIGNAL):
    return ExitOrder(order_id, symbol, reason)


def start_at(exchange, i):
    """Process bar i - 1 (nothing happens) so that orders submitted now fill at open[i]."""
    assert not exchange.process_bar(i - 1)


def funding_rows(market, symbol, after_ts, until_ts):
    """(rate, mark open at the settlement bar) for settlements in (after_ts, until_ts]."""
    data = market.symbols[symbol]
    rows = []
    for ts, rate in zip(data.funding.ts.tolist(), data.funding.rate.tolist(), strict=True):
        if after_ts < ts <= until_ts:
            bar = int(np.searchsorted(market.ts, ts))
            rows.append((rate, float(data.mark.open[bar])))
    return rows


# ----------------------------------------------------------------------------------- spot
def test_spot_round_trip_pays_the_taker_fee_both_ways(spot_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), spot_market, 10_000.0)
    i, j = bar_index(spot_market, "2024-03-01 00:00"), bar_index(spot_market, "2024-03-01 06:00")
    bars = spot_market.symbols[BTC_SPOT].bars
    buy, sell = float(bars.open[i]), float(bars.open[j])

    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC_SPOT, 1, 0.1))
    opened = exchange.process_bar(i)
    for k in range(i + 1, j):
        exchange.process_bar(k)
    exchange.submit_exit(exit_("x1", BTC_SPOT))
    closed = exchange.process_bar(j)

    assert [(f.side, f.price, f.fee) for f in opened.fills] == [(1, buy, 0.1 * buy * 0.001)]
    assert [(f.side, f.price, f.fee) for f in closed.fills] == [(-1, sell, 0.1 * sell * 0.001)]
    trade = closed.closed[0]
    assert trade.trade_id == "t1" and trade.exit_reason is ExitReason.SIGNAL
    assert trade.pnl == pytest.approx(0.1 * (sell - buy) - 0.0001 * (buy + sell))
    assert exchange.cash == pytest.approx(10_000 - 0.1 * buy * 1.001 + 0.1 * sell * 0.999)
    assert exchange.positions == {}


def test_spot_buy_without_enough_cash_is_rejected(spot_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), spot_market, 1_000.0)
    i = bar_index(spot_market, "2024-03-01 00:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC_SPOT, 1, 1.0))
    events = exchange.process_bar(i)
    assert events.fills == [] and events.rejected[0][0] == "t1"
    assert "insufficient cash" in events.rejected[0][1]
    assert exchange.cash == 1_000.0 and exchange.positions == {}


def test_spot_short_is_rejected(spot_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), spot_market, 100_000.0)
    i = bar_index(spot_market, "2024-03-01 00:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC_SPOT, -1, 0.1))
    assert exchange.process_bar(i).rejected == [("t1", "spot cannot short")]


def test_spot_cash_fraction_spends_that_share_of_cash_fees_included(spot_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), spot_market, 10_000.0)
    i = bar_index(spot_market, "2024-03-01 00:00")
    price = float(spot_market.symbols[BTC_SPOT].bars.open[i])
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC_SPOT, 1, 0.0, cash_fraction=1.0))
    fill = exchange.process_bar(i).fills[0]
    assert fill.qty == pytest.approx(10_000 / (price * 1.001))
    assert exchange.cash == pytest.approx(0.0, abs=1e-9) and exchange.cash >= 0


# -------------------------------------------------------------------------------- futures
@pytest.mark.parametrize("side", [1, -1], ids=["long pays", "short receives"])
def test_futures_round_trip_settles_real_funding(futures_market, bar_index, side):
    # 2024-03-01 .. 03: every BTC funding rate is positive, so longs pay and shorts receive.
    config = SimExchangeConfig(slippage_bps=2.0)
    exchange = SimExchange(config, futures_market, 50_000.0)
    i, j = bar_index(futures_market, "2024-03-01 01:00"), bar_index(futures_market, "2024-03-03 01:00")
    bars = futures_market.symbols[BTC].bars
    qty, leverage, slip, fee = 0.5, 3.0, 2.0 / 10_000, 0.0005
    entry_price = float(bars.open[i]) * (1 + side * slip)
    exit_price = float(bars.open[j]) * (1 - side * slip)
    margin = qty * entry_price / leverage
    rows = funding_rows(futures_market, BTC, int(futures_market.ts[i]), int(futures_market.ts[j]))
    assert len(rows) == 6 and all(rate > 0 for rate, _ in rows)

    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, side, qty, leverage))
    exchange.process_bar(i)
    assert exchange.cash == pytest.approx(50_000 - margin - qty * entry_price * fee)
    position = exchange.positions[BTC]
    payments = []
    for k in range(i + 1, j):
        payments += exchange.process_bar(k).funding
        expected = isolated_liquidation_price(
            BRACKETS_2022_05_21[BTC], side, qty, entry_price, margin + position.funding
        )  # the table in force in March 2024
        assert position.liquidation_price == pytest.approx(expected, rel=1e-12)
    exchange.submit_exit(exit_("x1", BTC))
    events = exchange.process_bar(j)
    payments += events.funding

    amounts = [-side * qty * mark * rate for rate, mark in rows]
    assert [p.amount for p in payments] == pytest.approx(amounts, rel=1e-12)
    assert [p.mark_price for p in payments] == [mark for _, mark in rows]
    assert all(p.position_qty == side * qty for p in payments)
    assert np.sign(sum(amounts)) == -side
    fees = qty * (entry_price + exit_price) * fee
    trade = events.closed[0]
    assert (trade.entry_price, trade.exit_price) == pytest.approx((entry_price, exit_price))
    assert trade.funding == pytest.approx(sum(amounts))
    assert trade.fees == pytest.approx(fees)
    assert trade.pnl == pytest.approx(side * qty * (exit_price - entry_price) + sum(amounts) - fees)
    assert exchange.cash == pytest.approx(50_000 + trade.pnl)


def test_entry_at_a_settlement_open_skips_it_and_exit_at_one_pays_it(futures_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 50_000.0)
    i = bar_index(futures_market, "2024-03-01 08:00")
    j = bar_index(futures_market, "2024-03-01 16:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, 2.0))
    assert exchange.process_bar(i).funding == []
    for k in range(i + 1, j):
        assert exchange.process_bar(k).funding == []
    exchange.submit_exit(exit_("x1", BTC))
    events = exchange.process_bar(j)
    assert [p.ts for p in events.funding] == [int(futures_market.ts[j])]
    assert events.closed[0].funding == events.funding[0].amount


@pytest.mark.parametrize(
    ("side", "opened_at", "symbol"),
    [(1, "2022-06-10 00:00", BTC), (-1, "2023-03-11 00:00", BTC)],
    ids=["5x long into the June 2022 crash", "5x short into the March 2023 rally"],
)
def test_liquidation_loses_exactly_the_initial_margin_and_entry_fee(
    futures_market, bar_index, side, opened_at, symbol
):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 20_000.0)
    i = bar_index(futures_market, opened_at)
    mark = futures_market.symbols[symbol].mark
    mark_adverse = (mark.low if side == 1 else mark.high).tolist()
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", symbol, side, 1.0, 5.0))
    events = exchange.process_bar(i)
    position = exchange.positions[symbol]
    initial_margin, entry_fee = position.isolated_margin, position.fees
    cash_after_entry = exchange.cash
    k = i
    while not events.closed:
        # the mark did not reach the liquidation price in force on any bar before
        assert side * (mark_adverse[k] - position.liquidation_price) > 0
        k += 1
        events = exchange.process_bar(k)

    trade = events.closed[0]
    assert trade.exit_reason is ExitReason.LIQUIDATION
    assert side * (mark_adverse[k] - position.liquidation_price) <= 0
    assert trade.exit_price == position.liquidation_price
    assert trade.funding != 0
    assert position.isolated_margin == pytest.approx(initial_margin + trade.funding)
    assert trade.pnl == pytest.approx(-initial_margin - entry_fee, rel=1e-12)
    assert exchange.cash == cash_after_entry == pytest.approx(20_000 - initial_margin - entry_fee)
    assert events.fills[0].fee == pytest.approx(
        position.isolated_margin + side * (trade.exit_price - trade.entry_price)
    )  # the margin left at the liquidation price, kept as a clearance fee
    assert k - i < 24 * 7


def test_short_stop_gapped_through_fills_at_the_open(futures_market, bar_index):
    # ETH closed 2518.92 at 21:00 and reopened 2543.69 at 22:00 on 2024-10-28.
    exchange = SimExchange(SimExchangeConfig(), futures_market, 10_000.0)
    i, gap = bar_index(futures_market, "2024-10-28 20:00"), bar_index(futures_market, "2024-10-28 22:00")
    bars = futures_market.symbols[ETH].bars
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", ETH, -1, 1.0, 2.0, stop=2_530.0))
    assert not exchange.process_bar(i).closed
    assert not exchange.process_bar(i + 1).closed
    events = exchange.process_bar(gap)
    trade = events.closed[0]
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == float(bars.open[gap]) == 2_543.69
    assert events.fills[0].ts == int(futures_market.ts[gap]) + futures_market.timeframe_ms


def test_long_take_profit_gapped_through_fills_at_the_better_open(futures_market, bar_index):
    # BTC's 2024-10-28 21:00 bar topped at 69,766.2; the 22:00 bar opened at 69,770.1.
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i, gap = bar_index(futures_market, "2024-10-28 21:00"), bar_index(futures_market, "2024-10-28 22:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, 1.0, take_profit=69_768.0))
    assert not exchange.process_bar(i).closed
    trade = exchange.process_bar(gap).closed[0]
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.TAKE_PROFIT, 69_770.1)


def test_bar_touching_stop_and_take_profit_is_taken_as_the_stop(futures_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(slippage_bps=5.0), futures_market, 100_000.0)
    i = bar_index(futures_market, "2022-11-09 12:00")
    bars = futures_market.symbols[BTC].bars
    open_, high, low = float(bars.open[i]), float(bars.high[i]), float(bars.low[i])
    stop, take_profit = open_ - 0.5 * (open_ - low), open_ + 0.5 * (high - open_)
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, 2.0, stop=stop, take_profit=take_profit))
    events = exchange.process_bar(i)
    assert [f.reason for f in events.fills] == ["test", "stop_loss"]
    trade = events.closed[0]
    assert trade.exit_reason is ExitReason.STOP_LOSS
    assert trade.exit_price == pytest.approx(stop * (1 - 5e-4))  # slippage against the seller


@pytest.mark.parametrize("leverage", [5.01, 6.0, 20.0, 0.5])
def test_leverage_outside_one_to_max_is_rejected(futures_market, bar_index, leverage):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i = bar_index(futures_market, "2024-03-01 00:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, leverage))
    events = exchange.process_bar(i)
    assert events.rejected[0][0] == "t1" and "leverage" in events.rejected[0][1]
    assert exchange.positions == {} and exchange.cash == 100_000.0


def test_futures_entry_needs_margin_and_fee_in_cash(futures_market, bar_index):
    i = bar_index(futures_market, "2024-03-01 00:00")
    price = float(futures_market.symbols[BTC].bars.open[i])
    needed = price / 5 + price * 0.0005
    for cash, fills in ((needed * 0.999, False), (needed * 1.001, True)):
        exchange = SimExchange(SimExchangeConfig(), futures_market, cash)
        start_at(exchange, i)
        exchange.submit_entry(entry("t1", BTC, 1, 1.0, 5.0))
        assert bool(exchange.process_bar(i).fills) is fills


def test_one_position_per_symbol_and_exit_then_entry_reverses(futures_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i = bar_index(futures_market, "2024-03-01 00:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, 2.0))
    exchange.submit_entry(entry("t2", BTC, -1, 0.1, 2.0))
    events = exchange.process_bar(i)
    assert events.rejected == [("t2", f"a {BTC} position is already open")]
    exchange.submit_entry(entry("t3", BTC, -1, 0.1, 2.0))
    exchange.submit_exit(exit_("x1", BTC))
    assert [o.order_id for o in exchange.pending_orders()] == ["x1", "t3"]
    events = exchange.process_bar(i + 1)
    assert [f.order_id for f in events.fills] == ["x1", "t3"]
    assert exchange.positions[BTC].side == -1 and exchange.positions[BTC].trade_id == "t3"


def test_exit_without_a_position_is_rejected(futures_market):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 1_000.0)
    exchange.submit_exit(exit_("x1", ETH))
    assert exchange.process_bar(100).rejected == [("x1", f"no open {ETH} position")]


def test_amended_stop_above_a_long_fills_at_the_next_open(futures_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i = bar_index(futures_market, "2024-03-01 00:00")
    bars = futures_market.symbols[BTC].bars
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.1, 2.0, stop=1_000.0, take_profit=1_000_000.0))
    exchange.process_bar(i)
    exchange.amend_protection(BTC, stop_price=float(bars.high[i + 1]) + 1_000)
    assert exchange.positions[BTC].take_profit_price == 1_000_000.0  # left unchanged
    trade = exchange.process_bar(i + 1).closed[0]
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.STOP_LOSS, float(bars.open[i + 1]))


def test_futures_equity_is_marked_at_the_mark_close_not_the_last_close(futures_market, bar_index):
    # 2022-09-21 17:00, the FOMC hour: BTC's last price closed at 19,846.4, its mark at 19,724.73.
    exchange = SimExchange(SimExchangeConfig(), futures_market, 10_000.0)
    i, k = bar_index(futures_market, "2022-09-21 12:00"), bar_index(futures_market, "2022-09-21 17:00")
    data = futures_market.symbols[BTC]
    last, mark = float(data.bars.close[k]), float(data.mark.close[k])
    assert (last, round(mark, 2)) == (19_846.4, 19_724.73)
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC, 1, 0.5, 5.0))
    for j in range(i, k + 1):
        assert not exchange.process_bar(j).closed
    position = exchange.positions[BTC]

    equity, cash, unrealized = exchange.mark_to_market(k)

    assert unrealized == pytest.approx(0.5 * (mark - position.entry_price), rel=1e-12)
    assert equity == pytest.approx(cash + position.isolated_margin + unrealized, rel=1e-12)
    at_last_price = cash + position.isolated_margin + 0.5 * (last - position.entry_price)
    assert at_last_price - equity == pytest.approx(0.5 * (last - mark), rel=1e-9)  # about 60.8 USDT


def test_spot_equity_is_marked_at_the_last_close(spot_market, bar_index):
    exchange = SimExchange(SimExchangeConfig(), spot_market, 10_000.0)
    i = bar_index(spot_market, "2022-09-21 12:00")
    close = spot_market.symbols[BTC_SPOT].bars.close
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", BTC_SPOT, 1, 0.2))
    exchange.process_bar(i)
    exchange.process_bar(i + 1)
    position = exchange.positions[BTC_SPOT]

    equity, cash, unrealized = exchange.mark_to_market(i + 1)

    assert unrealized == pytest.approx(0.2 * (float(close[i + 1]) - position.entry_price), rel=1e-12)
    assert equity == pytest.approx(cash + 0.2 * float(close[i + 1]), rel=1e-12)


def test_close_all_at_the_end_of_data_fills_at_the_last_price_close(futures_market):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    last = len(futures_market) - 1
    data = futures_market.symbols[ETH]
    close, mark = float(data.bars.close[last]), float(data.mark.close[last])
    assert close != mark  # 2,177.87 against 2,177.98457
    start_at(exchange, last)
    exchange.submit_entry(entry("t1", ETH, -1, 2.0, 4.0))
    exchange.process_bar(last)
    position = exchange.positions[ETH]
    equity, cash, pnl = exchange.mark_to_market(last)
    assert (cash, pnl) == (exchange.cash, pytest.approx(-2.0 * (mark - position.entry_price), rel=1e-12))
    assert equity == pytest.approx(cash + position.isolated_margin + pnl, rel=1e-12)

    events = exchange.close_all(last, ExitReason.END_OF_DATA)

    trade = events.closed[0]
    assert (trade.exit_reason, trade.exit_price) == (ExitReason.END_OF_DATA, close)
    assert trade.exit_ts == int(futures_market.ts[last]) + futures_market.timeframe_ms
    returned = position.isolated_margin - 2.0 * (close - position.entry_price) - 2.0 * close * 0.0005
    assert exchange.cash == pytest.approx(cash + returned, rel=1e-12)
    assert exchange.positions == {} and exchange.mark_to_market(last) == (exchange.cash, exchange.cash, 0.0)


def test_bars_must_be_processed_in_order(futures_market):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 1_000.0)
    exchange.process_bar(10)
    with pytest.raises(ExchangeError, match="in order"):
        exchange.process_bar(12)


def test_malformed_orders_raise(futures_market):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 1_000.0)
    with pytest.raises(ExchangeError, match="unknown symbol"):
        exchange.submit_entry(entry("t1", "SOL/USDT:USDT", 1, 1.0))
    with pytest.raises(ExchangeError, match="qty"):
        exchange.submit_entry(entry("t1", BTC, 1, 0.0))
    with pytest.raises(ExchangeError, match="spot only"):
        exchange.submit_entry(entry("t1", BTC, 1, 0.0, cash_fraction=0.5))
    with pytest.raises(ExchangeError, match="no open"):
        exchange.amend_protection(BTC, stop_price=1.0)
    assert exchange.pending_orders() == ()


def test_config_is_strict_and_names_known_bracket_settings():
    assert SimExchangeConfig().model_dump() == {
        "spot_taker_fee": 0.001, "futures_taker_fee": 0.0005, "slippage_bps": 0.0,
        "brackets": "by_date", "max_leverage": 5.0,
    }
    with pytest.raises(ValidationError, match="extra"):
        SimExchangeConfig(taker_fee=0.001)
    with pytest.raises(ValidationError, match=r"unknown brackets '2020-01-01'; known: by_date, 2022-05-21, 2024-10-24"):
        SimExchangeConfig(brackets="2020-01-01")


def long_liquidation(entry_price, qty, wallet, mmr, cum):
    """FUTURES.md §3.2, one-way isolated long: LP = (EP - WB/Q - cum/Q) / (1 - MMR)."""
    return (entry_price - wallet / qty - cum / qty) / (1 - mmr)


# 20 ETH at 5x: the liquidation notional is about 31,000-41,000 USDT. FUTURES.md §5: the 2022-05-21
# table puts that in tier 2 (10,000-100,000: MMR 0.65 %, cum 15), the 2024-10-24 table in tier 1
# (0-50,000: MMR 0.4 %, cum 0).
TIER_2022, TIER_2024 = (0.0065, 15.0), (0.004, 0.0)


@pytest.mark.parametrize(
    ("opened_at", "tier"),
    [("2022-06-01 00:00", TIER_2022), ("2025-06-02 00:00", TIER_2024)],
    ids=["2022 position, 2022-05-21 table", "2025 position, 2024-10-24 table"],
)
def test_by_date_uses_the_bracket_table_in_force_at_entry(futures_market, bar_index, opened_at, tier):
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i = bar_index(futures_market, opened_at)
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", ETH, 1, 20.0, 5.0))
    exchange.process_bar(i)
    position = exchange.positions[ETH]

    expected = long_liquidation(position.entry_price, 20.0, position.isolated_margin, *tier)
    assert position.liquidation_price == pytest.approx(expected, rel=1e-12)


def test_a_named_table_applies_to_every_date_for_what_if_runs(futures_market, bar_index):
    prices = {}
    for setting in ("by_date", "2024-10-24", "2022-05-21"):
        exchange = SimExchange(SimExchangeConfig(brackets=setting), futures_market, 100_000.0)
        i = bar_index(futures_market, "2022-06-01 00:00")
        start_at(exchange, i)
        exchange.submit_entry(entry("t1", ETH, 1, 20.0, 5.0))
        exchange.process_bar(i)
        position = exchange.positions[ETH]
        prices[setting] = position.liquidation_price
    pinned = long_liquidation(position.entry_price, 20.0, position.isolated_margin, *TIER_2024)
    assert prices["2024-10-24"] == pytest.approx(pinned, rel=1e-12)
    assert prices["by_date"] == prices["2022-05-21"] > prices["2024-10-24"]


def test_a_settlement_after_a_table_change_recomputes_with_the_new_table(futures_market, bar_index):
    # Opened 2024-10-23 17:00 under the 2022-05-21 table; the next settlement, 2024-10-24 00:00,
    # falls on the 2024-10-24 table's date.
    exchange = SimExchange(SimExchangeConfig(), futures_market, 100_000.0)
    i = bar_index(futures_market, "2024-10-23 17:00")
    settlement = bar_index(futures_market, "2024-10-24 00:00")
    start_at(exchange, i)
    exchange.submit_entry(entry("t1", ETH, 1, 20.0, 5.0))
    exchange.process_bar(i)
    position = exchange.positions[ETH]
    wallet = position.isolated_margin
    before = long_liquidation(position.entry_price, 20.0, wallet, *TIER_2022)
    for k in range(i + 1, settlement):
        assert not exchange.process_bar(k).funding
        assert position.liquidation_price == pytest.approx(before, rel=1e-12)

    paid = exchange.process_bar(settlement).funding

    assert len(paid) == 1 and position.isolated_margin == pytest.approx(wallet + paid[0].amount)
    after = long_liquidation(position.entry_price, 20.0, position.isolated_margin, *TIER_2024)
    assert position.liquidation_price == pytest.approx(after, rel=1e-12)
