"""Random order flow on real bars never breaks the exchange's accounting."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.exchange.sim import SimExchange, SimExchangeConfig
from core.records import EntryOrder, ExitOrder, ExitReason

STARTING_CASH = 10_000.0

bar_actions = st.tuples(
    st.sampled_from(["wait", "wait", "enter", "exit", "amend"]),
    st.integers(0, 1),  # which symbol
    st.sampled_from([1, -1]),
    st.floats(0.05, 1.5),  # share of free cash put up as margin (above 1 must be rejected)
    st.sampled_from([0.5, 1.0, 2.0, 3.0, 5.0, 6.0, 10.0, 25.0, 40.0]),  # leverage asked for
    st.one_of(st.none(), st.floats(0.002, 0.3)),  # stop distance from the last close
    st.one_of(st.none(), st.floats(0.002, 0.1)),  # take-profit distance
)


@pytest.fixture(params=["futures", "spot"])
def market(request):
    return request.getfixturevalue(f"{request.param}_market")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.integers(1, 38_000),
    actions=st.lists(bar_actions, min_size=20, max_size=400),
    slippage_bps=st.sampled_from([0.0, 3.0]),
    max_leverage=st.sampled_from([5.0, 5.0, 30.0]),  # 30x liquidates often on hourly moves
)
def test_cash_and_margins_stay_non_negative_and_leverage_capped(
    market, start, actions, slippage_bps, max_leverage
):
    config = SimExchangeConfig(slippage_bps=slippage_bps, max_leverage=max_leverage)
    exchange = SimExchange(config, market, STARTING_CASH)
    symbols = list(market.symbols)
    futures = market.kind == "futures"
    realized = 0.0
    exchange.process_bar(start - 1)
    for n, (action, which, side, share, leverage, stop_distance, tp_distance) in enumerate(actions):
        i = start + n
        symbol = symbols[which]
        close = float(market.symbols[symbol].bars.close[i - 1])
        if action == "enter":
            leverage = leverage if futures else 1.0
            qty = share * exchange.cash * leverage / close
            stop = None if stop_distance is None else close * (1 - side * stop_distance)
            target = None if tp_distance is None else close * (1 + side * tp_distance)
            if qty > 0:
                exchange.submit_entry(EntryOrder(f"t{n}", symbol, side, qty, leverage, stop, target,
                                                 "normal", "conservative", "random", 0.01))
        elif action == "exit":
            exchange.submit_exit(ExitOrder(f"x{n}", symbol, ExitReason.SIGNAL))
        elif action == "amend" and symbol in exchange.positions and stop_distance is not None:
            position = exchange.positions[symbol]
            exchange.amend_protection(symbol, stop_price=close * (1 - position.side * stop_distance))

        events = exchange.process_bar(i)
        realized += sum(trade.pnl for trade in events.closed)

        positions = exchange.positions.values()
        assert exchange.cash >= 0
        assert all(p.isolated_margin > 0 for p in positions) if futures else True
        assert all(1 <= p.leverage <= max_leverage for p in positions)
        assert exchange.mark_to_market(i)[0] >= 0
        # every unit of cash is accounted for: held, in margin or spent on the open positions
        held = sum(p.isolated_margin if futures else p.qty * p.entry_price for p in positions)
        open_costs = sum(p.funding - p.fees for p in positions)
        assert exchange.cash + held == pytest.approx(STARTING_CASH + realized + open_costs,
                                                     rel=1e-9, abs=1e-6)


