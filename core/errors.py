"""Ratchet's exceptions, tiered by who must act.

    RatchetError            anything Ratchet raises on purpose
    ├── ConfigError         a user's config or override is invalid (named key, value, allowed)
    ├── DataError           a market data file is missing, corrupt or inconsistent (named file)
    ├── ExchangeError       an exchange reply or order is unusable
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


class LedgerError(RatchetError):
    """The ledger cannot be opened, migrated or written."""


class ComponentError(RatchetError):
    """A component failed while deciding on a bar."""
