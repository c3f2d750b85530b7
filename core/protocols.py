"""What changes between replay, paper and live: the Feed, the Exchange and the Clock.

The engine and the agent know only these protocols. A mode (``conf/mode/*.yaml``) builds one of
each: replay = stored parquet + the sim exchange + a clock that is the data's own; paper = bars
polled through ccxt + sim fills on them + the exchange's server time; live = the same feed and
clock + real orders through ccxt.

Bar indices are positions in the feed's ``MarketData``, which only ever grows at its end: bar
``i`` opens at ``market.ts[i]`` and closes (becomes visible) at ``market.ts[i] + timeframe_ms``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol

from core.market import MarketData
from core.records import BarEvents, EntryOrder, ExitOrder, ExitReason, Position


class Clock(Protocol):
    """What time it is (ms UTC) and waiting for it; replay's clock never waits."""

    def now(self) -> int: ...

    def wait_until(self, ts: int, stopping: Callable[[], bool]) -> bool:
        """Block until ``now() >= ts``; False when ``stopping()`` turned true first."""
        ...


class Feed(Protocol):
    """Closed bars in time order, with mark candles and funding where the market has them."""

    @property
    def live(self) -> bool:
        """False when every bar is known at start (replay); True when bars keep coming."""
        ...

    def history(self) -> MarketData:
        """The bars known at start: warm-up history first, trading from ``market.trade_from``."""
        ...

    def poll(self, market: MarketData, now: int) -> MarketData:
        """``market`` extended by every bar closed by ``now`` (never a forming candle)."""
        ...


ENTRY_HEADROOM = 0.001  # a spot entry sized to all free cash leaves this much for the next open moving


class Exchange(Protocol):
    """Where orders go and fills come from. Orders submitted after bar ``i`` closes execute in
    bar ``i + 1``; ``process_bar(i + 1)`` reports what happened then."""

    @property
    def cash(self) -> float:
        """Free cash in the quote currency (USDT)."""
        ...

    @property
    def entry_cash(self) -> float:
        """What a spot entry's notional may be so that it is affordable at the next open: free cash
        less the fee and slippage the fill pays there, and ``ENTRY_HEADROOM`` for the open moving
        from the close it was sized at."""
        ...

    @property
    def positions(self) -> Mapping[str, Position]: ...

    def pending_orders(self) -> tuple[EntryOrder | ExitOrder, ...]: ...

    def submit_entry(self, order: EntryOrder) -> None: ...

    def submit_exit(self, order: ExitOrder) -> None: ...

    def amend_protection(self, symbol: str, stop_price: float | None = None,
                         take_profit_price: float | None = None) -> None: ...

    def process_bar(self, i: int) -> BarEvents:
        """Funding, fills, stops, targets and liquidations of bar ``i``."""
        ...

    def mark_to_market(self, i: int) -> tuple[float, float, float]:
        """(equity, cash, unrealized pnl) once bar ``i`` has closed."""
        ...

    def close_all(self, i: int, reason: ExitReason) -> BarEvents:
        """Close every open position at bar ``i``'s close."""
        ...

    def extend(self, market: MarketData) -> None:
        """The feed's market grew at its end; prices of the new bars are now known."""
        ...

    def dispatch(self) -> BarEvents:
        """Send what was submitted since the last call. The engine calls it once the bar's rows
        are committed, so every order is in the ledger before the exchange hears of it; what the
        exchange answered at once (an acknowledgement, a refusal) comes back to be recorded."""
        ...
