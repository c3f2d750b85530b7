"""Heartbeats and alerts on Discord and Telegram, recorded as ``notifications`` ledger rows.

    notifier = Dispatcher.from_config(cfg.notify, mode="paper")
    schedule = HeartbeatSchedule(cfg.notify.heartbeat_ms)
    each step:  if schedule.due(now): notifier.submit(Heartbeat(...))
                alert = alert_for_transition(row, state_tags) or alert_for_adjustment(row)
                if alert: notifier.submit(alert)
                notifier.tick(now); rows = [o.row() for o in notifier.drain()]
    at the end: rows = [o.row() for o in notifier.close(timeout=10)]
"""

from components.notify.channels import Channel, DiscordChannel, TelegramChannel, build_channels
from components.notify.config import (
    DISCORD_WEBHOOK_ENV,
    TELEGRAM_CHAT_ENV,
    TELEGRAM_TOKEN_ENV,
    DiscordConfig,
    NotifyConfig,
    RetryConfig,
    TelegramConfig,
    without_secrets,
)
from components.notify.dispatcher import (
    CLOSED,
    COLLAPSED,
    LEDGER_CHANNEL,
    NOT_SENT_IN_REPLAY,
    Dispatcher,
    Outcome,
)
from components.notify.messages import (
    BREAKER_TAG,
    HALT_TAG,
    Alert,
    Heartbeat,
    LearningAdjustment,
    Message,
    MessageKind,
    OpenPosition,
    alert_for_adjustment,
    alert_for_transition,
)
from components.notify.schedule import HeartbeatSchedule

__all__ = [
    "BREAKER_TAG", "CLOSED", "COLLAPSED", "DISCORD_WEBHOOK_ENV", "HALT_TAG", "LEDGER_CHANNEL",
    "NOT_SENT_IN_REPLAY", "TELEGRAM_CHAT_ENV", "TELEGRAM_TOKEN_ENV", "Alert", "Channel", "DiscordChannel",
    "DiscordConfig", "Dispatcher", "Heartbeat", "HeartbeatSchedule", "LearningAdjustment", "Message",
    "MessageKind", "NotifyConfig", "OpenPosition", "Outcome", "RetryConfig", "TelegramChannel", "TelegramConfig",
    "alert_for_adjustment", "alert_for_transition", "build_channels", "without_secrets",
]
