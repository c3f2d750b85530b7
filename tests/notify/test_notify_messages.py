"""Message kinds and texts: heartbeats, which ledger events are alerts, length limits, the schedule."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.notify import (
    Alert,
    Heartbeat,
    HeartbeatSchedule,
    LearningAdjustment,
    MessageKind,
    OpenPosition,
    alert_for_adjustment,
    alert_for_transition,
)
from components.notify.messages import split_text, utf16_length
from components.notify.throttle import TokenBucket
from ledger.writer import Ledger
from tests.notify.conftest import MINUTE, T0

HOUR = 60 * MINUTE
# As the futures agent declares them: circuit_broken stops entries, halted waits for an operator.
STATE_TAGS = {"circuit_broken": {"breaker"}, "halted": {"breaker", "halt"}}


def heartbeat(**changes) -> Heartbeat:
    fields = dict(
        agent="futures", mode="paper", market="perp_1h", ts=T0 + 6 * HOUR, state="kelly_active",
        state_since=T0 - 30 * HOUR, equity=10_250.5, previous_equity=10_000.0,
        positions=(OpenPosition("BTC/USDT:USDT", "long", 0.015, 42_100.0, 12.3),
                   OpenPosition("ETH/USDT:USDT", "short", 0.5, 2_250.0, None)),
        last_adjustment=LearningAdjustment(T0 + 5 * HOUR, "risk_fraction", {"risk_fraction": 0.003},
                                           {"risk_fraction": 0.005}, "kelly f*=0.021 ratchets up"),
        model_version="v0003", model_hit_rate=0.5423)
    fields.update(changes)
    return Heartbeat(**fields)


def test_a_heartbeat_says_state_equity_change_positions_learning_and_model() -> None:
    message = heartbeat().message()

    assert message.kind is MessageKind.HEARTBEAT and message.ts == T0 + 6 * HOUR
    assert message.text.split("\n") == [
        "HEARTBEAT futures | paper | perp_1h | 2024-01-01 06:00 UTC",
        "state: kelly_active since 2023-12-30 18:00 UTC (1d 12h)",
        "equity: 10,250.50 USDT (+250.50 +2.50% since the last heartbeat)",
        "open positions: 2",
        "  BTC/USDT:USDT long 0.015 @ 42,100, unrealized +12.30",
        "  ETH/USDT:USDT short 0.5 @ 2,250",
        "last adjustment: risk_fraction at 2024-01-01 05:00 UTC",
        '  from {"risk_fraction": 0.003} to {"risk_fraction": 0.005}',
        "  why: kelly f*=0.021 ratchets up",
        "model: v0003, recent hit rate 54.2%",
    ]


def test_a_first_heartbeat_of_an_agent_without_a_model_or_learning_says_so() -> None:
    text = heartbeat(previous_equity=None, positions=(), last_adjustment=None, model_version=None,
                     model_hit_rate=None).message().text

    assert "(first heartbeat)" in text
    assert "open positions: 0" in text and "last adjustment: none" in text
    assert text.endswith("model: none")


@pytest.mark.parametrize(("source", "dest", "trigger", "kind"), [
    ("kelly_active", "circuit_broken", "trip_drawdown", MessageKind.BREAKER_TRIP),
    ("circuit_broken", "halted", "escalate", MessageKind.HALT),
    ("circuit_broken", "conservative", "resume", MessageKind.RESUME),
    ("halted", "conservative", "lift_halt", MessageKind.RESUME),
    ("warmup", "conservative", "ready", None),
    ("kelly_active", "conservative", "fall_back", None),  # the fallback adjustment row alerts, not this
    ("conservative", "exploring", "explore", None),
])
def test_transitions_into_and_out_of_the_breaker_and_halt_states_are_alerts(
        source: str, dest: str, trigger: str, kind: MessageKind | None) -> None:
    row = {"ts": T0, "agent": "futures", "source": source, "dest": dest, "trigger": trigger,
           "reason": "drawdown 12.4% >= 12.0%", "evidence": {"drawdown": 0.124}}

    alert = alert_for_transition(row, STATE_TAGS)

    if kind is None:
        assert alert is None
    else:
        assert (alert.kind, alert.agent, alert.ts) == (kind, "futures", T0)
        assert alert.text == f"{source} -> {dest} ({trigger}): drawdown 12.4% >= 12.0%"


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with Ledger.open(":memory:", run_id="notify-test") as opened:
        yield opened


ADJUSTMENTS = [
    ("fallback", {"state": "kelly_active"}, {"state": "conservative defaults"},
     "signal failed on BTC/USDT: ValueError: boom", MessageKind.FALLBACK),
    ("model_retrain", {"champion": "v0002"}, {"champion": "v0003", "challenger": "v0003", "promoted": True},
     "log-loss 0.681 < champion 0.690", MessageKind.RETRAIN_PROMOTED),
    ("model_retrain", {"champion": "v0002"}, {"champion": "v0002", "challenger": "v0003", "promoted": False},
     "log-loss 0.701 >= champion 0.690", MessageKind.RETRAIN_REJECTED),
    ("param_promotion", {"kelly_fraction": 0.5}, {"kelly_fraction": 0.35}, "canary passed",
     MessageKind.PARAM_PROMOTION),
    ("param_rollback", {"kelly_fraction": 0.35}, {"kelly_fraction": 0.5}, "canary lost 3%", MessageKind.PARAM_ROLLBACK),
    ("reconciliation", {"BTC/USDT:USDT": 0.015}, {"BTC/USDT:USDT": 0.0}, "exchange shows no position",
     MessageKind.RECONCILIATION),
    ("exchange_errors", None, {"streak": 5}, "5 failed calls in a row", MessageKind.EXCHANGE_ERRORS),
    ("ensemble_weights", {"lstm": 0.25}, {"lstm": 0.3}, "softmax of log-loss", None),
    ("gate_threshold", {"threshold": 0.55}, {"threshold": 0.56}, "hit rate", None),
]


@pytest.mark.parametrize(("kind", "before", "after", "reason", "alert_kind"), ADJUSTMENTS)
def test_adjustment_rows_read_back_from_the_ledger_map_to_their_alert(
        ledger: Ledger, kind: str, before, after, reason: str, alert_kind: MessageKind | None) -> None:
    ledger.append("adjustments", {"ts": T0, "agent": "hybrid", "kind": kind, "before": before, "after": after,
                                  "reason": reason, "evidence": {}})
    ledger.commit()
    columns = ("ts", "agent", "kind", "before", "after", "reason")
    stored = dict(zip(columns, ledger.query(f"SELECT {', '.join(columns)} FROM adjustments")[0], strict=True))

    from_ledger, in_memory = alert_for_adjustment(stored), alert_for_adjustment(
        {"ts": T0, "agent": "hybrid", "kind": kind, "before": before, "after": after, "reason": reason})

    assert from_ledger == in_memory
    if alert_kind is None:
        assert from_ledger is None
    else:
        assert (from_ledger.kind, from_ledger.agent, from_ledger.ts) == (alert_kind, "hybrid", T0)
        assert reason in from_ledger.text


def test_a_retrain_alert_names_the_challenger_and_the_live_model() -> None:
    promoted, rejected = (alert_for_adjustment({"ts": T0, "agent": "hybrid", "kind": "model_retrain",
                                                "before": b, "after": a, "reason": r})
                          for _, b, a, r, _ in ADJUSTMENTS[1:3])

    assert promoted.text == "model v0003 promoted to champion (was v0002): log-loss 0.681 < champion 0.690"
    assert rejected.text == "model v0003 rejected; v0002 stays live: log-loss 0.701 >= champion 0.690"


def test_an_alert_message_leads_with_kind_agent_and_time() -> None:
    message = Alert(MessageKind.HALT, "futures", T0 + 90 * MINUTE, "circuit_broken -> halted").message()

    assert message.text == "ALERT halt | futures | 2024-01-01 01:30 UTC\ncircuit_broken -> halted"
    assert (message.kind, message.agent, message.ts) == (MessageKind.HALT, "futures", T0 + 90 * MINUTE)


def test_a_long_text_splits_at_line_breaks_within_the_limit() -> None:
    text = "\n".join(f"line {i:03d} " + "x" * 40 for i in range(100))  # 5,099 characters

    discord, telegram = split_text(text, 2000), split_text(text, 4096)

    assert [len(discord), len(telegram)] == [3, 2]
    assert all(utf16_length(p) <= 2000 for p in discord) and all(utf16_length(p) <= 4096 for p in telegram)
    assert "\n".join(discord) == text == "\n".join(telegram)
    assert split_text("short", 2000) == ["short"]


def test_length_counts_utf16_units_and_never_cuts_an_emoji_in_half() -> None:
    text = "\U0001F4C8" * 1500  # 1,500 characters, 3,000 UTF-16 units

    parts = split_text(text, 2000)

    assert [utf16_length(p) for p in parts] == [2000, 1000]
    assert "".join(parts) == text


def test_a_text_beyond_the_part_budget_is_truncated_with_a_note() -> None:
    text = "\n".join("y" * 1000 for _ in range(20))

    parts = split_text(text, 2000, max_parts=3)

    assert len(parts) == 3 and all(utf16_length(p) <= 2000 for p in parts)
    kept = sum(len(p) for p in parts[:2]) + 2 + len(parts[2].rsplit("\n", 1)[0])
    assert parts[2].endswith(f"[truncated: {len(text) - kept} more characters]")


def test_heartbeats_fall_on_the_utc_grid_and_a_resumed_schedule_agrees() -> None:
    bars = [T0 - 2 * HOUR + i * HOUR for i in range(50)]  # 1h bar close times from 22:00 the day before
    schedule = HeartbeatSchedule(6 * HOUR)

    due = [ts for ts in bars if schedule.due(ts)]
    resumed = HeartbeatSchedule(6 * HOUR)
    due_after_resume = [ts for ts in bars[20:] if resumed.due(ts)]

    assert [(ts - T0) // HOUR for ts in due] == [0, 6, 12, 18, 24, 30, 36, 42]
    assert due_after_resume == [ts for ts in due if ts >= bars[20]]


def test_a_bar_that_skips_a_grid_point_still_brings_the_heartbeat() -> None:
    schedule = HeartbeatSchedule(6 * HOUR)
    closes = [T0 + 1 * HOUR, T0 + 5 * HOUR, T0 + 9 * HOUR, T0 + 11 * HOUR, T0 + 13 * HOUR]

    assert [schedule.due(ts) for ts in closes] == [False, False, True, False, True]


class SteppedClock:
    """An injected monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_token_bucket_lets_a_burst_go_then_paces_at_the_rate() -> None:
    clock = SteppedClock()
    bucket = TokenBucket(per_minute=30, burst=3, clock=clock)  # one post every 2 s after the burst

    burst = [bucket.reserve() for _ in range(3)]
    queued = [bucket.reserve(), bucket.reserve()]
    clock.now += 60.0  # a long quiet spell refills the burst and no more
    refilled = [bucket.reserve() for _ in range(4)]

    assert burst == [0.0, 0.0, 0.0]
    assert queued == pytest.approx([2.0, 4.0])
    assert refilled == pytest.approx([0.0, 0.0, 0.0, 2.0])
