"""Simulated exchange for replay: market fills at the next open, stops, funding, liquidation.

Conventions (the numbers every replay's ledger depends on):

* Orders are queued and fill at the next processed bar's open, exits before entries, so an
  exit and an entry for one symbol in the same bar reverse the position. Market, stop and
  take-profit fills move ``slippage_bps`` against the trader and pay the taker fee on the notional.
* Timestamps: fills at the open carry ``ts[i]``; intrabar fills (stop, take profit, liquidation)
  and ``close_all`` fills carry the bar's end ``ts[i] + timeframe_ms``, when they become known.
* Intrabar, on last-price high/low: when one bar touches both the stop and the take profit, the
  stop is assumed (worst case). Fills are gap-aware: a long stop fills at ``min(open, stop)``, a
  long take profit at ``max(open, tp)``; mirrored for shorts.
* Futures are Binance USDT-M, one-way, isolated (``margin.py``). Opening takes the initial
  margin ``qty * price / leverage`` and the fee from cash; the fee does not enter the isolated
  wallet. Funding settles into the isolated wallet (``Position.isolated_margin``), so it moves
  the liquidation price, which is recomputed at every settlement.
* Brackets: the liquidation price and the leverage cap at entry use the maintenance-margin
  table in force at the entry bar's open; a recomputation at a settlement uses the one in force
  at that bar (``exchange.brackets``: ``by_date`` by default, or one dated table for every bar).
* Marks: ``mark_to_market`` values futures at the mark candle's close, as Binance values
  unrealized pnl and margin ratio at the mark price; spot at the last-price close.
  ``close_all`` fills at the last-price close: flattening is a market order, which executes at
  the last price, not the mark.
* Funding: settlements in ``(ts[i-1], ts[i]]`` are paid by positions open when bar ``i`` begins,
  before its open fills, at the mark candle's open of bar ``i``. A position entered at a
  settlement bar's open does not pay that settlement; one exited at that open does.
* Liquidation triggers when the mark low (long) / high (short) reaches the liquidation price,
  unless the bar also touched a stop lying between the entry and the liquidation price: the
  move reaches that stop first. A bar whose mark opens past the liquidation price liquidates
  at once, before any exit order or stop.
  The whole isolated margin is lost: the trade exits at the liquidation price and the margin
  left at that price is booked as a clearance fee, so ``pnl = -initial margin - entry fee``
  (funding was already absorbed by the wallet). A fill that would return less than nothing from
  the isolated wallet (past bankruptcy) is booked as a liquidation too.
* Spot: long only, leverage 1; buying needs ``qty * price * (1 + fee)`` in cash.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from components.exchange.margin import (
    BY_DATE,
    DatedBrackets,
    bracket_for,
    dated_brackets,
    funding_cash_flow,
    isolated_liquidation_price,
    unknown_bracket_setting,
)
from core.component import NEVER, next_at_or_after
from core.errors import ConfigError, ExchangeError
from core.market import MarketData, SymbolData, per_bar
from core.protocols import ENTRY_HEADROOM
from core.records import (
    BarEvents,
    ClosedTrade,
    EntryOrder,
    ExitOrder,
    ExitReason,
    Fill,
    FundingPayment,
    Position,
)


class SimExchangeConfig(BaseModel):
    """Costs and limits of the simulated exchange."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    spot_taker_fee: float = Field(0.001, ge=0, lt=1)  # Binance spot taker, VIP 0: 0.10 %
    futures_taker_fee: float = Field(0.0005, ge=0, lt=1)  # Binance USDT-M taker, VIP 0: 0.05 %
    slippage_bps: float = Field(0.0, ge=0, lt=10_000)  # against the trader; not on liquidations
    # maintenance-margin brackets: 'by_date' (the table in force at each bar) or one table's
    # date for every bar, see margin.BRACKET_TABLES
    brackets: str = BY_DATE
    max_leverage: float = Field(5.0, ge=1)  # entries above it are rejected

    @field_validator("brackets")
    @classmethod
    def _known_setting(cls, name: str) -> str:
        reason = unknown_bracket_setting(name)
        if reason is not None:
            raise ValueError(reason)
        return name


class _Series:
    """One symbol's per-bar prices as compact sequences of floats (``per_bar``: scalar reads in the bar loop)."""

    __slots__ = ("open", "high", "low", "close", "mark_open", "mark_high", "mark_low", "mark_close",
                 "funding", "funding_bars", "brackets", "arrays")

    def __init__(self, data: SymbolData, ts: np.ndarray, brackets: DatedBrackets | None) -> None:
        bars = data.bars
        self.open: Sequence[float] = per_bar(bars.open)
        self.high: Sequence[float] = per_bar(bars.high)
        self.low: Sequence[float] = per_bar(bars.low)
        self.close: Sequence[float] = per_bar(bars.close)
        # numpy views for searches ahead: (low, high) of last prices, then of mark prices (futures)
        self.arrays: tuple[np.ndarray, ...] = (bars.low, bars.high, bars.close)
        self.funding_bars: list[int] = []
        self.brackets = brackets
        self.mark_open: Sequence[float] = []
        self.mark_high: Sequence[float] = []
        self.mark_low: Sequence[float] = []
        self.mark_close: Sequence[float] = []
        # bar index -> settlements (ts, rate) in (ts[i-1], ts[i]]
        self.funding: dict[int, list[tuple[int, float]]] = {}
        if brackets is None:  # spot
            return
        symbol = bars.symbol
        if data.mark is None or not np.array_equal(data.mark.ts, ts):
            raise ConfigError(f"{symbol}: futures need mark-price candles on the market's bar index")
        if data.funding is None:
            raise ConfigError(f"{symbol}: futures need funding rates")
        self.mark_open = per_bar(data.mark.open)
        self.mark_high = per_bar(data.mark.high)
        self.mark_low = per_bar(data.mark.low)
        self.mark_close = per_bar(data.mark.close)
        self.arrays = (bars.low, bars.high, bars.close, data.mark.low, data.mark.high, data.mark.close)
        settled = np.searchsorted(data.funding.ts, ts, side="right").tolist()
        funding_ts = data.funding.ts.tolist()
        rates = data.funding.rate.tolist()
        for i in range(1, len(settled)):
            lo, hi = settled[i - 1], settled[i]
            if hi > lo:
                self.funding[i] = [(funding_ts[k], rates[k]) for k in range(lo, hi)]
        self.funding_bars = sorted(self.funding)


class SimExchange:
    """Fills an agent's orders against historical bars; one position per symbol."""

    def __init__(self, config: SimExchangeConfig, market: MarketData, starting_cash: float) -> None:
        if not (math.isfinite(starting_cash) and starting_cash >= 0):
            raise ConfigError(f"starting_cash must be a finite amount >= 0, got {starting_cash}")
        self.config = config
        self.market = market
        self.kind = market.kind
        self._futures = market.kind == "futures"
        self._fee = config.futures_taker_fee if self._futures else config.spot_taker_fee
        self._slip = config.slippage_bps / 10_000
        self._brackets = {s: dated_brackets(config.brackets, s) if self._futures else None for s in market.symbols}
        self.extend(market)
        self._cash = float(starting_cash)
        self._positions: dict[str, Position] = {}
        self._entries: list[EntryOrder] = []
        self._exits: list[ExitOrder] = []
        self._last_bar: int | None = None

    def extend(self, market: MarketData) -> None:
        """Read prices (and funding) from ``market``, which may have grown at its end (paper, live)."""
        self.market = market
        self._ts: Sequence[int] = per_bar(market.ts)
        self._timeframe_ms = market.timeframe_ms
        self._series: dict[str, _Series] = {
            symbol: _Series(data, market.ts, self._brackets[symbol]) for symbol, data in market.symbols.items()}

    def dispatch(self) -> BarEvents:
        """Nothing to send: simulated orders are queued for the next bar's open."""
        return BarEvents()

    # ----------------------------------------------------------------------------- orders
    @property
    def cash(self) -> float:
        """Free cash: not counting isolated margins or spot holdings."""
        return self._cash

    @property
    def entry_cash(self) -> float:
        return self._cash / ((1 + self._fee) * (1 + self._slip) * (1 + ENTRY_HEADROOM))

    @property
    def positions(self) -> dict[str, Position]:
        """Open positions by symbol. Read them; only the exchange changes them."""
        return self._positions

    def pending_orders(self) -> tuple[EntryOrder | ExitOrder, ...]:
        """Queued orders in the order they will fill (exits first)."""
        return (*self._exits, *self._entries)

    def submit_entry(self, order: EntryOrder) -> None:
        """Queue a market entry for the next bar's open. Malformed orders raise ExchangeError."""
        self._require_symbol(order.symbol, order.order_id)
        if order.side not in (1, -1):
            raise ExchangeError(f"order {order.order_id}: side must be +1 or -1, got {order.side}")
        if order.cash_fraction is not None:
            if self._futures:
                raise ExchangeError(f"order {order.order_id}: cash_fraction is for spot only")
            if not 0 < order.cash_fraction <= 1:
                raise ExchangeError(
                    f"order {order.order_id}: cash_fraction must be in (0, 1], "
                    f"got {order.cash_fraction}"
                )
        elif not (math.isfinite(order.qty) and order.qty > 0):
            raise ExchangeError(f"order {order.order_id}: qty must be > 0, got {order.qty}")
        _check_level(order.order_id, "stop_price", order.stop_price)
        _check_level(order.order_id, "take_profit_price", order.take_profit_price)
        self._entries.append(order)

    def submit_exit(self, order: ExitOrder) -> None:
        """Queue closing the whole position at the next bar's open."""
        self._require_symbol(order.symbol, order.order_id)
        self._exits.append(order)

    def cancel_pending(self, symbol: str | None = None) -> list[EntryOrder | ExitOrder]:
        """Drop queued orders (all, or one symbol's) and return them."""
        dropped = [o for o in self.pending_orders() if symbol is None or o.symbol == symbol]
        self._exits = [o for o in self._exits if o not in dropped]
        self._entries = [o for o in self._entries if o not in dropped]
        return dropped

    def amend_protection(
        self, symbol: str, stop_price: float | None = None, take_profit_price: float | None = None
    ) -> None:
        """Move the open position's stop and/or take profit (None leaves one unchanged)."""
        position = self._positions.get(symbol)
        if position is None:
            raise ExchangeError(f"no open {symbol} position to amend")
        _check_level(position.trade_id, "stop_price", stop_price)
        _check_level(position.trade_id, "take_profit_price", take_profit_price)
        if stop_price is not None:
            position.stop_price = stop_price
        if take_profit_price is not None:
            position.take_profit_price = take_profit_price

    # -------------------------------------------------------------------------- bar loop
    def process_bar(self, i: int) -> BarEvents:
        """Settle funding, fill queued orders at open[i], then run stops/TP/liquidation on bar i."""
        if self._last_bar is not None and i != self._last_bar + 1:
            raise ExchangeError(f"bars must be processed in order: got {i} after {self._last_bar}")
        self._last_bar = i
        if not (self._positions or self._entries or self._exits):
            return BarEvents()
        events = BarEvents()
        if self._futures and self._positions:
            self._settle_funding(i, events)
        if self._exits:
            self._fill_exits(i, events)
        if self._entries:
            self._fill_entries(i, events)
        if self._positions:
            self._run_intrabar(i, events)
        return events

    # ------------------------------------------------------------------ quiet stretches
    def next_event(self, i: int) -> int:
        """The first bar >= ``i`` in which anything can happen here: a queued order fills, a funding
        settlement, a stop, a target or a liquidation price reached. NEVER when flat and idle."""
        if self._entries or self._exits:
            return i
        return min((self._next_for(p, i) for p in self._positions.values()), default=NEVER)

    def _next_for(self, position: Position, i: int) -> int:
        series = self._series[position.symbol]
        first = next_at_or_after(series.funding_bars, i)
        low, high = series.arrays[0], series.arrays[1]
        side = position.side
        adverse, favourable = (low, high) if side > 0 else (high, low)
        for level, prices, hit in ((position.stop_price, adverse, -1), (position.take_profit_price, favourable, 1)):
            if level is not None:
                first = min(first, _first_crossing(prices, i, first, side * hit, level))
        if position.liquidation_price is not None:
            mark_adverse = series.arrays[3] if side > 0 else series.arrays[4]
            first = min(first, _first_crossing(mark_adverse, i, first, -side, position.liquidation_price))
        return first

    def pass_quiet_bars(self, i: int, j: int) -> tuple[np.ndarray, float, np.ndarray]:
        """Bars ``i .. j-1``, in which ``next_event`` says nothing happens: their (equity, cash,
        unrealized) marks, each equal to what ``mark_to_market`` gives bar by bar."""
        if self._last_bar is not None and i != self._last_bar + 1:
            raise ExchangeError(f"bars must be processed in order: got {i} after {self._last_bar}")
        self._last_bar = j - 1
        value = np.zeros(j - i)
        unrealized = np.zeros(j - i)
        for position in self._positions.values():
            arrays = self._series[position.symbol].arrays
            close = arrays[5][i:j] if self._futures else arrays[2][i:j]
            pnl = position.side * position.qty * (close - position.entry_price)
            unrealized = unrealized + pnl
            value = value + (np.maximum(0.0, position.isolated_margin + pnl) if self._futures else position.qty * close)
        return self._cash + value, self._cash, unrealized

    def mark_to_market(self, i: int) -> tuple[float, float, float]:
        """(equity, cash, unrealized pnl) at the end of bar i.

        A futures position is valued at the mark candle's close, as Binance values unrealized
        pnl: its isolated margin plus that pnl, floored at zero (an isolated position cannot
        cost more than its margin). Spot counts qty * close.
        """
        value = 0.0
        unrealized = 0.0
        for position in self._positions.values():
            series = self._series[position.symbol]
            close = series.mark_close[i] if self._futures else series.close[i]
            pnl = position.side * position.qty * (close - position.entry_price)
            unrealized += pnl
            if self._futures:
                value += max(0.0, position.isolated_margin + pnl)
            else:
                value += position.qty * close
        return self._cash + value, self._cash, unrealized

    def close_all(self, i: int, reason: ExitReason) -> BarEvents:
        """Close every open position at close[i] (end of data, or a breaker that flattens).

        The last-price close, not the mark: flattening is a market order, and a market order
        executes at the last price.
        """
        events = BarEvents()
        ts = self._ts[i] + self._timeframe_ms
        for position in list(self._positions.values()):
            close = self._series[position.symbol].close[i]
            self._close(position, ts, close, f"{position.trade_id}:{reason.value}", reason, events)
        return events

    # ------------------------------------------------------------------------- internals
    def _require_symbol(self, symbol: str, order_id: str) -> None:
        if symbol not in self._series:
            raise ExchangeError(
                f"order {order_id}: unknown symbol {symbol!r}; market has {', '.join(self._series)}"
            )

    def _settle_funding(self, i: int, events: BarEvents) -> None:
        for symbol, position in self._positions.items():
            series = self._series[symbol]
            settlements = series.funding.get(i)
            if settlements is None:
                continue
            mark = series.mark_open[i]
            for funding_ts, rate in settlements:
                amount = funding_cash_flow(position.side, position.qty, mark, rate)
                position.funding += amount
                position.isolated_margin += amount
                events.funding.append(
                    FundingPayment(funding_ts, position.trade_id, symbol, rate, mark,
                                   position.side * position.qty, amount)
                )
            position.liquidation_price = isolated_liquidation_price(
                series.brackets.at(self._ts[i]), position.side, position.qty, position.entry_price,
                position.isolated_margin,
            )

    def _fill_exits(self, i: int, events: BarEvents) -> None:
        orders, self._exits = self._exits, []
        ts = self._ts[i]
        for order in orders:
            position = self._positions.get(order.symbol)
            if position is None:
                events.rejected.append((order.order_id, f"no open {order.symbol} position"))
                continue
            series = self._series[order.symbol]
            liquidation = position.liquidation_price
            if liquidation is not None and position.side * (series.mark_open[i] - liquidation) <= 0:
                self._liquidate(position, ts, events)
            else:
                self._close(position, ts, series.open[i], order.order_id, order.reason, events)

    def _fill_entries(self, i: int, events: BarEvents) -> None:
        orders, self._entries = self._entries, []
        for order in orders:
            refusal = self._open(order, i, events)
            if refusal is not None:
                events.rejected.append((order.order_id, refusal))

    def _open(self, order: EntryOrder, i: int, events: BarEvents) -> str | None:
        """Open a position at open[i]; returns why not, or None when it filled."""
        if order.symbol in self._positions:
            return f"a {order.symbol} position is already open"
        series = self._series[order.symbol]
        price = series.open[i] * (1 + order.side * self._slip)
        qty = order.qty
        margin = 0.0
        liquidation = None
        if self._futures:
            leverage = order.leverage
            if not 1 <= leverage <= self.config.max_leverage:
                return f"leverage {leverage} outside [1, max_leverage {self.config.max_leverage}]"
            notional = qty * price
            brackets = series.brackets.at(self._ts[i])
            tier_leverage = bracket_for(brackets, notional).max_leverage
            if leverage > tier_leverage:
                return f"leverage {leverage} > {tier_leverage} allowed at notional {notional:.2f}"
            margin = notional / leverage
            fee = notional * self._fee
            cost = margin + fee
            liquidation = isolated_liquidation_price(brackets, order.side, qty, price, margin)
        else:
            leverage = 1.0
            if order.side != 1:
                return "spot cannot short"
            if order.leverage != 1:
                return f"spot has no leverage, got {order.leverage}"
            if order.cash_fraction is not None:
                cost = self._cash * order.cash_fraction
                notional = cost / (1 + self._fee)
                fee = cost - notional
                qty = notional / price
            else:
                notional = qty * price
                fee = notional * self._fee
                cost = notional + fee
            if qty <= 0:
                return "no cash to spend"
        if cost > self._cash:
            return f"insufficient cash: needs {cost:.2f}, has {self._cash:.2f}"
        self._cash -= cost
        ts = self._ts[i]
        self._positions[order.symbol] = Position(
            trade_id=order.order_id, symbol=order.symbol, side=order.side, qty=qty,
            entry_price=price, entry_ts=ts, leverage=leverage, isolated_margin=margin,
            stop_price=order.stop_price, take_profit_price=order.take_profit_price,
            mode=order.mode, state=order.state, risk_fraction=order.risk_fraction, fees=fee,
            liquidation_price=liquidation,
            extra={"initial_margin": margin} if self._futures else {},
        )
        events.fills.append(
            Fill(ts, order.order_id, order.order_id, order.symbol, order.side, qty, price, fee,
                 order.reason)
        )
        return None

    def _run_intrabar(self, i: int, events: BarEvents) -> None:
        ts = self._ts[i] + self._timeframe_ms
        for position in list(self._positions.values()):
            series = self._series[position.symbol]
            side = position.side
            adverse = series.low[i] if side > 0 else series.high[i]
            liquidation = position.liquidation_price
            liquidation_hit = False
            if liquidation is not None:
                mark_adverse = series.mark_low[i] if side > 0 else series.mark_high[i]
                liquidation_hit = side * (mark_adverse - liquidation) <= 0
                if liquidation_hit and side * (series.mark_open[i] - liquidation) <= 0:
                    self._liquidate(position, ts, events)  # the mark opened past it
                    continue
            stop = position.stop_price
            open_ = series.open[i]
            if stop is not None and side * (adverse - stop) <= 0 and (
                liquidation is None or not liquidation_hit or side * (stop - liquidation) > 0
            ):
                price = open_ if side * (open_ - stop) < 0 else stop
                self._close(position, ts, price, f"{position.trade_id}:stop_loss",
                            ExitReason.STOP_LOSS, events)
            elif liquidation_hit:
                self._liquidate(position, ts, events)
            else:
                target = position.take_profit_price
                favourable = series.high[i] if side > 0 else series.low[i]
                if target is not None and side * (favourable - target) >= 0:
                    price = open_ if side * (open_ - target) > 0 else target
                    self._close(position, ts, price, f"{position.trade_id}:take_profit",
                                ExitReason.TAKE_PROFIT, events)

    def _close(self, position: Position, ts: int, price: float, order_id: str,
               reason: ExitReason, events: BarEvents) -> None:
        """Close at ``price`` before slippage, paying the taker fee."""
        price *= 1 - position.side * self._slip
        notional = position.qty * price
        fee = notional * self._fee
        if self._futures:
            returned = (position.isolated_margin
                        + position.side * position.qty * (price - position.entry_price) - fee)
            if returned < 0:  # past bankruptcy: the isolated wallet is gone
                self._liquidate(position, ts, events)
                return
            self._cash += returned
        else:
            self._cash += notional - fee
        self._book(position, ts, price, fee, order_id, reason, events)

    def _liquidate(self, position: Position, ts: int, events: BarEvents) -> None:
        """Lose the whole isolated margin: exit at the liquidation price, the rest is a fee."""
        price = position.liquidation_price
        if price is None:  # only reachable past bankruptcy without a liquidation price
            price = position.entry_price - position.side * position.isolated_margin / position.qty
        clearance = position.isolated_margin + position.side * position.qty * (
            price - position.entry_price
        )
        self._book(position, ts, price, clearance, f"{position.trade_id}:liquidation",
                   ExitReason.LIQUIDATION, events)

    def _book(self, position: Position, ts: int, price: float, exit_fee: float, order_id: str,
              reason: ExitReason, events: BarEvents) -> None:
        del self._positions[position.symbol]
        fees = position.fees + exit_fee
        pnl = position.side * position.qty * (price - position.entry_price) + position.funding - fees
        events.fills.append(
            Fill(ts, order_id, position.trade_id, position.symbol, -position.side, position.qty,
                 price, exit_fee, reason.value)
        )
        events.closed.append(
            ClosedTrade(
                trade_id=position.trade_id, symbol=position.symbol, side=position.side,
                entry_ts=position.entry_ts, exit_ts=ts, entry_price=position.entry_price,
                exit_price=price, qty=position.qty, leverage=position.leverage, fees=fees,
                funding=position.funding, pnl=pnl, mode=position.mode, state=position.state,
                exit_reason=reason, risk_fraction=position.risk_fraction,
            )
        )


def _first_crossing(prices: np.ndarray, i: int, limit: int, direction: int, level: float) -> int:
    """The first bar in ``[i, limit)`` whose price reaches ``level`` (``direction`` +1: at or above,
    -1: at or below), or NEVER; looked for in growing chunks, as most are found soon."""
    start, size = i, 64
    end_of_data = min(limit, len(prices))
    while start < end_of_data:
        stop = min(end_of_data, start + size)
        chunk = prices[start:stop]
        hits = np.flatnonzero(chunk >= level if direction > 0 else chunk <= level)
        if hits.size:
            return start + int(hits[0])
        start, size = stop, size * 4
    return NEVER


def _check_level(order_id: str, name: str, price: float | None) -> None:
    if price is not None and not (math.isfinite(price) and price > 0):
        raise ExchangeError(f"order {order_id}: {name} must be a positive price, got {price}")
