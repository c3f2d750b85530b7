"""The ``notify`` config group: which chat channels hear an agent, and how hard delivery tries.

Secrets (the Discord webhook URL, the Telegram bot token) come only from the environment through
``${oc.env:...}`` and are held as ``SecretStr``. A channel selected without its secret is a
``ConfigError`` naming the variable to set; no error here ever quotes a secret's value.
"""

from __future__ import annotations

import copy
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from core.errors import ConfigError

DISCORD_WEBHOOK_ENV = "RATCHET_DISCORD_WEBHOOK_URL"
TELEGRAM_TOKEN_ENV = "RATCHET_TELEGRAM_BOT_TOKEN"
TELEGRAM_CHAT_ENV = "RATCHET_TELEGRAM_CHAT_ID"

ChannelName = Literal["discord", "telegram"]
Mode = Literal["replay", "paper", "live"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _http_url(value: str, what: str) -> None:
    if not (value.startswith("http://") or value.startswith("https://")):
        raise ConfigError(f"{what} must start with http:// or https://")


class DiscordConfig(_Frozen):
    """A Discord incoming webhook; builds ``DiscordChannel``."""

    webhook_url: SecretStr | None = None  # from RATCHET_DISCORD_WEBHOOK_URL
    per_minute: float = Field(default=30.0, gt=0)  # posts per minute (token bucket refill)
    burst: int = Field(default=5, ge=1)  # posts that may go at once before the rate applies


class TelegramConfig(_Frozen):
    """A Telegram bot posting to one chat through the Bot API; builds ``TelegramChannel``."""

    bot_token: SecretStr | None = None  # from RATCHET_TELEGRAM_BOT_TOKEN
    chat_id: str | None = None  # from RATCHET_TELEGRAM_CHAT_ID: a number or @channelname
    api_base: str = "https://api.telegram.org"  # a self-hosted Bot API server or a loopback test server
    per_minute: float = Field(default=20.0, gt=0)  # 1 a second per chat, 20 a minute per group
    burst: int = Field(default=1, ge=1)

    @field_validator("chat_id", mode="before")
    @classmethod
    def _chat_id_text(cls, v: Any) -> Any:
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("api_base")
    @classmethod
    def _api_base(cls, v: str) -> str:
        if not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError("api_base must start with http:// or https://")
        return v.rstrip("/")


class RetryConfig(_Frozen):
    """How long one message may keep a channel's queue busy: bounded attempts, doubling waits."""

    attempts: int = Field(default=5, ge=1, le=20)  # per message part and channel, the first try included
    backoff_s: float = Field(default=1.0, ge=0)  # after a 5xx, a timeout or a network error; doubles each time
    backoff_max_s: float = Field(default=60.0, ge=0)
    retry_after_max_s: float = Field(default=300.0, ge=0)  # a 429 asking longer than this fails the message

    def backoff(self, attempt: int) -> float:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        return min(self.backoff_s * 2 ** (attempt - 1), self.backoff_max_s)


class NotifyConfig(_Frozen):
    """Heartbeats and alerts: the channels, the heartbeat period, replay policy and delivery limits."""

    channels: tuple[ChannelName, ...] = ()
    heartbeat_hours: float = Field(default=6.0, gt=0)  # on the agent's clock, aligned to the epoch
    in_replay: bool = False  # a replay records every message but sends none unless this is true
    collapse_minutes: float = Field(default=60.0, ge=0)  # repeated alerts within it become one summary
    queue_limit: int = Field(default=1000, ge=1)  # waiting messages per channel
    timeout_s: float = Field(default=10.0, gt=0)  # per HTTP request
    retry: RetryConfig = RetryConfig()
    discord: DiscordConfig = DiscordConfig()
    telegram: TelegramConfig = TelegramConfig()

    @field_validator("channels")
    @classmethod
    def _distinct(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(v)) != len(v):
            raise ValueError("a channel is listed twice")
        return v

    @model_validator(mode="after")
    def _secrets_present(self) -> NotifyConfig:
        # Raised as ConfigError, not ValueError: pydantic would quote the whole section (secrets included).
        if "discord" in self.channels:
            url = self.discord.webhook_url
            if url is None or not url.get_secret_value():
                raise ConfigError(
                    f"notify.discord.webhook_url is not set: the discord channel needs the environment "
                    f"variable {DISCORD_WEBHOOK_ENV} (the webhook's URL)")
            _http_url(url.get_secret_value(), f"{DISCORD_WEBHOOK_ENV} (notify.discord.webhook_url)")
        if "telegram" in self.channels:
            token = self.telegram.bot_token
            if token is None or not token.get_secret_value():
                raise ConfigError(
                    f"notify.telegram.bot_token is not set: the telegram channel needs the environment "
                    f"variable {TELEGRAM_TOKEN_ENV} (the bot's token from @BotFather)")
            if not self.telegram.chat_id:
                raise ConfigError(
                    f"notify.telegram.chat_id is not set: the telegram channel needs the environment "
                    f"variable {TELEGRAM_CHAT_ENV} (the chat's numeric id or @channelname)")
        return self

    @property
    def heartbeat_ms(self) -> int:
        return int(round(self.heartbeat_hours * 3_600_000))

    @property
    def collapse_ms(self) -> int:
        return int(round(self.collapse_minutes * 60_000))

    def sends_in(self, mode: Mode) -> bool:
        """Whether messages go out in this mode (replay sends only when ``in_replay``)."""
        return mode != "replay" or self.in_replay


SECRET_KEYS: tuple[tuple[str, ...], ...] = (
    ("notify", "discord", "webhook_url"),
    ("notify", "telegram", "bot_token"),
    ("exchange", "api_key"),
    ("exchange", "api_secret"),
)
REDACTED = "**********"  # what pydantic's SecretStr shows


def without_secrets(config: dict[str, Any]) -> dict[str, Any]:
    """A copy of a plain run-config dict with its secrets (notify tokens, exchange keys) masked, for the
    ledger and reports."""
    out = copy.deepcopy(config)
    for *parents, leaf in SECRET_KEYS:
        node: Any = out
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) is not None:
            node[leaf] = REDACTED
    return out
