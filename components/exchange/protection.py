"""Protection on the exchange: every position's stop (and target) stands on Binance, so a process that
dies leaves it protected.

USDT-M: reduce-only STOP_MARKET / TAKE_PROFIT_MARKET conditional orders; when the agent moves a level
the new order is placed before the old one is cancelled, so the position is never unguarded. Spot: one
STOP_LOSS_LIMIT sell (Binance locks what it sells, so a position has one protective order; its target
is watched at bar closes by the exchange adapter). A protective order's client id carries the trade
and a version that grows with each replacement (``client_ids.py``). A level already passed when the
order is placed (Binance: "would immediately trigger") closes the position at market instead. Fills
of these orders are exits booked like any other; an order that left Binance without filling is
placed again, and reported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from components.exchange.account import WOULD_TRIGGER, BinanceAccount, OrderState, binance_code, binance_message
from components.exchange.book import LiveBook
from components.exchange.client_ids import parse_protection, protection_id
from components.exchange.reconcile import Reconciler
from components.exchange.rules import ExchangeRules
from core.errors import ExchangeRejected, ExchangeUnavailable
from core.records import BarEvents, ExitOrder, ExitReason, OrderUpdate, Position

FINAL_STATUS = {"closed": "filled", "canceled": "canceled", "expired": "expired", "rejected": "rejected"}


@dataclass
class Guard:
    """A protective order on the exchange, guarding trade ``trade_id``."""

    trade_id: str
    client_id: str
    price: float
    qty: float
    filled: float = 0.0


class Protection:
    """The protective orders of a live account, kept where the book says each position's levels are."""

    def __init__(self, account: BinanceAccount, rules: ExchangeRules, book: LiveBook, reconciler: Reconciler, *,
                 run_id: str, working_type: str, stop_limit_gap: float, now: Callable[[], int],
                 close_at_market: Callable[[ExitOrder, BarEvents], None]) -> None:
        self.account, self.rules, self.book, self.reconciler = account, rules, book, reconciler
        self.run_id, self.working_type, self.stop_limit_gap = run_id, working_type, stop_limit_gap
        self._futures = account.futures
        self._now = now
        self._close_at_market = close_at_market
        self.guards: dict[str, dict[str, Guard]] = {}
        self.versions: dict[str, int] = {}  # trade id -> protective orders placed so far
        self.dirty: set[str] = set()  # symbols whose protection must be placed or moved at the next dispatch

    def wanted(self, pos: Position) -> dict[str, float | None]:
        """The levels that must stand on the exchange for ``pos``."""
        return {"stop_loss": pos.stop_price, "take_profit": pos.take_profit_price if self._futures else None}

    def known(self) -> set[str]:
        return {g.client_id for guards in self.guards.values() for g in guards.values()}

    def protect(self, symbol: str, events: BarEvents) -> None:
        """Place or move the position's stop (and target) to where the book says they are."""
        pos = self.book.positions.get(symbol)
        if pos is None:
            self.retire(symbol, events)
            self.dirty.discard(symbol)
            return
        qty = self.rules.qty(symbol, pos.qty)
        guards = self.guards.setdefault(symbol, {})
        for kind, level in self.wanted(pos).items():
            current = guards.get(kind)
            if level is None or qty == 0.0:
                if current is not None:
                    self._cancel_kind(symbol, kind, events)
                continue
            if current is not None and current.price == level and math.isclose(current.qty, qty):
                continue
            if current is not None and not self._futures:
                self._cancel_kind(symbol, kind, events)
            if not self._place(pos, kind, level, qty, events):
                return  # closed at market instead: the level was already passed
            if current is not None and self._futures:  # the new one stands before the old one goes
                self._cancel(symbol, current, kind, events)
        self.dirty.discard(symbol)

    def _place(self, pos: Position, kind: str, level: float, qty: float, events: BarEvents) -> bool:
        symbol = pos.symbol
        version = self.versions.get(pos.trade_id, 0) + 1
        self.versions[pos.trade_id] = version
        client_id = protection_id(self.run_id, pos.trade_id, kind, version)
        limit = None if self._futures else self.rules.price(symbol, level * (1 - pos.side * self.stop_limit_gap))
        guard = Guard(pos.trade_id, client_id, level, qty)
        try:
            state = self.account.place_protection(symbol, -pos.side, qty, level, client_id, kind,
                                                  working_type=self.working_type, limit=limit)
            if state.final:  # the id was taken by an order no longer standing (a crash): the next version
                return self._place(pos, kind, level, qty, events)
        except ExchangeRejected as exc:
            if binance_code(exc) == WOULD_TRIGGER or "trigger immediately" in binance_message(exc):
                self._close_at_market(ExitOrder(f"{pos.trade_id}:{kind}", symbol, ExitReason(kind)), events)
                return False
            raise
        except ExchangeUnavailable as exc:  # its fate is checked at the next bar, by its client id
            self.guards[symbol][kind] = guard
            self._update(events, symbol, kind, guard, -pos.side, "unknown", f"no answer ({exc})")
            return True
        self.guards[symbol][kind] = guard
        self._update(events, symbol, kind, guard, -pos.side, "sent", "", state.exchange_id)
        return True

    def _cancel_kind(self, symbol: str, kind: str, events: BarEvents) -> None:
        guard = self.guards.get(symbol, {}).pop(kind, None)
        if guard is not None:
            self._cancel(symbol, guard, kind, events)

    def _cancel(self, symbol: str, guard: Guard, kind: str, events: BarEvents) -> None:
        """Cancel a protective order; one Binance no longer holds open is left to reconciliation."""
        try:
            cancelled = self.account.cancel(symbol, guard.client_id, conditional=self._futures)
        except ExchangeUnavailable as exc:
            events.errors.append(f"cancelling {guard.client_id}: {exc}; reconciliation cancels it later")
            return
        self._update(events, symbol, kind, guard, 0, "canceled" if cancelled else "expired", "")

    def retire(self, symbol: str, events: BarEvents) -> None:
        """The position is closed (or being sold): its protective orders go."""
        for kind in list(self.guards.get(symbol, {})):
            self._cancel_kind(symbol, kind, events)
        self.guards.pop(symbol, None)

    def poll(self, events: BarEvents) -> None:
        """Stops and targets that triggered are exits; ones that vanished are placed again."""
        watched = sorted(s for s, g in self.guards.items() if g)
        if not watched:
            return
        standing = {o.client_id: o for o in self.account.open_orders(watched)}
        for symbol in watched:
            for kind, guard in list(self.guards[symbol].items()):
                state = standing.get(guard.client_id)
                if state is None:
                    state = self.account.order(symbol, guard.client_id, conditional=self._futures)
                if state.status == "open" and state.filled <= guard.filled + 1e-12:
                    continue
                self._result(symbol, kind, guard, state, events)

    def _result(self, symbol: str, kind: str, guard: Guard, state: OrderState, events: BarEvents) -> None:
        pos = self.book.positions.get(symbol)
        filled_by = state.triggered_order_id if self._futures else state.exchange_id
        done = self.account.execution(symbol, filled_by) if filled_by and state.status in ("open", "closed") else None
        if state.status != "open":
            self.guards[symbol].pop(kind, None)
        if done is not None and pos is not None and done.qty > guard.filled + 1e-12:
            qty, price = done.qty - guard.filled, done.price
            fee = done.fee * qty / done.qty
            guard.filled = done.qty
            self._update(events, symbol, kind, guard, -pos.side,
                         "filled" if state.status != "open" else "partially_filled", "", filled_by, price)
            if self.book.close(pos, qty, price, fee, done.ts, f"{guard.trade_id}:{kind}", ExitReason(kind), events):
                self.retire(symbol, events)
            else:
                self.dirty.add(symbol)
            return
        if state.status == "open":
            return
        self._update(events, symbol, kind, guard, 0, FINAL_STATUS.get(state.status, "expired"),
                     "the protective order left Binance without filling")
        if pos is not None:
            self.dirty.add(symbol)
            self.reconciler.report(events, self._now(), symbol, "order",
                                   {"client_id": guard.client_id, "price": guard.price, "kind": kind},
                                   {"status": state.status}, "protected",
                                   "the position's protective order is gone from Binance; placed again")

    def adopt(self, standing: list[OrderState]) -> None:
        """A protective order of this run that stands for a position the book holds, placed by a process that
        stopped before recording it, guards that position: it is kept, not cancelled and placed again."""
        trades = {pos.trade_id: pos for pos in self.book.positions.values()}
        for order in standing:
            parsed = parse_protection(self.run_id, order.client_id)
            if parsed is None or parsed[0] not in trades or order.trigger_price is None:
                continue
            trade_id, kind, version = parsed
            guards = self.guards.setdefault(trades[trade_id].symbol, {})
            if kind not in guards:
                guards[kind] = Guard(trade_id, order.client_id, order.trigger_price, order.amount)
                self.versions[trade_id] = max(self.versions.get(trade_id, 0), version)

    def follow(self, events: BarEvents) -> None:
        """After reconciliation: a closed position's orders go, a resized one's follow its size."""
        for symbol in list(self.guards):
            pos = self.book.positions.get(symbol)
            if pos is None:
                self.retire(symbol, events)
            elif any(not math.isclose(g.qty, self.rules.qty(symbol, pos.qty)) for g in self.guards[symbol].values()):
                self.dirty.add(symbol)

    def check(self, events: BarEvents) -> None:
        """Every position has its protective orders; what lacks one is protected at the next dispatch, and reported."""
        for symbol, pos in self.book.positions.items():
            wanted = self.wanted(pos)
            missing = [k for k, level in wanted.items() if level is not None and k not in self.guards.get(symbol, {})]
            if missing and symbol not in self.dirty:
                self.dirty.add(symbol)
                self.reconciler.report(events, self._now(), symbol, "order", {k: wanted[k] for k in missing}, None,
                                       "protected", f"no {' or '.join(missing)} order on Binance for {pos.trade_id}")

    def _update(self, events: BarEvents, symbol: str, kind: str, guard: Guard, side: int, status: str, reason: str,
                exchange_id: str | None = None, price: float | None = None) -> None:
        events.order_updates.append(OrderUpdate(self._now(), guard.trade_id, guard.client_id, symbol, kind, status,
                                                side, guard.qty, guard.filled,
                                                price if price is not None else guard.price, exchange_id, reason))

    # -- the journal ----------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {"guards": {s: {k: asdict(g) for k, g in gs.items()} for s, gs in self.guards.items()},
                "versions": dict(self.versions), "dirty": sorted(self.dirty)}

    def restore(self, state: dict[str, Any]) -> None:
        self.guards = {s: {k: Guard(**g) for k, g in gs.items()} for s, gs in state["guards"].items()}
        self.versions = dict(state["versions"])
        self.dirty = set(state["dirty"])
