"""Guards read facts and the clock; their evidence is what the ledger stores."""

from __future__ import annotations

import pytest

from core.errors import ConfigError
from core.facts import AgentFacts, TradeStats
from machine.guards import GUARDS, BoundGuard
from machine.spec import GuardCall

MINUTE = 60_000


def _guard(name, param=None):
    return BoundGuard(GuardCall(name=name, param=param))


@pytest.mark.parametrize(("minute", "inside"), [(9, False), (10, True), (19, True), (20, False), (59, False)])
def test_exploration_window_is_exact_at_the_minute_boundaries(minute, inside):
    facts = AgentFacts(now=1_700_000_000_000 // (60 * MINUTE) * (60 * MINUTE) + minute * MINUTE)
    passed, evidence = _guard("exploration_window", {"start_minute": 10, "end_minute": 20})(facts)
    assert passed is inside
    assert evidence["minute"] == minute


def test_kelly_edge_matches_the_hand_computed_value():
    stats = TradeStats()
    for pnl in [2.0] * 6 + [-1.0] * 4:
        stats.record(pnl)
    assert stats.win_rate == pytest.approx(0.6)
    assert stats.win_loss_ratio == pytest.approx(2.0)
    assert stats.kelly_edge == pytest.approx(0.6 - 0.4 / 2.0)
    assert _guard("kelly_edge_positive")(AgentFacts(stats=stats))[0]


def test_a_zero_pnl_trade_is_a_loss_and_breaks_no_streak_of_wins():
    stats = TradeStats()
    stats.record(0.0)
    stats.record(-1.0)
    assert (stats.wins, stats.losses, stats.consecutive_losses) == (0, 2, 2)
    stats.record(1.0)
    assert stats.consecutive_losses == 0


def test_daily_loss_is_measured_from_the_utc_day_start():
    facts = AgentFacts()
    day = 86_400_000
    facts.mark_equity(10 * day + 1, 1000.0)
    facts.mark_equity(10 * day + 5, 1100.0)
    facts.mark_equity(11 * day + 1, 1050.0)  # new day starts from the last equity, 1100
    passed, ev = _guard("daily_loss_at_least", 0.04)(facts)
    assert ev["daily_loss"] == pytest.approx(1 - 1050 / 1100)
    assert passed
    facts.mark_equity(11 * day + 2, 1080.0)
    assert not _guard("daily_loss_at_least", 0.04)(facts)[0]


def test_trips_escalate_only_inside_the_window():
    hour = 3_600_000
    facts = AgentFacts(now=1000 * hour)
    facts.breaker_trips.extend([100 * hour, 990 * hour, 999 * hour])
    g = _guard("trips_within_at_least", {"count": 3, "hours": 720})
    assert not g(facts)[0]
    facts.breaker_trips.append(1000 * hour)
    assert g(facts)[0]


def test_cooldown_and_schedule_windows_read_the_simulated_clock():
    hour = 3_600_000
    facts = AgentFacts(now=50 * hour, state_entered_at=2 * hour)
    assert _guard("cooldown_elapsed", 48)(facts)[0]
    assert not _guard("cooldown_elapsed", 49)(facts)[0]
    week = {"every_hours": 168, "for_hours": 24}
    assert _guard("schedule_window", week)(AgentFacts(now=168 * hour * 3 + 23 * hour))[0]
    assert not _guard("schedule_window", week)(AgentFacts(now=168 * hour * 3 + 24 * hour))[0]


@pytest.mark.parametrize(("name", "param"), [
    ("exploration_window", {"start_minute": 20, "end_minute": 10}),
    ("schedule_window", {"every_hours": 24, "for_hours": 24}),
    ("trips_within_at_least", 3),
    ("closed_trades_at_least", None),
])
def test_bad_guard_parameters_fail_at_build_time(name, param):
    assert name in GUARDS
    with pytest.raises(ConfigError, match=name.split("_")[0]):
        _guard(name, param)
