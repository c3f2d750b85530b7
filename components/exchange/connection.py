"""How Ratchet reaches Binance through ccxt: the connection part of the ``exchange`` config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

API_KEY_ENV = "BINANCE_API_KEY"
API_SECRET_ENV = "BINANCE_API_SECRET"


class ConnectionConfig(BaseModel):
    """Where ccxt sends requests and how hard it tries. ``base_url`` wins over ``testnet``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None  # scheme://host[:port][/prefix] replacing every ccxt API URL's
    testnet: bool = False
    timeout_ms: int = Field(default=10_000, ge=100, le=300_000)  # per HTTP request
    rate_limit_ms: float | None = Field(default=None, gt=0)  # ms per request weight; None = ccxt's own (50)
    retries: int = Field(default=5, ge=0, le=50)  # extra tries after a network error, timeout, 5xx, 429 or 418
    backoff_ms: int = Field(default=500, ge=1)  # first wait before a retry; doubles on each try
    max_backoff_ms: int = Field(default=60_000, ge=1)  # longest wait; a longer Retry-After gives up instead
    # live orders only: from the environment (BINANCE_API_KEY, BINANCE_API_SECRET), never shown
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None

    @field_validator("base_url")
    @classmethod
    def _scheme_and_host(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/") if v is not None else None

    @model_validator(mode="after")
    def _backoff_fits(self) -> ConnectionConfig:
        if self.backoff_ms > self.max_backoff_ms:
            raise ValueError(f"backoff_ms ({self.backoff_ms}) exceeds max_backoff_ms ({self.max_backoff_ms})")
        return self


def api_keys_missing(connection: ConnectionConfig) -> list[str]:
    """The environment variables live trading still needs (empty when both keys are set)."""
    given = {API_KEY_ENV: connection.api_key, API_SECRET_ENV: connection.api_secret}
    return [name for name, value in given.items() if value is None or not value.get_secret_value().strip()]
