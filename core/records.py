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
    OPERATOR = "operator"  # ratchet-control RUN flatten
    RECONCILED = "reconciled"  # closed on the exchange outside the agent (a manual trade), found by reconciliation


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


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """What became of an order on a live exchange: sent, filled (in part), cancelled, refused, found again.

    ``order_id`` is the ledger's order id, or for a protective order the trade it guards.
    """

    ts: int
    order_id: str
    client_order_id: str
    symbol: str
    kind: str  # entry | exit | stop_loss | take_profit
    status: str  # see ORDER_STATUSES
    side: int  # +1 buy, -1 sell
    qty: float
    filled_qty: float
    price: float | None  # average fill price; a protective order's trigger price
    exchange_order_id: str | None
    reason: str


ORDER_KINDS = ("entry", "exit", "stop_loss", "take_profit")
ORDER_STATUSES = ("sent", "partially_filled", "filled", "canceled", "expired", "rejected", "not_sent", "found",
                  "unknown")


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """One difference between the agent's view and the exchange's, and what was done: the exchange is the truth."""

    ts: int
    symbol: str | None  # None for the account's balance
    item: str  # position | order | balance
    ours: dict | None
    exchange: dict | None
    action: str  # see RECONCILE_ACTIONS
    reason: str


RECONCILE_ITEMS = ("position", "order", "balance")
RECONCILE_ACTIONS = ("adopted", "closed", "resized", "corrected", "cancelled", "protected", "left_alone")


@dataclass(slots=True)
class BarEvents:
    """What happened on the exchange during one bar."""

    fills: list[Fill] = field(default_factory=list)
    closed: list[ClosedTrade] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (order_id, why)
    # a live exchange's answers besides these (empty elsewhere):
    order_updates: list[OrderUpdate] = field(default_factory=list)
    reconciliations: list[Reconciliation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # exchange replies it could not use; retried later
    halt: str | None = None  # the exchange refused the API keys: the agent halts, saying why
    # what a resumed run's fast-forward must be answered again for this reply (live only, see LiveExchange.resume)
    journal: dict | None = None

    def __bool__(self) -> bool:
        return bool(self.fills or self.closed or self.funding or self.rejected or self.order_updates
                    or self.reconciliations or self.errors or self.halt or self.journal)
