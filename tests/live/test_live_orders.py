"""Live orders through the real ccxt client on the loopback Binance: what is sent, filled, protected and
recorded, bar by bar as the engine drives the exchange (tests/live/driver.py), on the bundled candles."""

from __future__ import annotations

import json
import math

import pytest

from components.exchange.client_ids import client_order_id
from components.exchange.live import LiveSettings
from core.records import EntryOrder, ExitReason
from machine.engine import _run_id
from tests.live.driver import PERP, entry, exit_order

MID = "BTCUSDT"


def rounded(values) -> list[tuple]:
    """Rows compared to 1e-9: what went through Binance's decimal strings."""
    return sorted(tuple(round(v, 9) if isinstance(v, float) else v for v in row) for row in values)


def test_a_live_stretch_is_recorded_as_the_exchange_filled_it_and_agrees_with_its_own_records(drive, loopback):
    driver = drive()

    def scenario(d, i):
        k = i - d.market.trade_from
        if k == 1:  # a long whose target the market reaches
            return [entry(d, side=1, qty=0.05, stop_pct=0.002, target_pct=0.003)]
        if k == 12:  # a short stopped out
            return [entry(d, side=-1, qty=0.04, stop_pct=0.002, target_pct=None)]
        if k == 20:
            return [entry(d, side=1, qty=0.03, stop_pct=0.02, target_pct=None)]
        if k == 26:  # closed by the agent's signal
            return [exit_order(d)]
        return []

    driver.run(30, scenario)
    account = loopback.venue.futures

    trades = driver.rows("SELECT trade_id, side, exit_reason, qty, pnl, fees, funding FROM trades ORDER BY entry_ts")
    assert [(t[0], t[1], t[2]) for t in trades] == [("futures-000001", "long", "take_profit"),
                                                   ("futures-000002", "short", "stop_loss"),
                                                   ("futures-000003", "long", "signal")]
    # every fill in the ledger is a trade on the exchange, at its price, quantity and fee
    theirs = rounded((t["qty"], t["price"], t["commission"], t["side"]) for t in account.trades)
    ours = rounded((q, p, f, s.upper()) for q, p, f, s in driver.rows("SELECT qty, price, fee, side FROM fills"))
    assert ours == theirs and len(ours) == 6
    # funding as the exchange charged it, for the positions that paid it
    charged = rounded((r["time"], r["income"]) for r in account.income if r["incomeType"] == "FUNDING_FEE")
    assert rounded(driver.rows("SELECT ts, amount FROM funding")) == charged and len(charged) >= 2
    # the balance: flat at the end, the ledger's cash is the exchange's wallet, and the trades explain it
    (cash,) = driver.rows("SELECT cash FROM equity ORDER BY ts DESC LIMIT 1")[0]
    assert account.positions == {} and cash == pytest.approx(account.wallet, abs=1e-6)
    assert 10_000 + sum(t[4] for t in trades) == pytest.approx(account.wallet, abs=1e-6)
    # the order lifecycle: sent then filled; protective orders placed, the one that filled, the others cancelled
    lifecycle = driver.rows("SELECT order_id, kind, status FROM order_updates ORDER BY wall_ts, kind")
    assert ("futures-000001", "entry", "sent") in lifecycle and ("futures-000001", "entry", "filled") in lifecycle
    assert ("futures-000001", "take_profit", "filled") in lifecycle
    assert ("futures-000001", "stop_loss", "canceled") in lifecycle
    assert ("futures-000002", "stop_loss", "filled") in lifecycle
    assert not [o for o in account.open_algo_orders(None)]  # nothing left working on the exchange
    assert driver.rows("SELECT count(*) FROM reconciliation")[0][0] == 0
    assert driver.rows("SELECT count(*) FROM adjustments WHERE kind = 'exchange_errors'")[0][0] == 0


def test_every_order_carries_a_client_id_derived_from_the_run_and_the_ledger_order_id(drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d)] if i == d.market.trade_from + 1 else [])
    (order,) = [o for o in loopback.venue.futures.orders.values()]
    assert order.client_id == client_order_id(_run_id(driver.run_dir), "futures-000001")
    stops = {o.client_id for o in loopback.venue.futures.algo_orders.values()}
    assert stops == {f"{order.client_id}.s1", f"{order.client_id}.t2"}


def test_isolated_margin_and_the_agents_leverage_are_set_before_the_first_entry(drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d, leverage=2.4)] if i == d.market.trade_from + 1 else [])
    paths = [r.path for r in loopback.server.requests() if r.method == "POST"]
    assert paths[:3] == ["/fapi/v1/marginType", "/fapi/v1/leverage", "/fapi/v1/order"]
    account = loopback.venue.futures
    assert account.margin_type[MID] == "ISOLATED" and account.leverage[MID] == 3  # whole leverage, rounded up
    assert account.positions[MID].isolated


@pytest.mark.parametrize(("order", "why"), [
    ({"qty": 0.0004}, "quantity 0 is below BTC/USDT:USDT's minimum lot 0.001"),
    ({"qty": 0.002}, "notional 58.05 is below BTC/USDT:USDT's minimum 100"),
    ({"qty": 125.0}, "quantity 125 is above BTC/USDT:USDT's largest market order 120"),
    ({"qty": 30.0, "leverage": 100.0}, "leverage 100 is above the 75x BTC/USDT:USDT's brackets allow at notional"),
])
def test_an_order_that_breaks_the_exchanges_rules_is_not_sent_and_is_recorded_as_a_rejection(
        drive, loopback, order, why):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d, **order)] if i == d.market.trade_from + 1 else [])
    assert not [r for r in loopback.server.requests() if r.path == "/fapi/v1/order"]
    (reason,) = driver.rows("SELECT reason FROM adjustments WHERE kind = 'order_rejected'")[0]
    assert reason.startswith("not sent: " + why)
    assert driver.rows("SELECT status FROM order_updates") == [("not_sent",)]


def test_quantities_and_prices_are_rounded_the_exchanges_way_before_they_are_sent(drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d, qty=0.0537891, stop_pct=0.01234567)] if i == d.market.trade_from + 1 else [])
    order = next(iter(loopback.venue.futures.orders.values()))
    stop = next(o for o in loopback.venue.futures.algo_orders.values() if o.type == "STOP_MARKET")
    assert order.qty == 0.053 and stop.qty == 0.053  # truncated to the 0.001 lot
    assert stop.trigger_price == round(stop.trigger_price, 1)  # on the 0.1 tick
    assert driver.exchange.positions[PERP].stop_price == stop.trigger_price


def test_a_trailed_stop_is_replaced_on_the_exchange_new_one_first_and_the_position_is_never_unprotected(
        drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d, stop_pct=0.01, target_pct=None)] if i == d.market.trade_from + 1 else [])
    standing_before = {o.client_id for o in loopback.venue.futures.open_algo_orders(MID)}
    pos = driver.exchange.positions[PERP]
    driver.exchange.amend_protection(PERP, stop_price=pos.stop_price + 50.0)
    driver.step()
    account = loopback.venue.futures
    (standing,) = account.open_algo_orders(MID)
    assert standing.trigger_price == pytest.approx(pos.stop_price) and standing.client_id.endswith(".s2")
    (old,) = standing_before
    assert next(o for o in account.algo_orders.values() if o.client_id == old).status == "CANCELED"
    posts = [r for r in loopback.server.requests("/fapi/v1/algoOrder") if r.method in ("POST", "DELETE")]
    assert [r.method for r in posts][-2:] == ["POST", "DELETE"]  # placed, then the old one cancelled


def test_partial_fills_are_booked_as_they_come_and_the_stop_follows_the_quantity(drive, loopback):
    driver = drive()
    loopback.venue.futures.partial_fills(0.4)
    driver.run(2, lambda d, i: [entry(d, qty=0.05, target_pct=None)] if i == d.market.trade_from + 1 else [])
    assert driver.exchange.positions[PERP].qty == pytest.approx(0.02)
    assert [o.order_id for o in driver.exchange.pending_orders()] == ["futures-000001"]  # still working
    driver.step()  # the rest fills at the next candle's open
    pos = driver.exchange.positions[PERP]
    assert pos.qty == pytest.approx(0.05)
    fills = driver.rows("SELECT qty, price FROM fills ORDER BY ts")
    assert [q for q, _ in fills] == pytest.approx([0.02, 0.03]) and fills[0][1] != fills[1][1]
    assert pos.entry_price == pytest.approx((0.02 * fills[0][1] + 0.03 * fills[1][1]) / 0.05)
    statuses = [s for (s,) in driver.rows("SELECT status FROM order_updates WHERE kind = 'entry' "
                                                   "ORDER BY wall_ts")]
    assert statuses == ["sent", "partially_filled", "filled"]
    (stop,) = loopback.venue.futures.open_algo_orders(MID)
    assert stop.qty == pytest.approx(0.05)  # the protection covers the whole position


def test_a_liquidation_on_the_exchange_closes_the_position_as_a_liquidation_losing_its_margin(drive, loopback):
    driver = drive()
    # 100x with no stop: the 0.9 % fall of 2023-08-07 02:00 takes it (Binance's isolated liquidation price)
    driver.run(2, lambda d, i: [entry(d, qty=0.3, leverage=100, stop_pct=0.5, target_pct=None)]
               if i == d.market.trade_from + 1 else [])
    margin = loopback.venue.futures.positions[MID].wallet
    driver.run(42)
    (trade,) = driver.rows("SELECT exit_reason, pnl, funding FROM trades")
    assert trade[0] == "liquidation" and trade[2] != 0  # it paid funding on the way
    entry_fee = driver.rows("SELECT fee FROM fills ORDER BY ts LIMIT 1")[0][0]
    assert trade[1] == pytest.approx(-margin - entry_fee, rel=1e-9)  # the whole isolated margin is lost
    (recon,) = driver.rows("SELECT item, action, reason FROM reconciliation")
    assert recon == ("position", "closed", "liquidated by the exchange")
    assert driver.rows("SELECT count(*) FROM adjustments WHERE kind = 'reconciliation'")[0][0] == 1
    assert PERP not in driver.exchange.positions and not loopback.venue.futures.open_algo_orders(MID)


def test_a_manual_trade_is_found_by_reconciliation_and_the_agents_view_follows_the_exchange(drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d, qty=0.05, target_pct=None)] if i == d.market.trade_from + 1 else [])
    account = loopback.venue.futures
    account.manual_trade(MID, "SELL", 0.02)  # someone halves the position by hand
    account.transfer(-500.0)  # and moves money out of the futures wallet
    driver.step()
    pos = driver.exchange.positions[PERP]
    assert pos.qty == pytest.approx(0.03)
    found = driver.rows("SELECT item, action, agent_view, exchange_view FROM reconciliation ORDER BY item")
    assert [(item, action) for item, action, _, _ in found] == [("balance", "corrected"), ("position", "resized")]
    ours, theirs = json.loads(found[1][2]), json.loads(found[1][3])
    assert ours["qty"] == pytest.approx(0.05) and theirs["qty"] == pytest.approx(0.03)  # both sides, recorded
    assert driver.exchange.cash == pytest.approx(account.wallet)
    driver.step()
    (stop,) = account.open_algo_orders(MID)
    assert stop.qty == pytest.approx(0.03)  # protection resized to what is held
    manual = driver.rows("SELECT qty, reason FROM fills WHERE reason = 'reconciled'")
    assert manual == [(pytest.approx(0.02), "reconciled")]


def test_a_position_opened_by_hand_in_a_traded_symbol_is_adopted_and_reported(drive, loopback):
    driver = drive()
    driver.run(2)
    loopback.venue.futures.manual_trade(MID, "BUY", 0.01)
    driver.step()
    pos = driver.exchange.positions[PERP]
    assert pos.qty == pytest.approx(0.01) and pos.trade_id.startswith("adopted-BTC-")
    assert driver.rows("SELECT item, action FROM reconciliation WHERE item = 'position'") == [
        ("position", "adopted")]


def test_an_order_placed_by_hand_is_left_alone_and_reported_once(drive, loopback):
    driver = drive(settings=LiveSettings(reconcile_every_bars=2))
    driver.run(1)
    account = loopback.venue.futures
    with account.lock:
        account.set_margin_type(MID, "ISOLATED")
    account.new_algo_order(MID, "SELL", "STOP_MARKET", 0.01, 20_000.0, "web_manual_1", working_type="CONTRACT_PRICE",
                           reduce_only=True, close_position=False)
    driver.run(6)
    assert driver.rows("SELECT item, action FROM reconciliation") == [("order", "left_alone")]
    assert account.open_algo_orders(MID)[0].client_id == "web_manual_1"


def test_spot_positions_are_protected_by_a_stop_loss_limit_whose_fill_is_a_stop_loss_exit(drive, loopback):
    driver = drive(kind="spot", symbols=("BTC/USDT",))
    spot = "BTC/USDT"
    driver.run(16, lambda d, i: [entry(d, qty=0.05, stop_pct=0.001, target_pct=None, symbol=spot, leverage=1.0)]
               if i == d.market.trade_from + 1 else [])
    (trade,) = driver.rows("SELECT exit_reason, qty FROM trades")
    assert trade[0] == "stop_loss"
    orders = list(loopback.venue.spot.orders.values())
    assert [(o.type, o.side, o.status) for o in orders] == [("MARKET", "BUY", "FILLED"),
                                                           ("STOP_LOSS_LIMIT", "SELL", "FILLED")]
    assert orders[1].qty == pytest.approx(0.04995)  # the buyer's fee was taken in BTC: what is held is sold
    assert loopback.venue.spot.total("BTC") == pytest.approx(0.0, abs=1e-9)
    cash = driver.rows("SELECT cash FROM equity ORDER BY ts DESC LIMIT 1")[0][0]
    assert cash == pytest.approx(loopback.venue.spot.free["USDT"])


def test_close_all_sends_a_market_exit_for_every_position(drive, loopback):
    driver = drive()
    driver.run(3, lambda d, i: [entry(d)] if i == d.market.trade_from + 1 else [])
    events = driver.exchange.close_all(driver.i - 1, ExitReason.OPERATOR)
    assert [t.exit_reason for t in events.closed] == [ExitReason.OPERATOR]
    assert loopback.venue.futures.positions == {} and not math.isnan(events.closed[0].pnl)


def test_an_entry_decided_on_a_bar_older_than_the_last_one_known_is_not_sent(drive, loopback):
    driver = drive()
    driver.run(1)
    loopback.server.clock.advance(3 * 3_600_000)  # the process fell behind: three bars closed meanwhile
    driver.step(lambda d, i: [entry(d)])  # decided on the oldest of them, while catching up
    assert loopback.venue.futures.orders == {}
    (why,) = driver.rows("SELECT reason FROM adjustments WHERE kind = 'order_rejected'")[0]
    assert why.startswith("not sent: decided on a bar 2 bar(s) behind the last one known (catching up")
    driver.run(5, lambda d, i: [entry(d)] if i == d.market.trade_from + 4 else [])  # caught up: it goes
    assert len(loopback.venue.futures.orders) == 1


def test_a_spot_entry_spending_a_share_of_the_cash_buys_that_much_and_holds_what_the_fee_leaves(drive, loopback):
    driver = drive(kind="spot", symbols=("BTC/USDT",))
    all_in = EntryOrder("futures-000001", "BTC/USDT", 1, math.nan, 1.0, None, None, "normal", "conservative",
                        "all in", 0.0, cash_fraction=0.25)
    driver.run(2, lambda d, i: [all_in] if i == d.market.trade_from + 1 else [])
    (order,) = loopback.venue.spot.orders.values()
    assert order.quote == pytest.approx(2_500.0, abs=0.3)  # a quarter of the cash, to the lot
    pos = driver.exchange.positions["BTC/USDT"]
    assert pos.qty == pytest.approx(order.executed * 0.999) == pytest.approx(loopback.venue.spot.total("BTC"))
    assert driver.exchange.cash == pytest.approx(loopback.venue.spot.free["USDT"])
