"""Discord and Telegram: one HTTP POST of one text, and what the reply means for a retry.

Discord incoming webhook: ``POST {webhook_url}`` with ``{"content": text}``; 204 No Content on
success; 429 with ``{"message", "retry_after": seconds, "global"}`` and ``Retry-After``.
Telegram Bot API: ``POST {api_base}/bot{token}/sendMessage`` with ``{"chat_id", "text"}``; 200 with
``{"ok": true, "result": Message}``; errors ``{"ok": false, "error_code", "description"}``, and a
429 carries ``"parameters": {"retry_after": seconds}``. Texts are limited to 2000 (Discord) and
4096 (Telegram) UTF-16 units; the dispatcher splits longer ones. Every error text is redacted.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx

from components.notify.config import DiscordConfig, NotifyConfig, TelegramConfig
from components.notify.redaction import MASK, Redactor

_DESCRIPTION_CHARS = 300  # of a server's error text kept in an outcome


@dataclass(frozen=True)
class Reply:
    """What one POST came to: sent, worth retrying (after ``retry_after`` if the server said), or not."""

    sent: bool
    retryable: bool = False
    retry_after: float | None = None  # seconds the server asked for (429)
    error: str | None = None


class Channel(ABC):
    """A chat that takes plain texts of at most ``max_length`` UTF-16 units."""

    name: ClassVar[str]
    max_length: ClassVar[int]

    def __init__(self, url: str, secrets: tuple[str, ...], per_minute: float, burst: int):
        self._url = url
        self.secrets = secrets
        self.redact = Redactor(secrets)
        self.per_minute = per_minute
        self.burst = burst

    @abstractmethod
    def payload(self, text: str) -> dict[str, Any]:
        """The JSON body that posts ``text``."""

    @abstractmethod
    def _accepted(self, response: httpx.Response, body: Any) -> bool: ...

    @abstractmethod
    def _description(self, body: Any) -> str | None: ...

    @abstractmethod
    def _retry_after(self, response: httpx.Response, body: Any) -> float | None: ...

    def post(self, client: httpx.Client, text: str) -> Reply:
        """POST one text; never raises for network trouble, and no error names a secret."""
        try:
            response = client.post(self._url, json=self.payload(text))
        except httpx.TimeoutException as exc:
            return Reply(False, retryable=True, error=self.redact(f"timeout: {type(exc).__name__}"))
        except httpx.TransportError as exc:
            return Reply(False, retryable=True, error=self.redact(f"network error: {type(exc).__name__}: {exc}"))
        return self._interpret(response)

    def _interpret(self, response: httpx.Response) -> Reply:
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if self._accepted(response, body):
            return Reply(True)
        status = response.status_code
        description = self._description(body)
        error = f"HTTP {status}" + (f": {description[:_DESCRIPTION_CHARS]}" if description else "")
        error = self.redact(error)
        if status == 429:
            return Reply(False, retryable=True, retry_after=self._retry_after(response, body), error=error)
        return Reply(False, retryable=status >= 500 or status == 408, error=error)


def _header_seconds(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["Retry-After"])
    except (KeyError, ValueError):  # absent, or an HTTP date (not sent by either API)
        return None


class DiscordChannel(Channel):
    """An incoming webhook; mentions are disabled so no text can ping @everyone."""

    name = "discord"
    max_length = 2000

    def __init__(self, webhook_url: str, per_minute: float = 30.0, burst: int = 5):
        token = urlsplit(webhook_url).path.rstrip("/").rsplit("/", 1)[-1]  # .../webhooks/{id}/{token}
        super().__init__(webhook_url, (webhook_url, token), per_minute, burst)

    @classmethod
    def from_config(cls, config: DiscordConfig) -> DiscordChannel:
        assert config.webhook_url is not None  # NotifyConfig refuses a selected channel without it
        return cls(config.webhook_url.get_secret_value(), config.per_minute, config.burst)

    def payload(self, text: str) -> dict[str, Any]:
        return {"content": text, "allowed_mentions": {"parse": []}}

    def _accepted(self, response: httpx.Response, body: Any) -> bool:
        return response.is_success  # 204, or 200 with the message when ?wait=true

    def _description(self, body: Any) -> str | None:
        if isinstance(body, dict):
            return str(body.get("message") or "") or None
        return None

    def _retry_after(self, response: httpx.Response, body: Any) -> float | None:
        header = _header_seconds(response)
        seconds = body.get("retry_after") if isinstance(body, dict) else None
        if not isinstance(seconds, int | float):
            return header
        # API v6 (the default of an unversioned webhook URL) gave milliseconds; v8+ gives seconds.
        if header is not None and seconds > 2 * header + 1:
            return seconds / 1000
        return float(seconds)

    def __repr__(self) -> str:
        parts = urlsplit(self._url)
        return f"DiscordChannel(webhook={parts.scheme}://{parts.netloc}/{MASK})"


class TelegramChannel(Channel):
    """A bot posting plain text (no parse_mode, so nothing needs escaping) to one chat."""

    name = "telegram"
    max_length = 4096

    def __init__(self, bot_token: str, chat_id: str, api_base: str = "https://api.telegram.org",
                 per_minute: float = 20.0, burst: int = 1):
        super().__init__(f"{api_base.rstrip('/')}/bot{bot_token}/sendMessage", (bot_token,), per_minute, burst)
        self.chat_id = chat_id
        self.api_base = api_base.rstrip("/")

    @classmethod
    def from_config(cls, config: TelegramConfig) -> TelegramChannel:
        assert config.bot_token is not None and config.chat_id is not None  # NotifyConfig refuses otherwise
        return cls(config.bot_token.get_secret_value(), config.chat_id, config.api_base, config.per_minute,
                   config.burst)

    def payload(self, text: str) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "text": text}

    def _accepted(self, response: httpx.Response, body: Any) -> bool:
        return response.status_code == 200 and isinstance(body, dict) and body.get("ok") is True

    def _description(self, body: Any) -> str | None:
        if isinstance(body, dict):
            return str(body.get("description") or "") or None
        return None

    def _retry_after(self, response: httpx.Response, body: Any) -> float | None:
        parameters = body.get("parameters") if isinstance(body, dict) else None
        seconds = parameters.get("retry_after") if isinstance(parameters, dict) else None
        return float(seconds) if isinstance(seconds, int | float) else _header_seconds(response)

    def __repr__(self) -> str:
        return f"TelegramChannel(api_base={self.api_base}, chat_id={self.chat_id}, token={MASK})"


def build_channels(config: NotifyConfig) -> list[Channel]:
    """The channels ``notify.channels`` selects, in its order."""
    builders = {"discord": lambda: DiscordChannel.from_config(config.discord),
                "telegram": lambda: TelegramChannel.from_config(config.telegram)}
    return [builders[name]() for name in config.channels]
