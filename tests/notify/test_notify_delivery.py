"""Delivery through the real httpx client to loopback Discord and Telegram servers.

Timing is read from the servers' own arrival times and only bounded from below (a retry may come
late on a busy machine, never early).
"""

from __future__ import annotations

import logging
import threading

import pytest

from components.notify import (
    CLOSED,
    COLLAPSED,
    LEDGER_CHANNEL,
    NOT_SENT_IN_REPLAY,
    Alert,
    DiscordChannel,
    Dispatcher,
    Heartbeat,
    MessageKind,
    NotifyConfig,
    RetryConfig,
    TelegramChannel,
)
from components.notify.dispatcher import Outcome
from ledger.writer import Ledger
from tests.notify.conftest import MINUTE, QUICK, T0, Outcomes
from tests.support.notify_servers import DiscordWebhookServer, Reply, TelegramBotServer

RECOGNISABLE = "987654321:AAH-RECOGNISABLE-s3cret-TOKEN"


def fallback(minutes: int = 0, agent: str = "futures") -> Alert:
    return Alert(MessageKind.FALLBACK, agent, T0 + minutes * MINUTE, "signal failed on BTC/USDT: ValueError: boom")


def beat(hours: int, equity: float = 10_000.0) -> Heartbeat:
    return Heartbeat("futures", "paper", "perp_1h", T0 + hours * 60 * MINUTE, "conservative", T0, equity, None)


# Channels with a rate limit that never binds, unless a test is about the rate limit.
UNLIMITED = {"per_minute": 60_000.0, "burst": 10}


def discord_of(server: DiscordWebhookServer, **kwargs) -> DiscordChannel:
    return DiscordChannel(server.webhook_url, **{**UNLIMITED, **kwargs})


def telegram_of(server: TelegramBotServer, **kwargs) -> TelegramChannel:
    return TelegramChannel(server.token, server.chat_id, server.api_base, **{**UNLIMITED, **kwargs})


def gaps(server) -> list[float]:
    times = [r.at for r in server.received]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


# --- the two APIs ------------------------------------------------------------------------------

def test_a_discord_alert_is_posted_as_webhook_content_and_recorded_delivered(
        discord, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    [request] = discord.received
    assert request.path == f"/api/webhooks/{discord.webhook_id}/{discord.token}"
    assert request.content_type == "application/json"
    assert request.body == {"content": fallback().message().text, "allowed_mentions": {"parse": []}}
    assert outcome == Outcome(T0, "futures", "discord", "fallback", fallback().message().text, True, None)
    assert dispatcher.drain() == [outcome]


def test_a_telegram_alert_is_a_send_message_call_to_the_configured_chat(
        telegram, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([telegram_of(telegram)], on_outcome=outcomes)

    dispatcher.submit(beat(6))
    [outcome] = outcomes.take(1)

    [request] = telegram.received
    assert request.path == f"/bot{telegram.token}/sendMessage"
    assert request.body == {"chat_id": telegram.chat_id, "text": beat(6).message().text}
    assert (outcome.channel, outcome.kind, outcome.delivered, outcome.error) == ("telegram", "heartbeat", True, None)


def test_a_refused_request_is_reported_with_the_apis_reason_and_not_retried(
        discord, telegram, dispatchers, outcomes: Outcomes) -> None:
    wrong_chat = TelegramChannel(telegram.token, "-1009999", telegram.api_base, **UNLIMITED)
    wrong_webhook = DiscordChannel(f"{discord.origin}/api/webhooks/{discord.webhook_id}/revoked-token", **UNLIMITED)
    dispatcher = dispatchers([wrong_chat, wrong_webhook], on_outcome=outcomes)

    dispatcher.submit(fallback())
    settled = {o.channel: o for o in outcomes.take(2)}

    assert settled["telegram"].error == "HTTP 400: Bad Request: chat not found"
    assert settled["discord"].error == "HTTP 404: Unknown Webhook"
    assert not any(o.delivered for o in settled.values())
    assert (len(telegram.received), len(discord.received)) == (1, 1)


def test_a_long_message_is_split_within_each_apis_length_limit(
        discord, telegram, dispatchers, outcomes: Outcomes) -> None:
    from components.notify import Message

    text = "\n".join(f"position {i:03d} " + "z" * 40 for i in range(100))  # 5,399 characters
    dispatcher = dispatchers([discord_of(discord), telegram_of(telegram)], on_outcome=outcomes)

    dispatcher.submit(Message(MessageKind.HEARTBEAT, "futures", T0, text))
    settled = outcomes.take(2)

    assert all(o.delivered and o.message == text for o in settled)  # the servers refuse an over-long text
    assert (len(discord.received), len(telegram.received)) == (3, 2)
    assert "\n".join(discord.contents()) == text == "\n".join(telegram.texts())


# --- retries -----------------------------------------------------------------------------------

def test_a_discord_429_is_retried_no_sooner_than_its_retry_after(discord, dispatchers, outcomes: Outcomes) -> None:
    discord.script(discord.rate_limited(0.3))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    assert outcome.delivered and len(discord.received) == 2
    assert gaps(discord)[0] >= 0.3


def test_a_discord_429_in_api_v6_milliseconds_is_read_as_milliseconds(
        discord, dispatchers, outcomes: Outcomes) -> None:
    # An unversioned webhook URL may answer in API v6 form: retry_after in ms, Retry-After in seconds.
    discord.script(Reply(429, {"message": "You are being rate limited.", "retry_after": 300, "global": False},
                         {"Retry-After": "1"}))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)  # retry_after_max_s is 5

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    assert outcome.delivered and len(discord.received) == 2
    assert gaps(discord)[0] >= 0.3


def test_a_telegram_flood_wait_is_honoured_before_the_retry(telegram, dispatchers, outcomes: Outcomes) -> None:
    telegram.script(telegram.flood(1))  # Telegram's retry_after is whole seconds
    dispatcher = dispatchers([telegram_of(telegram)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    assert outcome.delivered and len(telegram.received) == 2
    assert gaps(telegram)[0] >= 1.0


def test_server_errors_are_retried_with_doubling_backoff(discord, dispatchers, outcomes: Outcomes) -> None:
    discord.script(Reply(503, {"message": "upstream"}), Reply(502), Reply(500, {"message": "oops", "code": 0}))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    assert (outcome.delivered, len(discord.received)) == (True, 4)
    waited = gaps(discord)
    assert waited[0] >= QUICK.backoff(1) and waited[1] >= QUICK.backoff(2) and waited[2] >= QUICK.backoff(3)
    assert (QUICK.backoff(1), QUICK.backoff(2), QUICK.backoff(3)) == (0.05, 0.1, 0.2)


def test_a_channel_that_keeps_failing_gives_up_after_its_attempts_and_goes_on(
        telegram, dispatchers, outcomes: Outcomes) -> None:
    failure = telegram.error(500, "Internal Server Error")
    telegram.script(*[failure] * QUICK.attempts)
    dispatcher = dispatchers([telegram_of(telegram)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    dispatcher.submit(beat(6))
    first, second = outcomes.take(2)

    assert (first.kind, first.delivered) == ("fallback", False)
    assert first.error == f"HTTP 500: Internal Server Error (gave up after {QUICK.attempts} attempts)"
    assert (second.kind, second.delivered) == ("heartbeat", True)
    assert len(telegram.received) == QUICK.attempts + 1


def test_a_timeout_is_retried_and_a_lasting_one_is_reported(discord, dispatchers, outcomes: Outcomes) -> None:
    retrying = dispatchers([discord_of(discord)], on_outcome=outcomes, timeout_s=0.2)
    once = dispatchers([discord_of(discord)], on_outcome=outcomes, timeout_s=0.2, retry=RetryConfig(attempts=1))

    discord.script(Reply(204, delay_s=0.6))
    retrying.submit(fallback())
    [recovered] = outcomes.take(1)
    discord.script(Reply(204, delay_s=0.6))
    once.submit(fallback(5))
    [lost] = outcomes.take(1)

    assert recovered.delivered and recovered.error is None
    assert len(discord.received) == 3
    assert (lost.delivered, lost.error) == (False, "timeout: ReadTimeout (gave up after 1 attempts)")


def test_a_429_asking_longer_than_the_cap_fails_at_once(discord, dispatchers, outcomes: Outcomes) -> None:
    discord.script(discord.rate_limited(600.0))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    [outcome] = outcomes.take(1)

    assert not outcome.delivered and len(discord.received) == 1
    assert outcome.error == ("HTTP 429: You are being rate limited. "
                             "(asked to wait 600 s, over retry.retry_after_max_s)")


# --- pacing, collapsing, isolation -------------------------------------------------------------

def test_posts_are_spaced_by_the_channel_rate_limit(discord, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([discord_of(discord, per_minute=600, burst=2)], on_outcome=outcomes)  # 10 a second

    for hour in range(6):
        dispatcher.submit(beat(hour))
    settled = outcomes.take(6)

    assert all(o.delivered for o in settled)
    arrivals = [r.at for r in discord.received]
    # 2 posts from the full bucket, then 4 tokens to earn at 10 a second (less the first request's trip).
    assert arrivals[5] - arrivals[0] >= 0.4 - 0.05


def test_repeated_alerts_collapse_into_one_summary_per_window(discord, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes, collapse_ms=60 * MINUTE)

    for minutes in range(0, 35, 5):  # 7 fallbacks in 30 minutes
        dispatcher.submit(fallback(minutes))
    dispatcher.submit(Alert(MessageKind.HALT, "futures", T0 + 31 * MINUTE, "circuit_broken -> halted"))
    first = sorted(outcomes.take(8), key=lambda o: o.ts)
    dispatcher.tick(T0 + 59 * MINUTE)
    dispatcher.tick(T0 + 60 * MINUTE)
    [summary] = outcomes.take(1)

    assert [o.delivered for o in first if o.kind == "fallback"] == [True] + [False] * 6
    assert {o.error for o in first if o.kind == "fallback" and not o.delivered} == {COLLAPSED}
    assert [o.kind for o in first if o.delivered] == ["fallback", "halt"]
    assert (summary.kind, summary.ts, summary.delivered) == ("fallback", T0 + 60 * MINUTE, True)
    assert "fallback repeated x6 in the 60 min from 2024-01-01 00:00 UTC; the latest at 2024-01-01 00:30 UTC" \
        in summary.message
    assert len(discord.received) == 3


def test_a_storm_sends_one_summary_a_window_and_quiet_resets_it(discord, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes, collapse_ms=60 * MINUTE)

    for minutes in range(0, 120, 10):  # a fallback every 10 minutes for two hours
        dispatcher.tick(T0 + minutes * MINUTE)
        dispatcher.submit(fallback(minutes))
    dispatcher.tick(T0 + 120 * MINUTE)
    dispatcher.tick(T0 + 180 * MINUTE)  # the window the second summary opened ends quietly
    dispatcher.submit(fallback(200))
    settled = outcomes.take(15)

    sent = sorted((o for o in settled if o.delivered), key=lambda o: o.ts)
    assert [(o.ts - T0) // MINUTE for o in sent] == [0, 60, 120, 200]
    assert "repeated x5 in the 60 min from 2024-01-01 00:00 UTC" in sent[1].message
    assert "repeated x6 in the 60 min from 2024-01-01 01:00 UTC" in sent[2].message
    assert "repeated" not in sent[0].message + sent[3].message
    assert len(discord.received) == 4


def test_heartbeats_and_other_agents_alerts_never_collapse(discord, dispatchers, outcomes: Outcomes) -> None:
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes, collapse_ms=60 * MINUTE)

    dispatcher.submit(fallback(0, agent="futures"))
    dispatcher.submit(fallback(1, agent="hybrid"))
    dispatcher.submit(beat(0))
    dispatcher.submit(beat(0, equity=10_001.0))

    assert all(o.delivered for o in outcomes.take(4))


def test_a_failing_discord_does_not_delay_telegram(discord, telegram, dispatchers, outcomes: Outcomes) -> None:
    stuck = threading.Event()
    discord.script(Reply(204, hold=stuck))
    dispatcher = dispatchers([discord_of(discord), telegram_of(telegram)], on_outcome=outcomes)

    dispatcher.submit(fallback())
    dispatcher.submit(beat(6))  # returns at once although Discord has not answered the first
    discord.wait_for(1)
    on_telegram = outcomes.take(2)  # Discord's first is held, so these can only be Telegram's
    discord_still_waiting = len(discord.received) == 1 and not discord.answered
    stuck.set()
    on_discord = outcomes.take(2)

    assert discord_still_waiting
    assert [(o.channel, o.kind, o.delivered) for o in on_telegram] == [
        ("telegram", "fallback", True), ("telegram", "heartbeat", True)]
    assert [(o.channel, o.kind, o.delivered) for o in on_discord] == [
        ("discord", "fallback", True), ("discord", "heartbeat", True)]


def test_a_full_queue_refuses_the_message_without_blocking(discord, dispatchers, outcomes: Outcomes) -> None:
    stuck = threading.Event()
    discord.script(Reply(204, hold=stuck))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes, queue_limit=2)

    dispatcher.submit(beat(0))
    discord.wait_for(1)  # the worker holds the first; the queue holds the next two
    for hour in (1, 2, 3):
        dispatcher.submit(beat(hour))
    [refused] = outcomes.take(1)
    stuck.set()

    assert (refused.ts, refused.delivered) == (T0 + 3 * 60 * MINUTE, False)
    assert refused.error == "not sent: discord queue full (2 waiting)"
    assert all(o.delivered for o in outcomes.take(3))


# --- closing -----------------------------------------------------------------------------------

def test_close_sends_what_is_queued_before_returning(discord, telegram, dispatchers) -> None:
    dispatcher = dispatchers([discord_of(discord), telegram_of(telegram)])

    for hour in range(5):
        dispatcher.submit(beat(hour))
    settled = dispatcher.close(timeout=10)

    assert len(settled) == 10 and all(o.delivered for o in settled)
    assert (len(discord.received), len(telegram.received)) == (5, 5)


def test_close_reports_what_could_not_go_in_time_as_not_delivered(discord, dispatchers, outcomes: Outcomes) -> None:
    stuck = threading.Event()
    discord.script(Reply(204, hold=stuck))
    dispatcher = dispatchers([discord_of(discord)], on_outcome=outcomes)
    for hour in range(3):
        dispatcher.submit(beat(hour))
    discord.wait_for(1)

    settled = dispatcher.close(timeout=0.2)
    stuck.set()
    discord.wait_answered(1)

    assert [(o.ts, o.delivered, o.error) for o in settled] == [
        (T0 + h * 60 * MINUTE, False, "not delivered before close (0.2 s)") for h in range(3)]
    assert len(discord.received) == 1  # the queued two were never sent
    assert dispatcher.drain() == []


def test_close_sends_pending_collapse_summaries(discord, dispatchers) -> None:
    dispatcher = dispatchers([discord_of(discord)], collapse_ms=60 * MINUTE)

    for minutes in (0, 1, 2):
        dispatcher.submit(fallback(minutes))
    settled = dispatcher.close(timeout=10)

    assert [(o.ts - T0, o.delivered) for o in sorted(settled, key=lambda o: (o.ts, o.delivered))] == [
        (0, True), (MINUTE, False), (2 * MINUTE, False), (2 * MINUTE, True)]  # the summary, sent at close
    assert "fallback repeated x2" in discord.contents()[1]


def test_a_message_submitted_after_close_is_recorded_not_sent(discord, dispatchers) -> None:
    dispatcher = dispatchers([discord_of(discord)])
    dispatcher.close(timeout=1)

    dispatcher.submit(fallback())

    assert [(o.channel, o.delivered, o.error) for o in dispatcher.drain()] == [("discord", False, CLOSED)]
    assert discord.received == []


# --- from config: replay policy, no channel, ledger rows ---------------------------------------

def config_for(discord: DiscordWebhookServer, telegram: TelegramBotServer, **changes) -> NotifyConfig:
    return NotifyConfig.model_validate({
        "channels": ["discord", "telegram"], "retry": QUICK.model_dump(), "timeout_s": 2.0,
        "discord": {"webhook_url": discord.webhook_url},
        "telegram": {"bot_token": telegram.token, "chat_id": telegram.chat_id, "api_base": telegram.api_base},
        **changes})


def test_a_replay_records_every_message_but_sends_none(discord, telegram) -> None:
    dispatcher = Dispatcher.from_config(config_for(discord, telegram), mode="replay")

    dispatcher.submit(beat(6))
    dispatcher.submit(fallback())
    rows = dispatcher.drain()  # settled at submit: the same rows in every run of the replay
    dispatcher.close(timeout=1)

    assert [(o.channel, o.kind, o.delivered, o.error) for o in rows] == [
        ("discord", "heartbeat", False, NOT_SENT_IN_REPLAY), ("telegram", "heartbeat", False, NOT_SENT_IN_REPLAY),
        ("discord", "fallback", False, NOT_SENT_IN_REPLAY), ("telegram", "fallback", False, NOT_SENT_IN_REPLAY)]
    assert discord.received == [] and telegram.received == []


@pytest.mark.parametrize(("mode", "in_replay"), [("replay", True), ("paper", False), ("live", False)])
def test_a_replay_with_in_replay_and_paper_and_live_send(discord, telegram, mode: str, in_replay: bool) -> None:
    dispatcher = Dispatcher.from_config(config_for(discord, telegram, in_replay=in_replay), mode=mode)

    dispatcher.submit(fallback())
    settled = dispatcher.close(timeout=10)

    assert sorted((o.channel, o.delivered) for o in settled) == [("discord", True), ("telegram", True)]
    assert (len(discord.received), len(telegram.received)) == (1, 1)


def test_without_a_channel_every_message_is_a_delivered_ledger_row() -> None:
    dispatcher = Dispatcher.from_config(NotifyConfig(), mode="live")

    dispatcher.submit(beat(6))
    dispatcher.submit(fallback())
    dispatcher.submit(fallback(1))  # no collapsing: nothing is sent, so nothing is spared

    assert [(o.channel, o.kind, o.delivered, o.error) for o in dispatcher.close()] == [
        (LEDGER_CHANNEL, "heartbeat", True, None), (LEDGER_CHANNEL, "fallback", True, None),
        (LEDGER_CHANNEL, "fallback", True, None)]


def test_outcomes_are_notifications_rows_the_ledger_accepts(discord, dispatchers) -> None:
    discord.script(Reply(503), Reply(503), Reply(503), Reply(503))
    dispatcher = dispatchers([discord_of(discord)])
    dispatcher.submit(fallback())
    dispatcher.submit(beat(6))
    rows = [o.row() for o in dispatcher.close(timeout=10)]

    with Ledger.open(":memory:", run_id="notify-test") as ledger:
        for row in rows:
            ledger.append("notifications", row)
        ledger.commit()
        stored = ledger.query("SELECT ts, agent, channel, kind, delivered, error FROM notifications ORDER BY kind")

    assert stored == [(T0, "futures", "discord", "fallback", False, "HTTP 503 (gave up after 4 attempts)"),
                      (T0 + 6 * 60 * MINUTE, "futures", "discord", "heartbeat", True, None)]


# --- secrets -----------------------------------------------------------------------------------

def test_a_recognisable_token_shows_in_no_row_error_repr_or_log(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with DiscordWebhookServer(token=RECOGNISABLE) as discord, TelegramBotServer(token=RECOGNISABLE) as telegram:
        echo = f"upstream failed for /bot{RECOGNISABLE}/sendMessage"  # a verbose proxy quoting the URL
        telegram.script(*[telegram.error(502, echo)] * 2)
        discord.script(Reply(500, {"message": f"no route to {discord.webhook_url}"}), Reply(400, {"message": echo}))
        nothing_listens = "http://127.0.0.1:9"
        closed_port = TelegramChannel(RECOGNISABLE, telegram.chat_id, nothing_listens, **UNLIMITED)
        channels = [discord_of(discord), telegram_of(telegram)]
        retry = RetryConfig(attempts=2, backoff_s=0.01)
        dispatcher = Dispatcher(channels, retry=retry, timeout_s=2.0)
        refused = Dispatcher([closed_port], retry=retry, timeout_s=2.0)

        dispatcher.submit(fallback())
        refused.submit(fallback())
        settled = dispatcher.close(timeout=10) + refused.close(timeout=10)
        config = config_for(discord, telegram)
        shown = [repr(dispatcher), repr(channels), repr(closed_port), repr(config), str(config),
                 config.model_dump_json(), caplog.text, *(str(value) for o in settled for value in o.row().values())]

    assert sorted((o.channel, o.delivered) for o in settled) == [
        ("discord", False), ("telegram", False), ("telegram", False)]
    assert {o.error.split(":")[0] for o in settled} == {"HTTP 400", "HTTP 502", "network error"}
    assert "HTTP Request: POST" in caplog.text and "***" in caplog.text  # httpx did log, masked
    for text in shown:
        assert RECOGNISABLE not in text and "s3cret" not in text
