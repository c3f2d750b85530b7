"""Reconciliation: the agent's view against the exchange's, the exchange being the truth.

Every difference is corrected in the book and reported as a ``Reconciliation`` with both sides:

    position the agent holds, gone on the exchange   closed: a liquidation (the exchange's ``autoclose-``
                                                      order) or a trade made outside the agent, at the
                                                      exchange's trades
    position on the exchange the agent does not hold adopted: from now on the agent manages it
    a different size                                  resized, at the exchange's size and entry
    a different balance (beyond the tolerance)        corrected: transfers, fees the agent did not book
    an open order of this run the agent has lost      cancelled (a stale protective order)
    an open order placed outside the agent            left alone, reported once
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.exchange.account import BinanceAccount, ExchangePosition, OrderState
from components.exchange.book import LiveBook
from components.exchange.client_ids import is_ours
from core.records import BarEvents, ExitReason, Position, Reconciliation


def _side_of(amt: float) -> int:
    return 1 if amt > 0 else -1


def _view(pos: Position) -> dict:
    return {"trade_id": pos.trade_id, "side": pos.side, "qty": pos.qty, "entry_price": pos.entry_price}


@dataclass
class Reconciler:
    """Compares a ``LiveBook`` with the account behind it and corrects the book."""

    account: BinanceAccount
    book: LiveBook
    run_id: str
    symbols: tuple[str, ...]  # what the run trades; positions elsewhere are reported, never adopted
    balance_tolerance: float
    seen_foreign: set[str] = field(default_factory=set)
    _origins: dict[str, dict] = field(default_factory=dict)  # exchange order id -> its raw order

    # -- positions (USDT-M) ------------------------------------------------------------------------
    def positions(self, theirs: dict[str, ExchangePosition], now: int, events: BarEvents,
                  lot: dict[str, float]) -> None:
        book = self.book
        for symbol in sorted(set(book.positions) | set(theirs)):
            ours, their = book.positions.get(symbol), theirs.get(symbol)
            if symbol not in self.symbols:
                if their is not None and f"position:{symbol}" not in self.seen_foreign:
                    self.seen_foreign.add(f"position:{symbol}")
                    self.report(events, now, symbol, "position", None, {"qty": their.amt, "entry": their.entry},
                                 "left_alone", "a position in a symbol this run does not trade")
                continue
            tolerance = lot.get(symbol, 0.0) / 2
            if ours is not None and their is None:
                self._closed_outside(ours, now, events)
            elif ours is None and their is not None:
                self._adopt(their, now, events)
            elif ours is not None and their is not None:
                if _side_of(their.amt) != ours.side:
                    self._closed_outside(ours, now, events)
                    self._adopt(their, now, events)
                elif abs(abs(their.amt) - ours.qty) > tolerance:
                    self._resize(ours, their, now, events)
                ours.isolated_margin = their.isolated_wallet
                ours.liquidation_price = their.liquidation

    def _closed_outside(self, pos: Position, now: int, events: BarEvents) -> None:
        closing = [t for t in self.account.trades_since(pos.symbol, pos.entry_ts)
                   if t.side == -pos.side and not self._ours(pos.symbol, t.order_id)]
        reason, price, fee, ts = ExitReason.RECONCILED, None, 0.0, now
        order_id = f"{pos.trade_id}:{ExitReason.RECONCILED.value}"
        if closing:
            qty = sum(t.qty for t in closing)
            price = sum(t.qty * t.price for t in closing) / qty
            fee, ts = sum(t.fee for t in closing), max(t.ts for t in closing)
            if self._liquidation(pos.symbol, closing[-1].order_id):
                reason, order_id = ExitReason.LIQUIDATION, f"{pos.trade_id}:{ExitReason.LIQUIDATION.value}"
                fee += self._clearance(pos.symbol, pos.entry_ts)
        theirs = {"qty": 0.0, "closing_trades": [{"order_id": t.order_id, "qty": t.qty, "price": t.price}
                                                 for t in closing]}
        ours = _view(pos)
        if price is None:  # no trade explains it: book it at the entry, flat, so nothing is invented
            price = pos.entry_price
        self.book.close(pos, pos.qty, price, fee, ts, order_id, reason, events)
        why = ("liquidated by the exchange" if reason is ExitReason.LIQUIDATION
               else "closed on the exchange outside the agent")
        self.report(events, now, pos.symbol, "position", ours, theirs, "closed", why)

    def _adopt(self, their: ExchangePosition, now: int, events: BarEvents) -> None:
        trade_id = f"adopted-{their.symbol.split('/')[0]}-{now}"
        pos = self.book.adopt(their.symbol, trade_id, _side_of(their.amt), abs(their.amt), their.entry,
                              their.isolated_wallet, 1.0, now, events)
        self.report(events, now, their.symbol, "position", None, {"qty": their.amt, "entry": their.entry},
                     "adopted", f"a position opened outside the agent; managed from now on as {pos.trade_id}")

    def _resize(self, pos: Position, their: ExchangePosition, now: int, events: BarEvents) -> None:
        ours = _view(pos)
        size = abs(their.amt)
        if size < pos.qty:
            trades = [t for t in self.account.trades_since(pos.symbol, pos.entry_ts)
                      if t.side == -pos.side and not self._ours(pos.symbol, t.order_id)]
            qty = pos.qty - size
            price = (sum(t.qty * t.price for t in trades) / sum(t.qty for t in trades)) if trades else pos.entry_price
            fee = sum(t.fee for t in trades)
            self.book.close(pos, qty, price, fee, now, f"{pos.trade_id}:{ExitReason.RECONCILED.value}",
                            ExitReason.RECONCILED, events)
        else:
            added = size - pos.qty
            price = (their.entry * size - pos.entry_price * pos.qty) / added
            self.book.grow(pos, added, price, their.isolated_wallet, now, events)
        self.report(events, now, pos.symbol, "position", ours, {"qty": their.amt, "entry": their.entry}, "resized",
                     "the exchange holds a different size: traded outside the agent")

    # -- spot holdings -------------------------------------------------------------------------------
    def holdings(self, held: dict[str, float], now: int, events: BarEvents, lot: dict[str, float]) -> None:
        """Spot: the exchange must hold at least each position's quantity of its asset (it may hold more:
        what the account held before is not the agent's)."""
        for symbol, pos in sorted(self.book.positions.items()):
            asset = symbol.split("/")[0]
            have = held.get(asset, 0.0)
            if have >= pos.qty - lot.get(symbol, 0.0) / 2:
                continue
            ours = _view(pos)
            if have < lot.get(symbol, 0.0):
                self._closed_outside(pos, now, events)
                continue
            self.book.close(pos, pos.qty - have, pos.entry_price, 0.0, now,
                            f"{pos.trade_id}:{ExitReason.RECONCILED.value}", ExitReason.RECONCILED, events)
            self.report(events, now, symbol, "position", ours, {"qty": have}, "resized",
                         f"the account holds less {asset} than the position: sold outside the agent")

    # -- balance, orders -------------------------------------------------------------------------------
    def balance(self, cash: float, now: int, events: BarEvents) -> None:
        if abs(cash - self.book.cash) <= self.balance_tolerance:
            self.book.cash = cash
            return
        self.report(events, now, None, "balance", {"cash": self.book.cash}, {"cash": cash}, "corrected",
                     "the exchange's balance differs from the agent's: a transfer, or a cost the agent did not book")
        self.book.cash = cash

    def orders(self, open_orders: list[OrderState], known: set[str], now: int, events: BarEvents) -> None:
        for order in open_orders:
            view = {"client_id": order.client_id, "exchange_id": order.exchange_id, "side": order.side,
                    "qty": order.amount, "trigger_price": order.trigger_price}
            if is_ours(self.run_id, order.client_id):
                if order.client_id in known:
                    continue
                conditional = order.trigger_price is not None and self.account.futures
                self.account.cancel(order.symbol, order.client_id, conditional=conditional)
                self.report(events, now, order.symbol, "order", None, view, "cancelled",
                             "an open order of this run the agent no longer knows (left by a crash)")
            elif f"order:{order.exchange_id}" not in self.seen_foreign:
                self.seen_foreign.add(f"order:{order.exchange_id}")
                self.report(events, now, order.symbol, "order", None, view, "left_alone",
                             "an open order placed outside the agent")

    # -- helpers -------------------------------------------------------------------------------------
    def _origin(self, symbol: str, order_id: str) -> dict:
        if order_id not in self._origins:
            self._origins[order_id] = self.account.order_by_id(symbol, order_id)
        return self._origins[order_id]

    def _ours(self, symbol: str, order_id: str) -> bool:
        return is_ours(self.run_id, str(self._origin(symbol, order_id).get("clientOrderId", "")))

    def _liquidation(self, symbol: str, order_id: str) -> bool:
        origin = self._origin(symbol, order_id)
        return origin.get("type") == "LIQUIDATION" or str(origin.get("clientOrderId", "")).startswith("autoclose-")

    def _clearance(self, symbol: str, since: int) -> float:
        """What the liquidation cleared from the isolated wallet (Binance's INSURANCE_CLEAR), as a fee."""
        if not self.account.futures:
            return 0.0
        return -sum(amount for s, _, amount in self.account.income("INSURANCE_CLEAR", since) if s == symbol)

    def report(self, events: BarEvents, now: int, symbol: str | None, item: str, ours: dict | None,
                theirs: dict | None, action: str, reason: str) -> None:
        events.reconciliations.append(Reconciliation(now, symbol, item, ours, theirs, action, reason))

