"""Plain records that cross the boundary between agents, exchanges and the ledger.

Sides: ``side = +1`` is long (buy to open), ``side = -1`` is short (sell to open).
Timestamps are int milliseconds since the Unix epoch, UTC. Quantities are base units.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class ExitReason(StrEnum):
    SIGNAL = "signal"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    LIQUIDATION = "liquidation"
    BREAKER = "breaker"
    END_OF_DATA = "end_of_data"


@dataclass(frozen=True, slots=True)
class EntryOrder:
    """Open a position with a market order at the next bar's open."""

    order_id: str
    symbol: str
    side: int
    qty: float
    leverage: float  # 1.0 for spot
    stop_price: float | None
    take_profit_price: float | None
    mode: str  # normal | window | epsilon | explore
    state: str  # machine state that produced the order
    reason: str
    risk_fraction: float
    # Spot only: when set, qty is ignored and the fill spends this fraction of free cash
    # (fees included) at the fill price, as all-in baselines in other backtesters do.
    cash_fraction: float | None = None


@dataclass(frozen=True, slots=True)
class ExitOrder:
    """Close a whole open position with a market order at the next bar's open."""

    order_id: str
    symbol: str
    reason: ExitReason


@dataclass(slots=True)
class Position:
    """An open position; mutable only inside the exchange that owns it."""

    trade_id: str
    symbol: str
    side: int
    qty: float
    entry_price: float
    entry_ts: int
    leverage: float
    isolated_margin: float  # 0.0 for spot
    stop_price: float | None
    take_profit_price: float | None
    mode: str
    state: str
    risk_fraction: float
    fees: float = 0.0
    funding: float = 0.0  # cash flow to the account so far: negative = paid
    liquidation_price: float | None = None
    extra: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Fill:
    ts: int
    order_id: str
    trade_id: str
    symbol: str
    side: int  # +1 buy, -1 sell
    qty: float
    price: float
    fee: float
    reason: str


@dataclass(frozen=True, slots=True)
class ClosedTrade:
    """A round trip. ``pnl`` is net of fees and funding."""

    trade_id: str
    symbol: str
    side: int
    entry_ts: int
    exit_ts: int
    entry_price: float
    exit_price: float
    qty: float
    leverage: float
    fees: float
    funding: float
    pnl: float
    mode: str
    state: str
    exit_reason: ExitReason
    risk_fraction: float


@dataclass(frozen=True, slots=True)
class FundingPayment:
    ts: int
    trade_id: str
    symbol: str
    rate: float
    mark_price: float
    position_qty: float  # signed: + long, - short
    amount: float  # cash flow to the account: negative = paid


@dataclass(slots=True)
class BarEvents:
    """What happened on the exchange during one bar."""

    fills: list[Fill] = field(default_factory=list)
    closed: list[ClosedTrade] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (order_id, why)

    def __bool__(self) -> bool:
        return bool(self.fills or self.closed or self.funding or self.rejected)
