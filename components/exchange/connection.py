"""How Ratchet reaches Binance through ccxt: the connection part of the ``exchange`` config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


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
