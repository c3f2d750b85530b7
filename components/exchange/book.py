"""The agent's view of a live account: cash and open positions, booked from what the exchange filled.

Fills come from the exchange (its prices, quantities and fees); the book turns them into the records
the ledger keeps, with the sim exchange's accounting (``sim.py``): a USDT-M entry moves
``qty * price / leverage`` from cash into the position's isolated wallet and pays its fee from cash;
funding goes into the isolated wallet; an exit returns the share of the wallet it closes plus its pnl,
less its fee. Spot pays for what it buys, and Binance takes a spot buyer's fee in the asset bought, so
the position holds that much less. A position closed in several parts becomes one closed trade when
its last part fills. Reconciliation corrects the book to the exchange, which is the truth.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from core.records import BarEvents, ClosedTrade, EntryOrder, ExitReason, Fill, FundingPayment, Position

_EXIT_SUMS = ("exit_qty", "exit_value", "exit_fees", "realized")


class LiveBook:
    """Cash and positions as the agent sees them; every change is booked into a ``BarEvents``."""

    def __init__(self, futures: bool, cash: float, *, is_dust: Callable[[str, float], bool]) -> None:
        self.futures = futures
        self.cash = cash
        self.positions: dict[str, Position] = {}
        self._is_dust = is_dust  # below one lot: nothing left to sell

    def open(self, order: EntryOrder, leverage: float, qty: float, price: float, fee: float, fee_in_base: float,
             ts: int, stop: float | None, take_profit: float | None, events: BarEvents) -> Position:
        """An entry filled (or filled more): the position opens, or grows. ``fee`` is in USDT, of which
        ``fee_in_base`` (in the asset bought) was taken from what was bought."""
        margin = qty * price / leverage if self.futures else 0.0
        held = qty - fee_in_base
        pos = self.positions.get(order.symbol)
        if pos is None:
            pos = Position(trade_id=order.order_id, symbol=order.symbol, side=order.side, qty=held, entry_price=price,
                           entry_ts=ts, leverage=leverage, isolated_margin=margin, stop_price=stop,
                           take_profit_price=take_profit, mode=order.mode, state=order.state,
                           risk_fraction=order.risk_fraction, fees=fee,
                           extra={"initial_margin": margin} | dict.fromkeys(_EXIT_SUMS, 0.0))
            self.positions[order.symbol] = pos
        else:
            pos.entry_price = (pos.entry_price * pos.qty + price * held) / (pos.qty + held)
            pos.qty += held
            pos.isolated_margin += margin
            pos.fees += fee
            pos.extra["initial_margin"] += margin
        # spot: the part of the fee taken in the asset bought is not paid from cash
        self.cash -= margin + fee if self.futures else qty * price + fee - fee_in_base * price
        events.fills.append(Fill(ts, order.order_id, pos.trade_id, order.symbol, order.side, qty, price, fee,
                                 order.reason))
        return pos

    def adopt(self, symbol: str, trade_id: str, side: int, qty: float, price: float, wallet: float, leverage: float,
              ts: int, events: BarEvents) -> Position:
        """A position the exchange holds that the agent did not open (a manual trade): from now on it is the agent's."""
        pos = Position(trade_id=trade_id, symbol=symbol, side=side, qty=qty, entry_price=price, entry_ts=ts,
                       leverage=leverage, isolated_margin=wallet, stop_price=None, take_profit_price=None,
                       mode="normal", state="reconciled", risk_fraction=0.0,
                       extra={"initial_margin": wallet} | dict.fromkeys(_EXIT_SUMS, 0.0))
        self.positions[symbol] = pos
        events.fills.append(Fill(ts, trade_id, trade_id, symbol, side, qty, price, 0.0, ExitReason.RECONCILED.value))
        return pos

    def grow(self, pos: Position, qty: float, price: float, wallet: float, ts: int, events: BarEvents) -> None:
        """The exchange shows more than the agent holds: what was added outside it joins the position."""
        pos.entry_price = (pos.entry_price * pos.qty + price * qty) / (pos.qty + qty)
        pos.qty += qty
        pos.isolated_margin = wallet
        events.fills.append(Fill(ts, f"{pos.trade_id}:{ExitReason.RECONCILED.value}", pos.trade_id, pos.symbol,
                                 pos.side, qty, price, 0.0, ExitReason.RECONCILED.value))

    def close(self, pos: Position, qty: float, price: float, fee: float, ts: int, order_id: str, reason: ExitReason,
              events: BarEvents) -> bool:
        """An exit filled (in part); True when the position is closed by it."""
        qty = min(qty, pos.qty)
        pnl = pos.side * qty * (price - pos.entry_price)
        if self.futures:
            released = pos.isolated_margin * qty / pos.qty if pos.qty else 0.0
            self.cash += released + pnl - fee
            pos.isolated_margin -= released
        else:
            self.cash += qty * price - fee
        sums = pos.extra
        sums["exit_qty"] += qty
        sums["exit_value"] += qty * price
        sums["exit_fees"] += fee
        sums["realized"] += pnl
        pos.qty -= qty
        events.fills.append(Fill(ts, order_id, pos.trade_id, pos.symbol, -pos.side, qty, price, fee, reason.value))
        if pos.qty > 1e-12 and not self._is_dust(pos.symbol, pos.qty):
            return False
        del self.positions[pos.symbol]
        exit_qty = sums["exit_qty"]
        fees = pos.fees + sums["exit_fees"]
        events.closed.append(ClosedTrade(
            trade_id=pos.trade_id, symbol=pos.symbol, side=pos.side, entry_ts=pos.entry_ts, exit_ts=ts,
            entry_price=pos.entry_price, exit_price=sums["exit_value"] / exit_qty, qty=exit_qty,
            leverage=pos.leverage, fees=fees, funding=pos.funding, pnl=sums["realized"] + pos.funding - fees,
            mode=pos.mode, state=pos.state, exit_reason=reason, risk_fraction=pos.risk_fraction))
        return True

    def fund(self, pos: Position, ts: int, rate: float, mark: float, amount: float, events: BarEvents) -> None:
        """A funding settlement, into the isolated wallet."""
        pos.funding += amount
        pos.isolated_margin += amount
        events.funding.append(FundingPayment(ts, pos.trade_id, pos.symbol, rate, mark, pos.side * pos.qty, amount))

    # -- the journal ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"cash": self.cash, "positions": [asdict(p) for p in self.positions.values()]}

    def restore(self, state: dict[str, Any]) -> None:
        self.cash = float(state["cash"])
        self.positions = {p["symbol"]: Position(**p) for p in state["positions"]}
