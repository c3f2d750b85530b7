"""Live trading when things go wrong: crashes around a send, an exchange that fails, refuses or forgets to
answer, keys that stop working. No path doubles or loses an order; the loop never dies on a reply."""

from __future__ import annotations

import pytest

from components.exchange.client_ids import client_order_id
from machine.engine import _run_id
from tests.live.driver import API_KEY, PERP, entry

MID = "BTCUSDT"


def enter_once(k: int = 1, **kwargs):
    """A scenario: one entry, decided at the close of the ``k``-th bar."""
    return lambda d, i: [entry(d, **kwargs)] if i == d.market.trade_from + k else []


def orders_on_exchange(loopback, run_dir) -> list:
    cid = client_order_id(_run_id(run_dir), "futures-000001")
    return [o for o in loopback.venue.futures.orders.values() if o.client_id == cid]


def test_a_stop_triggered_while_the_process_was_down_is_booked_as_a_stop_loss_when_it_restarts(drive, loopback):
    first = drive()
    first.run(3, enter_once(stop_pct=0.0015, target_pct=None))
    run_dir = first.run_dir
    first.shut()
    loopback.server.clock.advance(16 * 3_600_000)  # down for 16 hours: the 14:00 bar reaches the stop
    restarted = drive(run_dir)
    restarted.run(4)  # three bars answered from the journal, then the first live one
    (trade,) = restarted.rows("SELECT exit_reason, exit_ts FROM trades")
    assert trade[0] == "stop_loss"
    stop = next(o for o in loopback.venue.futures.algo_orders.values() if o.type == "STOP_MARKET")
    assert trade[1] == loopback.venue.futures.orders[int(stop.actual_order_id)].update_time
    assert restarted.rows("SELECT count(*) FROM fills")[0][0] == 2 and len(orders_on_exchange(loopback, run_dir)) == 1
    assert PERP not in restarted.exchange.positions and not loopback.venue.futures.open_algo_orders(MID)


def test_an_order_filled_after_its_send_but_before_the_answer_was_recorded_is_found_not_sent_again(drive, loopback):
    first = drive()
    first.run(1)
    first.step(enter_once(), crash_after_send=True)  # sent and filled on Binance; the process dies then
    run_dir = first.run_dir
    assert first.rows("SELECT count(*) FROM fills")[0][0] == 0 and len(orders_on_exchange(loopback, run_dir)) == 1
    first.shut()
    restarted = drive(run_dir)
    restarted.run(4, enter_once())  # the same decisions, replayed; then live
    assert len(orders_on_exchange(loopback, run_dir)) == 1  # never sent twice
    statuses = restarted.rows("SELECT status FROM order_updates WHERE kind = 'entry' ORDER BY wall_ts")
    assert statuses == [("found",), ("filled",)]
    (fill,) = restarted.rows("SELECT order_id, qty, price FROM fills")
    assert fill[0] == "futures-000001" and fill[1] == pytest.approx(0.05)
    # its protection, placed by the process that died, is kept, not doubled
    standing = loopback.venue.futures.open_algo_orders(MID)
    assert sorted(o.client_id[-3:] for o in standing) == [".s1", ".t2"]
    assert len(loopback.venue.futures.algo_orders) == 2


def test_an_order_recorded_but_never_sent_is_sent_at_restart_while_its_bar_is_still_open(drive, loopback):
    first = drive()
    first.run(1)
    first.step(enter_once(), crash_before_send=True)  # committed; the process dies before sending
    run_dir = first.run_dir
    first.shut()
    assert orders_on_exchange(loopback, run_dir) == []
    restarted = drive(run_dir)  # restarted within the bar the order was meant for
    restarted.run(4, enter_once())
    (order,) = orders_on_exchange(loopback, run_dir)
    assert order.status == "FILLED" and restarted.rows("SELECT count(*) FROM fills")[0][0] == 1
    assert restarted.rows("SELECT count(*) FROM orders")[0][0] == 1  # the ledger's one order, sent once


def test_an_order_recorded_but_never_sent_is_recorded_as_not_sent_when_its_bar_has_passed(drive, loopback):
    first = drive()
    first.run(1)
    first.step(enter_once(), crash_before_send=True)
    run_dir = first.run_dir
    first.shut()
    loopback.server.clock.advance(3 * 3_600_000)  # restarted hours later: an entry then is another trade
    restarted = drive(run_dir)
    restarted.run(4, enter_once())
    assert orders_on_exchange(loopback, run_dir) == []
    (why,) = restarted.rows("SELECT reason FROM adjustments WHERE kind = 'order_rejected'")[0]
    assert why == "not sent: Binance never received it, and the bar it was meant for has passed"
    assert restarted.rows("SELECT status FROM order_updates") == [("not_sent",)]


@pytest.mark.parametrize("fault", ["5xx", "lost_reply", "timeout", "429"])
def test_a_storm_of_failures_on_sending_never_doubles_the_order(drive, loopback, fault):
    path = "/fapi/v1/order"
    if fault == "5xx":
        loopback.server.faults.error(path, 503, times=3, params={"type": "MARKET"})
    elif fault == "lost_reply":  # carried out, then answered 502: only asking by client id tells
        loopback.venue.lose_reply(path, times=2, status=502)
    elif fault == "timeout":
        loopback.venue.lose_reply(path, times=1, stall_s=0.6)
    else:
        loopback.server.faults.rate_limit(path, retry_after_s=0.01, times=3, params={"type": "MARKET"})
    driver = drive(timeout_ms=300, retries=4)
    driver.run(3, enter_once())
    (order,) = orders_on_exchange(loopback, driver.run_dir)
    assert order.status == "FILLED"
    assert driver.rows("SELECT count(*) FROM fills")[0][0] == 1
    assert driver.rows("SELECT count(*) FROM adjustments WHERE kind IN ('order_rejected', 'exchange_errors')") == [(0,)]


def test_a_send_that_never_gets_through_is_asked_for_at_the_next_bar_and_recorded_as_not_sent(drive, loopback):
    loopback.server.faults.error("/fapi/v1/order", 503, times=None, params={"type": "MARKET"})  # every send
    driver = drive(retries=2)
    driver.run(4, enter_once())
    assert orders_on_exchange(loopback, driver.run_dir) == []
    assert [s for (s,) in driver.rows("SELECT status FROM order_updates ORDER BY wall_ts")] == ["unknown", "not_sent"]


def test_an_exchange_that_fails_every_request_for_a_while_never_stops_the_loop(drive, loopback):
    driver = drive(retries=1)
    driver.run(2, enter_once(target_pct=None))
    for path in ("/fapi/v3/positionRisk", "/fapi/v3/account", "/fapi/v1/income", "/fapi/v1/openAlgoOrders"):
        loopback.server.faults.error(path, 500, times=4)
    driver.run(5)
    errors = driver.rows("SELECT reason FROM adjustments WHERE kind = 'exchange_errors'")
    assert 1 <= len(errors) <= 3 and all("500" in e or "unavailable" in e for (e,) in errors)
    assert driver.exchange.positions[PERP].qty == pytest.approx(0.05)  # the view held, and is checked again
    assert driver.rows("SELECT count(*) FROM reconciliation")[0][0] == 0


def test_a_duplicate_client_id_refused_by_the_exchange_is_answered_by_the_order_already_there(drive, loopback):
    driver = drive()
    cid = client_order_id(_run_id(driver.run_dir), "futures-000001")
    # the send is carried out but its answer lost, and the look-up that follows does not see it yet:
    # the second send is refused as a duplicate, and the order already there is the one that counts
    loopback.venue.lose_reply("/fapi/v1/order", status=502)
    loopback.server.faults.reject("/fapi/v1/order", -2013, "Order does not exist.", params={"origClientOrderId": cid})
    driver.run(3, enter_once())
    sends = [r.status for r in loopback.server.requests("/fapi/v1/order") if r.method == "POST"]
    assert sends == [502, 400]  # the second: -4116 ClientOrderId is duplicated
    assert len(orders_on_exchange(loopback, driver.run_dir)) == 1
    assert driver.rows("SELECT qty FROM fills") == [(pytest.approx(0.05),)]
    assert driver.exchange.positions[PERP].qty == pytest.approx(0.05)


def test_keys_refused_mid_run_halt_the_agent_with_a_clear_message_and_nothing_is_sent_until_they_work(
        drive, loopback):
    driver = drive()
    driver.run(2)
    secret = loopback.venue.keys.accepted[API_KEY]
    loopback.venue.keys.revoke(API_KEY)
    events, _ = driver.step()
    assert events.halt is not None and "Binance refused the API keys" in events.halt
    assert "ratchet-control RUN_DIR resume" in events.halt and API_KEY not in events.halt
    driver.step(enter_once(k=3))
    assert orders_on_exchange(loopback, driver.run_dir) == []
    (why,) = driver.rows("SELECT reason FROM adjustments WHERE kind = 'order_rejected'")[0]
    assert why.startswith("not sent: Binance refuses the API keys")
    loopback.venue.keys.accepted[API_KEY] = secret  # the keys work again: orders go out
    driver.run(6, enter_once(k=5))
    assert len([o for o in loopback.venue.futures.orders.values()]) == 1
