"""Live orders on Binance through ccxt: the Exchange an agent trades through in ``mode=live``.

    submit_entry, submit_exit, amend_protection   queue: nothing reaches Binance during the agent's step
    dispatch()        once the bar's rows (its orders among them) are committed: exits, then entries,
                      then protective orders; what Binance answered at once comes back to be recorded
    process_bar(i)    once bar i has closed: funding, fills of orders still working, stops and targets
                      that triggered, then the positions and the balance on Binance against the book
                      (reconciliation, ``reconcile.py``), and every N bars (and at start) the open orders

* Idempotent: every order carries a client id derived from the run and the ledger's order id
  (``client_ids.py``); an unanswered send is followed by a look-up of that id, never by a blind resend
  (``account.py``). A crash after the commit leaves orders whose fate is unknown: the restart asks
  Binance for each by its client id, and sends it only when Binance never got it and its bar is
  still open; an entry whose moment has passed is recorded as not sent. No path sends an order twice.
* Rules first (``rules.py``): an order that cannot meet the exchange's filters or brackets is not
  sent and becomes a recorded rejection with the reason. Isolated margin and the agent's leverage are
  set per symbol before its first entry.
* Protection lives on Binance (``protection.py``): USDT-M reduce-only STOP_MARKET / TAKE_PROFIT_MARKET,
  spot a STOP_LOSS_LIMIT sell, whose take profit is watched here at each bar close and sold at market.
* Faults: an authentication error halts (``BarEvents.halt``) and no order is sent until the keys work
  again; other errors are recorded (``BarEvents.errors``) and the same checks run at the next bar.
  The loop never dies on an exchange reply.
* Resume: each answer is journalled with the account's state (``BarEvents.journal``); a restarted run's
  fast-forward through the bars its ledger holds is answered from that journal (``resume``), so the
  agent rebuilds exactly what it knew, and the first live bar reconciles with Binance.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from components.exchange.account import BinanceAccount, OrderState
from components.exchange.book import LiveBook
from components.exchange.client_ids import client_order_id
from components.exchange.journal import events_from, events_json, order_from, order_json
from components.exchange.protection import FINAL_STATUS, Protection
from components.exchange.reconcile import Reconciler
from components.exchange.rules import ExchangeRules
from core.errors import (
    AuthenticationFailed,
    ConfigError,
    ExchangeError,
    ExchangeUnavailable,
)
from core.market import MarketData
from core.protocols import ENTRY_HEADROOM
from core.records import (
    BarEvents,
    EntryOrder,
    ExitOrder,
    ExitReason,
    OrderUpdate,
    Position,
)


@dataclass(frozen=True)
class LiveSettings:
    """How a live exchange keeps watch (``conf/mode/live.yaml``)."""

    reconcile_every_bars: int = 12  # open orders against the agent's view (positions and balance: every bar)
    working_type: str = "CONTRACT_PRICE"  # what USDT-M stops trigger on: CONTRACT_PRICE (last) or MARK_PRICE
    spot_stop_limit_gap: float = 0.005  # a spot stop-limit's limit this far beyond its trigger
    balance_tolerance: float = 0.01  # USDT: smaller balance differences are rounding, not news


@dataclass
class Working:
    """An order sent whose outcome is not final yet: partly filled, or never answered (``unknown``)."""

    order: EntryOrder | ExitOrder
    client_id: str
    decided_at: int  # open time of the bar it was decided at
    side: int
    qty: float
    leverage: float = 1.0
    status: str = "sent"  # sent | unknown
    exchange_id: str | None = None
    filled: float = 0.0
    value: float = 0.0
    fee: float = 0.0
    fee_in_base: float = 0.0

    @property
    def kind(self) -> str:
        return "entry" if isinstance(self.order, EntryOrder) else "exit"


@dataclass
class _Journal:
    replies: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    last_ts: int | None = None  # the last bar close the ledger holds: bars up to it are answered from replies


class LiveExchange:
    """Orders to Binance through ccxt; cash and positions as the exchange reports them."""

    def __init__(self, account: BinanceAccount, market: MarketData, *, run_id: str,
                 settings: LiveSettings | None = None) -> None:
        self.account = account
        self.kind = market.kind
        self._futures = market.kind == "futures"
        self.settings = settings or LiveSettings()
        self.run_id = run_id
        listed = account.client.markets()
        missing = [s for s in market.symbols if s not in listed]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not listed on {account.client.venue}")
        symbols = list(market.symbols)
        self.rules = ExchangeRules(account.exchange, account.leverage_tiers(symbols))
        self.book = LiveBook(self._futures, account.balances()["USDT"],
                             is_dust=lambda symbol, qty: self.rules.qty(symbol, qty) == 0.0)
        self.reconciler = Reconciler(account, self.book, run_id, tuple(symbols), self.settings.balance_tolerance)
        self._outbox: list[EntryOrder | ExitOrder] = []
        self._working: dict[str, Working] = {}
        self._leverage: dict[str, int] = {}  # symbols set to isolated margin, at this leverage
        self.protection = Protection(account, self.rules, self.book, self.reconciler, run_id=run_id,
                                     working_type=self.settings.working_type,
                                     stop_limit_gap=self.settings.spot_stop_limit_gap, now=lambda: self._now,
                                     close_at_market=self._send)
        self._income_since = account.client.server_time()  # funding settled from then on is the agent's
        self._funding_booked: list[list[Any]] = []  # (symbol, ts) booked at ``_income_since``
        self._since_reconcile = 0
        self._started = False
        self._auth_failure: str | None = None
        self._journal = _Journal()
        self._pending = BarEvents()  # found while fast-forwarding: reported with the first live bar
        self._bar = market.trade_from
        self.extend(market)

    # -- the Exchange protocol ------------------------------------------------------------------
    @property
    def cash(self) -> float:
        return self.book.cash

    @property
    def entry_cash(self) -> float:
        """Binance takes a spot buy's fee from the asset bought (or BNB): the quote pays the notional."""
        return self.book.cash / (1 + ENTRY_HEADROOM)

    @property
    def positions(self) -> dict[str, Position]:
        return self.book.positions

    def pending_orders(self) -> tuple[EntryOrder | ExitOrder, ...]:
        """Queued, then sent and still working; exits first, as they are sent."""
        waiting = [*self._outbox, *(w.order for w in self._working.values())]
        return (*[o for o in waiting if isinstance(o, ExitOrder)], *[o for o in waiting if isinstance(o, EntryOrder)])

    def submit_entry(self, order: EntryOrder) -> None:
        self._require_symbol(order.symbol, order.order_id)
        if order.side not in (1, -1) or (not self._futures and order.side != 1):
            raise ExchangeError(f"order {order.order_id}: side {order.side} cannot be traded on {self.kind}")
        if order.cash_fraction is None and not (math.isfinite(order.qty) and order.qty > 0):
            raise ExchangeError(f"order {order.order_id}: qty must be > 0, got {order.qty}")
        self._outbox.append(order)

    def submit_exit(self, order: ExitOrder) -> None:
        self._require_symbol(order.symbol, order.order_id)
        self._outbox.append(order)

    def amend_protection(self, symbol: str, stop_price: float | None = None,
                         take_profit_price: float | None = None) -> None:
        """Move the stop and/or target (None keeps one); Binance hears of it at the next dispatch."""
        pos = self.book.positions.get(symbol)
        if pos is None:
            raise ExchangeError(f"no open {symbol} position to amend")
        if stop_price is not None:
            pos.stop_price = self.rules.price(symbol, stop_price)
        if take_profit_price is not None:
            pos.take_profit_price = self.rules.price(symbol, take_profit_price)
        self.protection.dirty.add(symbol)

    def extend(self, market: MarketData) -> None:
        self.market = market
        self._ts: list[int] = market.ts.tolist()
        self._tf = market.timeframe_ms
        self._close = {s: d.bars.close.tolist() for s, d in market.symbols.items()}
        self._high = {s: d.bars.high.tolist() for s, d in market.symbols.items()}
        self._mark = {s: (d.mark.close.tolist() if d.mark is not None else self._close[s])
                      for s, d in market.symbols.items()}

    def mark_to_market(self, i: int) -> tuple[float, float, float]:
        """(equity, cash, unrealized) at bar ``i``'s close: USDT-M at the mark close, spot at the last close."""
        value = unrealized = 0.0
        for pos in self.book.positions.values():
            price = (self._mark if self._futures else self._close)[pos.symbol][i]
            pnl = pos.side * pos.qty * (price - pos.entry_price)
            unrealized += pnl
            value += max(0.0, pos.isolated_margin + pnl) if self._futures else pos.qty * price
        return self.book.cash + value, self.book.cash, unrealized

    def close_all(self, i: int, reason: ExitReason) -> BarEvents:
        """Every position closed at market now (a live feed never ends, so the engine does not call this)."""
        self._bar = i
        for symbol, pos in self.book.positions.items():
            self._outbox.append(ExitOrder(f"{pos.trade_id}:{reason.value}", symbol, reason))
        return self.dispatch()

    def process_bar(self, i: int) -> BarEvents:
        """Bar ``i`` has closed: what happened on Binance since the last bar, and the book corrected to it."""
        self._bar = i
        if self._replaying(i):
            return self._replayed("bar")
        events, self._pending = self._pending, BarEvents()
        self._guarded(events, self._sync, probe=True)
        self._write_journal(events, "bar")
        return events

    def dispatch(self) -> BarEvents:
        """Send what the bar queued: exits, entries, then protective orders placed or moved."""
        outbox, self._outbox = self._outbox, []
        if self._replaying(self._bar):
            return self._replayed_dispatch(outbox)
        events = BarEvents()
        for order in [o for o in outbox if isinstance(o, ExitOrder)] + [o for o in outbox if isinstance(o, EntryOrder)]:
            if self._auth_failure is not None:
                self._refuse(order, client_order_id(self.run_id, order.order_id), "not sent: Binance refuses the "
                             "API keys (live trading is halted)", events, sent=False)
                continue
            self._guarded(events, lambda ev, o=order: self._send(o, ev))
        for symbol in sorted(self.protection.dirty):
            if self._auth_failure is None:
                self._guarded(events, lambda ev, s=symbol: self.protection.protect(s, ev))
        if outbox or events:
            self._write_journal(events, "dispatch")
        return events

    # -- resume ------------------------------------------------------------------------------------
    def resume(self, replies: Iterable[Mapping[str, Any]], last_ts: int | None) -> None:
        """A restarted run: bars closing at or before ``last_ts`` (what the ledger holds) are answered from
        the journalled ``replies`` (rows with ``bar_ts``, ``call`` and ``reply``), in the fast-forward."""
        self._journal = _Journal({(int(r["bar_ts"]), str(r["call"])): r["reply"] for r in replies}, last_ts)

    def _replaying(self, i: int) -> bool:
        last = self._journal.last_ts
        return last is not None and self._ts[i] + self._tf <= last

    def _replayed(self, call: str) -> BarEvents:
        reply = self._journal.replies.get((self._ts[self._bar], call))
        if reply is None:
            return BarEvents()
        self._restore(reply["state"])
        return events_from(reply["events"])

    def _replayed_dispatch(self, outbox: list[EntryOrder | ExitOrder]) -> BarEvents:
        bar_ts = self._ts[self._bar]
        if (bar_ts, "dispatch") in self._journal.replies:
            return self._replayed("dispatch")
        if outbox and bar_ts + self._tf == self._journal.last_ts:
            # committed, but no answer recorded: the process stopped around the send. Ask Binance now,
            # while their bar may still be open; what is found is reported with the first live bar.
            for order in outbox:
                self._working[client_order_id(self.run_id, order.order_id)] = self._working_for(order, "unknown")
            self._guarded(self._pending, self._poll_working)
        return BarEvents()

    # -- sending -----------------------------------------------------------------------------------
    def _send(self, order: EntryOrder | ExitOrder, events: BarEvents, *, late_ok: bool = False) -> None:
        client_id = client_order_id(self.run_id, order.order_id)
        if isinstance(order, EntryOrder) and not late_ok and self._bar < len(self._ts) - 1:
            later = len(self._ts) - 1 - self._bar
            self._refuse(order, client_id, f"not sent: decided on a bar {later} bar(s) behind the last one known "
                         "(catching up on missed bars); its moment has passed", events, sent=False)
            return
        try:
            if isinstance(order, ExitOrder):
                self._send_exit(order, client_id, events)
            else:
                self._send_entry(order, client_id, events)
        except AuthenticationFailed:
            self._refuse(order, client_id, "not sent: Binance refused the API keys", events, sent=False)
            raise
        except ExchangeUnavailable as exc:
            self._unknown(order, client_id, f"no answer ({exc}); asked again at the next bar", events)
        except ExchangeError as exc:
            self._refuse(order, client_id, str(exc), events, sent=True)
        except Exception as exc:  # noqa: BLE001 - a reply it cannot read: whether the order stands is asked next bar
            self._unknown(order, client_id, f"unreadable answer ({type(exc).__name__}: {exc}); asked again at the "
                          "next bar", events)

    def _unknown(self, order: EntryOrder | ExitOrder, client_id: str, why: str, events: BarEvents) -> None:
        working = self._working_for(order, "unknown")
        self._working[client_id] = working
        self._update(events, working, "unknown", why)

    def _working_for(self, order: EntryOrder | ExitOrder, status: str) -> Working:
        pos = self.book.positions.get(order.symbol)
        if isinstance(order, EntryOrder):
            leverage = self.rules.leverage(order.leverage) if self._futures else 1
            return Working(order, client_order_id(self.run_id, order.order_id), self._ts[self._bar], order.side,
                           order.qty, float(leverage), status)
        side, qty = (-pos.side, pos.qty) if pos is not None else (0, 0.0)
        return Working(order, client_order_id(self.run_id, order.order_id), self._ts[self._bar], side, qty,
                       status=status)

    def _send_entry(self, order: EntryOrder, client_id: str, events: BarEvents) -> None:
        symbol = order.symbol
        if symbol in self.book.positions or any(w.order.symbol == symbol and w.kind == "entry"
                                                for w in self._working.values()):
            self._refuse(order, client_id, f"a {symbol} position is already open", events, sent=False)
            return
        price = self._close[symbol][self._bar]
        quote_qty = None
        if order.cash_fraction is not None:
            quote_qty = self.book.cash * order.cash_fraction  # ccxt truncates it to the quote's precision
            qty = self.rules.qty(symbol, quote_qty / price)
        else:
            qty = self.rules.qty(symbol, order.qty)
        leverage = self.rules.leverage(order.leverage) if self._futures else None
        refusal = self.rules.refusal(symbol, qty, price, leverage=leverage)
        if refusal is not None:
            self._refuse(order, client_id, f"not sent: {refusal}", events, sent=False)
            return
        if leverage is not None:
            self._configure(symbol, leverage)
        working = self._working_for(order, "sent")
        working.qty = qty
        state = self.account.place_market(symbol, order.side, None if quote_qty is not None else qty, client_id,
                                          quote_qty=quote_qty)
        self._track(working, state, events)

    def _send_exit(self, order: ExitOrder, client_id: str, events: BarEvents) -> None:
        symbol = order.symbol
        pos = self.book.positions.get(symbol)
        if pos is None:
            self._refuse(order, client_id, f"no open {symbol} position", events, sent=False)
            return
        qty = self.rules.qty(symbol, pos.qty)
        if qty == 0.0:
            self._refuse(order, client_id, f"the {symbol} position is below one lot", events, sent=False)
            return
        if not self._futures:  # spot: what the stop-limit locks cannot be sold until it is cancelled
            self.protection.retire(symbol, events)
            self.protection.dirty.add(symbol)
        working = self._working_for(order, "sent")
        working.qty = qty
        state = self.account.place_market(symbol, -pos.side, qty, client_id, reduce_only=True)
        self._track(working, state, events)

    def _configure(self, symbol: str, leverage: int) -> None:
        """Isolated margin and the leverage, once per symbol (and again when the leverage changes)."""
        if self._leverage.get(symbol) == leverage:
            return
        if symbol not in self._leverage:
            self.account.set_isolated(symbol)
        self.account.set_leverage(symbol, leverage)
        self._leverage[symbol] = leverage

    def _track(self, working: Working, state: OrderState, events: BarEvents) -> None:
        """The order stands on Binance: book what it filled; anything that goes wrong from here is asked again."""
        self._update(events, working, "sent", "", state)
        self._working[working.client_id] = working
        try:
            self._apply(working, state, events)
        except Exception as exc:  # noqa: BLE001 - it was sent: the next bar looks it up by its client id
            working.status = "unknown"
            events.errors.append(f"{working.client_id}: {type(exc).__name__}: {exc}; asked again at the next bar")
            return
        if state.final:
            del self._working[working.client_id]

    def _refuse(self, order: EntryOrder | ExitOrder, client_id: str, why: str, events: BarEvents, *,
                sent: bool) -> None:
        events.rejected.append((order.order_id, why))
        working = self._working_for(order, "sent")
        working.client_id = client_id
        self._update(events, working, "rejected" if sent else "not_sent", why)

    # -- what became of orders -----------------------------------------------------------------------
    def _poll_working(self, events: BarEvents) -> None:
        for client_id, working in list(self._working.items()):
            state = self.account.order(working.order.symbol, client_id)
            if state.status != "missing":
                self._apply(working, state, events)
                if state.final:
                    del self._working[client_id]
                continue
            del self._working[client_id]
            if working.status == "unknown" and self._fresh(working):
                self._send(working.order, events, late_ok=True)
            elif working.status == "unknown":
                self._refuse(working.order, client_id, "not sent: Binance never received it, and the bar it was "
                             "meant for has passed", events, sent=False)
            else:
                self._update(events, working, "expired", "Binance no longer knows the order")

    def _fresh(self, working: Working) -> bool:
        """The bar after the one it was decided at is still open: an order sent now fills where it was meant to."""
        return self.account.client.server_time() < working.decided_at + 2 * self._tf

    def _apply(self, working: Working, state: OrderState, events: BarEvents) -> None:
        """Book what Binance filled of ``working`` beyond what is booked, and record how it stands."""
        if working.status == "unknown":
            working.status = "sent"
            self._update(events, working, "found",
                         "found on Binance by its client id (its answer had not been recorded)", state)
        working.exchange_id = state.exchange_id or working.exchange_id
        grew = False
        if state.filled > working.filled + 1e-12 and working.exchange_id is not None:
            done = self.account.execution(working.order.symbol, working.exchange_id)
            if done is not None and done.qty > working.filled + 1e-12:
                qty = done.qty - working.filled
                price = (done.qty * done.price - working.value) / qty
                fee, fee_in_base = done.fee - working.fee, done.fee_in_base - working.fee_in_base
                working.filled, working.value = done.qty, done.qty * done.price
                working.fee, working.fee_in_base = done.fee, done.fee_in_base
                self._book(working, qty, price, fee, fee_in_base, done.ts, events)
                grew = True
        if state.final:
            self._update(events, working, FINAL_STATUS.get(state.status, state.status), "", state)
            if working.filled == 0:
                events.rejected.append((working.order.order_id, f"{state.status} on Binance without a fill"))
        elif grew:
            self._update(events, working, "partially_filled", "", state)

    def _book(self, working: Working, qty: float, price: float, fee: float, fee_in_base: float, ts: int,
              events: BarEvents) -> None:
        order, symbol = working.order, working.order.symbol
        if isinstance(order, EntryOrder):
            stop = None if order.stop_price is None else self.rules.price(symbol, order.stop_price)
            target = None if order.take_profit_price is None else self.rules.price(symbol, order.take_profit_price)
            self.book.open(order, working.leverage, qty, price, fee, fee_in_base, ts, stop, target, events)
            self.protection.dirty.add(symbol)
            return
        pos = self.book.positions.get(symbol)
        if pos is None:
            events.errors.append(f"{order.order_id} filled {qty:g} {symbol} but the agent holds no position")
            return
        if self.book.close(pos, qty, price, fee, ts, order.order_id, order.reason, events):
            self.protection.retire(symbol, events)
        else:
            self.protection.dirty.add(symbol)

    def _watch_targets(self, events: BarEvents) -> None:
        """Spot: a target the bar reached is sold at market at the next dispatch."""
        exiting = {o.symbol for o in self.pending_orders() if isinstance(o, ExitOrder)}
        for symbol, pos in self.book.positions.items():
            target = pos.take_profit_price
            if target is not None and symbol not in exiting and self._high[symbol][self._bar] >= target:
                self._outbox.append(ExitOrder(f"{pos.trade_id}:take_profit", symbol, ExitReason.TAKE_PROFIT))

    # -- each bar --------------------------------------------------------------------------------------
    @property
    def _now(self) -> int:
        return self._ts[self._bar] + self._tf

    def _sync(self, events: BarEvents) -> None:
        if self._futures:
            self._collect_funding(events)
        self._poll_working(events)
        self.protection.poll(events)
        self._sync_account(events)
        self._since_reconcile += 1
        if not self._started or self._since_reconcile >= self.settings.reconcile_every_bars:
            self._reconcile_orders(events)
            self._started = True
        if not self._futures:
            self._watch_targets(events)

    def _collect_funding(self, events: BarEvents) -> None:
        """Settlements since the latest one booked; several symbols settle at the same time."""
        for symbol, ts, amount in sorted(self.account.income("FUNDING_FEE", self._income_since), key=lambda r: r[1]):
            if ts < self._income_since or [symbol, ts] in self._funding_booked:
                continue
            if ts > self._income_since:
                self._income_since, self._funding_booked = ts, []
            self._funding_booked.append([symbol, ts])
            pos = self.book.positions.get(symbol)
            if pos is None or ts <= pos.entry_ts:
                continue  # not a position of the agent's
            rate, mark = self._settlement(symbol, ts, pos, amount)
            self.book.fund(pos, ts, rate, mark, amount, events)

    def _settlement(self, symbol: str, ts: int, pos: Position, amount: float) -> tuple[float, float]:
        """The settlement's rate and mark price: Binance's income row has the amount only. The rate comes
        from the feed's funding history (settled by now); the mark follows from amount and rate, as Binance
        computed it (``-side * qty * mark * rate``), or from the last mark close when the rate is unknown."""
        funding = self.market.symbols[symbol].funding
        known = funding.ts.tolist() if funding is not None else []
        if ts in known and funding is not None and funding.rate[known.index(ts)] != 0:
            rate = float(funding.rate[known.index(ts)])
            return rate, -amount / (pos.side * pos.qty * rate)
        mark = self._mark[symbol][min(self._bar, len(self._ts) - 1)]
        return -amount / (pos.side * pos.qty * mark), mark

    def _sync_account(self, events: BarEvents) -> None:
        lots = {s: self.account.exchange.market(s)["limits"]["amount"]["min"] or 0.0 for s in self.market.symbols}
        balances = self.account.balances()
        if self._futures:
            theirs = self.account.positions()
            if any(symbol not in theirs for symbol in self.book.positions):
                # gone on Binance: an order of the agent's that filled since it last looked explains it first
                self._poll_working(events)
                self.protection.poll(events)
            self.reconciler.positions(theirs, self._now, events, lots)
        else:
            self.reconciler.holdings(balances, self._now, events, lots)
        self.protection.follow(events)
        self.reconciler.balance(balances["USDT"], self._now, events)

    def _reconcile_orders(self, events: BarEvents) -> None:
        """Every open order against the agent's view; every position must have its protection on Binance."""
        standing = self.account.open_orders(list(self.market.symbols))
        self.protection.adopt(standing)
        self.reconciler.orders(standing, set(self._working) | self.protection.known(), self._now, events)
        self.protection.check(events)
        self._since_reconcile = 0

    # -- faults ----------------------------------------------------------------------------------------
    def _guarded(self, events: BarEvents, step: Any, *, probe: bool = False) -> None:
        """Run ``step``; an exchange reply never ends the loop. Refused keys halt: nothing is sent until
        they work again (checked at each bar)."""
        try:
            if probe and self._auth_failure is not None:
                self.account.check_keys()
                self._auth_failure = None
            step(events)
        except AuthenticationFailed as exc:  # said at every bar until the keys work: a resume does not hide it
            events.halt = (f"Binance refused the API keys ({exc}). Live trading is halted and no order is "
                           "sent; open positions keep their protective orders on Binance. Fix the keys "
                           "(BINANCE_API_KEY, BINANCE_API_SECRET), then: ratchet-control RUN_DIR resume")
            self._auth_failure = str(exc)
        except Exception as exc:  # noqa: BLE001 - an unusable reply is recorded and asked again next bar
            events.errors.append(f"{type(exc).__name__}: {exc}")

    # -- records -------------------------------------------------------------------------------------
    def _update(self, events: BarEvents, working: Working, status: str, reason: str,
                state: OrderState | None = None) -> None:
        order = working.order
        events.order_updates.append(OrderUpdate(
            self._now, order.order_id, working.client_id, order.symbol, working.kind, status, working.side,
            working.qty, working.filled, working.value / working.filled if working.filled else None,
            (state.exchange_id if state is not None else None) or working.exchange_id, reason))

    def _require_symbol(self, symbol: str, order_id: str) -> None:
        if symbol not in self._close:
            raise ExchangeError(f"order {order_id}: unknown symbol {symbol!r}; market has {', '.join(self._close)}")

    # -- the journal -------------------------------------------------------------------------------------
    def _write_journal(self, events: BarEvents, call: str) -> None:
        events.journal = {"bar_ts": self._ts[self._bar], "call": call,
                          "reply": {"events": events_json(events), "state": self._state()}}

    def _state(self) -> dict[str, Any]:
        return {"book": self.book.snapshot(), "protection": self.protection.snapshot(),
                "working": [asdict(w) | {"order": order_json(w.order)} for w in self._working.values()],
                "leverage": dict(self._leverage), "income_since": self._income_since,
                "funding_booked": self._funding_booked,
                "since_reconcile": self._since_reconcile,
                "auth_failure": self._auth_failure, "seen_foreign": sorted(self.reconciler.seen_foreign)}

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.book.restore(state["book"])
        self.protection.restore(state["protection"])
        self._working = {w["client_id"]: Working(**(w | {"order": order_from(w["order"])})) for w in state["working"]}
        self._leverage = dict(state["leverage"])
        self._income_since = int(state["income_since"])
        self._funding_booked = [list(b) for b in state["funding_booked"]]
        self._since_reconcile = int(state["since_reconcile"])
        self._auth_failure = state["auth_failure"]
        self.reconciler.seen_foreign = set(state["seen_foreign"])

