"""Ratchet's exceptions, tiered by who must act.

    RatchetError            anything Ratchet raises on purpose
    ├── ConfigError         a user's config or override is invalid (named key, value, allowed)
    ├── DataError           a market data file is missing, corrupt or inconsistent (named file)
    ├── ExchangeError       an exchange reply or order is unusable
    │   ├── ExchangeUnavailable   network error, timeout or 5xx: retryable
    │   │   └── RateLimited       429/418: retry after the exchange's Retry-After
    │   ├── ExchangeRejected      the exchange refused the request (unknown symbol, bad order)
    │   └── AuthenticationFailed  missing, wrong or unauthorised API keys
    ├── LedgerError         the ledger cannot be opened, migrated or written
    └── ComponentError      a component failed while deciding; the agent falls back, the run goes on

User errors (Config, Data) are printed as one clear message by the CLI, without a traceback.
"""


class RatchetError(Exception):
    """Base class for errors Ratchet raises on purpose."""


class ConfigError(RatchetError):
    """The composed configuration is invalid."""


class DataError(RatchetError):
    """Market data is missing, corrupt or inconsistent."""


class ExchangeError(RatchetError):
    """An exchange reply or order cannot be used."""


class ExchangeUnavailable(ExchangeError):
    """The exchange did not answer usefully (network, timeout, 5xx): the same request may succeed later."""


class RateLimited(ExchangeUnavailable):
    """The exchange asked us to slow down (HTTP 429, or 418 once banned); wait ``retry_after_s`` if given."""

    def __init__(self, message: str, retry_after_s: float | None = None):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ExchangeRejected(ExchangeError):
    """The exchange understood the request and refused it; repeating it will not help."""


class AuthenticationFailed(ExchangeError):
    """API keys are missing, wrong, expired or lack the permission the request needs."""


class LedgerError(RatchetError):
    """The ledger cannot be opened, migrated or written."""


class ComponentError(RatchetError):
    """A component failed while deciding on a bar."""
