"""How Ratchet reaches Binance through ccxt: the connection part of the ``exchange`` config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ConnectionConfig(BaseModel):
    """Where ccxt sends requests. ``base_url`` wins over ``testnet``: tests point it at loopback."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str | None = None  # scheme://host[:port] replacing every ccxt API URL's
    testnet: bool = False
    timeout_ms: int = Field(default=10_000, ge=100, le=300_000)

    @field_validator("base_url")
    @classmethod
    def _scheme_and_host(cls, v: str | None) -> str | None:
        if v is not None and not (v.startswith("http://") or v.startswith("https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {v!r}")
        return v.rstrip("/") if v is not None else None
