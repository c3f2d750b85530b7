"""Sizing: Kelly by hand, and properties over random trade sequences (hypothesis)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.sizing import KellySizer, KellySizerConfig, kelly_step, size_position
from core.component import Decision
from core.facts import AgentFacts
from machine.builder import AgentMachine
from machine.compose import compose_dict
from machine.spec import MachineSpec

KELLY = KellySizerConfig()


class _Context:
    """The smallest real AgentContext: facts plus a list of the adjustments made."""

    def __init__(self, facts: AgentFacts):
        self.facts = facts
        self.state = "kelly_active"
        self.adjustments: list[tuple[str, Any, Any]] = []

    def adjust(self, kind, before, after, reason, evidence):
        self.adjustments.append((kind, before, after))

    def amend_protection(self, symbol, stop_price, take_profit_price):
        raise AssertionError("a sizer never moves stops")


@pytest.mark.parametrize(("p", "b", "f_star"), [(0.6, 2.0, 0.4), (0.5, 1.0, 0.0), (0.4, 1.0, -0.2),
                                                (0.55, 1.5, 0.55 - 0.45 / 1.5)])
def test_kelly_fraction_matches_hand_computed_cases(p, b, f_star):
    step = kelly_step(p, b, 0.003, KELLY)
    assert step.f_star == pytest.approx(f_star)
    assert step.target == pytest.approx(min(0.15, max(0.0, f_star * 0.5)))


def test_risk_ratchets_up_one_step_at_a_time_and_drops_at_once():
    up = kelly_step(0.6, 2.0, 0.003, KELLY)  # half Kelly wants 0.2, capped to 0.15
    assert up.target == 0.15 and up.after == pytest.approx(0.008)
    down = kelly_step(0.45, 1.0, 0.10, KELLY)  # edge gone: straight to 0
    assert down.after == 0.0


def test_a_high_volatility_counter_trend_entry_takes_a_quarter_of_the_kelly_risk():
    sizer = KellySizer("kelly", KELLY)
    sizer.risk = 0.08
    d = Decision("BTC/USDT:USDT", 0, 0, 100.0, None, vol_regime=1, trend_regime=-1, entry=1)
    sizer.on_bar(d, _Context(AgentFacts()))
    assert d.risk_fraction == pytest.approx(0.08 * 0.5 * 0.5)


FUTURES_SPEC = MachineSpec.model_validate(compose_dict("agent=futures")["agent"]["machine"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=-500, max_value=500, allow_nan=False), min_size=1, max_size=60))
def test_kelly_never_activates_before_ten_closed_trades_and_risk_stays_within_bounds(pnls):
    machine = AgentMachine(FUTURES_SPEC)
    facts = AgentFacts(history_ready=True)
    sizer = KellySizer("kelly", KELLY)
    ctx = _Context(facts)
    machine.evaluate(facts)
    for n, pnl in enumerate(pnls, start=1):
        facts.stats.record(pnl)
        fired = machine.evaluate(facts)
        if fired is not None and fired.dest == "kelly_active":
            assert n >= 10 and facts.stats.kelly_edge > 0
        if machine.state == "kelly_active":
            d = Decision("BTC/USDT:USDT", n, n, 100.0, None, entry=1)
            sizer.on_bar(d, ctx)
            assert 0.0 <= d.risk_fraction <= 0.15
        assert 0.0 <= sizer.risk <= 0.15
    ratchet = [(b["risk_fraction"], a["risk_fraction"]) for k, b, a in ctx.adjustments if k == "kelly_update"]
    assert all(after - before <= KELLY.max_step_up + 1e-12 for before, after in ratchet)


@settings(max_examples=300, deadline=None)
@given(equity=st.floats(1.0, 1e7), risk=st.floats(0.0, 0.15), stop=st.floats(1e-4, 1e4),
       price=st.floats(1e-3, 1e6), budget_share=st.one_of(st.just(0.0), st.floats(1e-6, 1.0)),
       max_leverage=st.sampled_from([1.0, 2.0, 5.0]))
def test_sizes_are_never_negative_and_leverage_never_exceeds_the_limit(
        equity, risk, stop, price, budget_share, max_leverage):
    size = size_position(equity=equity, risk_fraction=risk, stop_distance=stop, price=price,
                         margin_budget=equity * budget_share, max_leverage=max_leverage)
    assert size.qty >= 0.0
    assert 1.0 <= size.leverage <= max_leverage
    assert size.qty * price <= size.leverage * equity * budget_share * (1 + 1e-9)
    if size.clipped_from is not None:
        assert size.clipped_from > size.qty
