"""The loopback exchange's accounts and matching engine: what its signed endpoints act on.

A USDT-M futures account (one-way mode, isolated or cross margin) and a spot account, both matched
against the bundled candles on the exchange clock, by the sim exchange's rules
(``components/exchange/sim.py``), so a live stretch compares with paper:

* A market order fills at the open of the candle forming when it arrives: an order sent at a bar
  close fills at the next bar's open, as the sim fills it. Taker fees: 0.05 % futures (USDT), 0.10 %
  spot (the bought asset on a buy, USDT on a sell).
* Conditional orders (futures STOP_MARKET / TAKE_PROFIT_MARKET algo orders, spot STOP_LOSS_LIMIT)
  trigger on the high/low of each candle that closed after they were placed (the mark candles for
  ``workingType=MARK_PRICE``), gap-aware; a candle touching both a stop and a target takes the stop.
  A triggered reduce-only order with nothing left to reduce expires.
* Funding settles at each bundled settlement, at the mark candle's open, into the isolated wallet.
* Isolated positions are liquidated when the mark low/high reaches Binance's liquidation price
  (``components/exchange/margin.py`` with the brackets ``/fapi/v1/leverageBracket`` serves); a stop
  lying before it fills first. The wallet left at that price is an ``INSURANCE_CLEAR``.
* What a test injects: partial fills (the rest fills at the next candle's open), manual trades,
  transfers. Every order, trade and income row is kept for tests to compare with a ledger.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal

import numpy as np

from components.exchange.margin import BRACKETS_2024_10_24, Brackets, isolated_liquidation_price
from tests.support.binance import data
from tests.support.binance.clock import FakeClock
from tests.support.binance.data import SPECS, decimal

FUTURES_TAKER = 0.0005
SPOT_TAKER = 0.001
DEFAULT_LEVERAGE = 20


class Refused(Exception):
    """A request the exchange refuses: Binance's error code and message."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


def on_step(value: float, size: str) -> float:
    """``value`` rounded down to a lot size, as Binance truncates a quantity it computes."""
    return float(Decimal(repr(value)).quantize(Decimal(size).normalize(), rounding=ROUND_DOWN))


@dataclass
class Order:
    """A regular order (``/fapi/v1/order``, ``/api/v3/order``) as the exchange keeps it."""

    order_id: int
    client_id: str
    symbol: str  # market id: BTCUSDT
    side: str  # BUY | SELL
    type: str  # MARKET | STOP_LOSS_LIMIT | LIQUIDATION
    qty: float
    time: int
    price: float = 0.0  # limit price
    stop_price: float = 0.0
    reduce_only: bool = False
    status: str = "NEW"
    executed: float = 0.0
    quote: float = 0.0  # cumulative quote of the fills
    update_time: int = 0
    triggered: bool = False  # a spot stop-limit now working as a limit order
    rest_at: int | None = None  # a partial fill's remainder fills at this candle open

    @property
    def open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")

    @property
    def avg_price(self) -> float:
        return self.quote / self.executed if self.executed else 0.0


@dataclass
class AlgoOrder:
    """A USDT-M conditional order (``/fapi/v1/algoOrder``): it places a market order when triggered."""

    algo_id: int
    client_id: str
    symbol: str
    side: str
    type: str  # STOP_MARKET | TAKE_PROFIT_MARKET
    qty: float
    trigger_price: float
    working_type: str
    reduce_only: bool
    close_position: bool
    time: int
    status: str = "NEW"  # NEW | CANCELED | FINISHED | EXPIRED
    update_time: int = 0
    trigger_time: int = 0
    actual_order_id: int | None = None
    actual_price: float = 0.0


@dataclass
class Holding:
    """A futures position: signed amount, entry price, its wallet (isolated margin plus funding)."""

    symbol: str
    amt: float
    entry: float
    wallet: float
    isolated: bool
    leverage: int
    opened: int


@dataclass
class Candle:
    open: float
    high: float
    low: float
    close: float


class _Market:
    """One listed symbol's candles (and mark candles, funding) at the matching interval."""

    def __init__(self, kind: str, mid: str, interval: str) -> None:
        self.spec = SPECS[kind][mid]
        found = data.candles(kind, mid, interval)
        assert found is not None, f"no bundled {kind} {mid} {interval} candles"
        self.step = found.step
        self.candles = found
        self.mark = data.candles(kind, mid, interval, "mark") if kind == "futures" else None
        self.funding = data.funding(mid) if kind == "futures" else None

    def candle(self, start: int, series: str = "last") -> Candle | None:
        c = self.mark if series == "mark" and self.mark is not None else self.candles
        i = int(np.searchsorted(c.ts, start))
        if i >= len(c.ts) or int(c.ts[i]) != start:
            return None
        return Candle(float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]))

    def open_at(self, ts: int, series: str = "last") -> float:
        """The open of the candle forming at ``ts``: the price a market order gets then."""
        candle = self.candle(ts // self.step * self.step, series)
        if candle is None:
            raise Refused(-1013, "Market is closed.")
        return candle.open

    def settlements(self, after: int, until: int) -> list[tuple[int, float]]:
        """Funding settlements in ``(after, until]``."""
        if self.funding is None:
            return []
        ts, rate = self.funding
        lo, hi = int(np.searchsorted(ts, after, side="right")), int(np.searchsorted(ts, until, side="right"))
        return [(int(ts[k]), float(rate[k])) for k in range(lo, hi)]


class _Account:
    """What both accounts share: the clock, ids, the candle cursor, the record of orders and trades."""

    kind: str
    taker: float

    def __init__(self, clock: FakeClock, interval: str) -> None:
        self.clock = clock
        self.lock = threading.RLock()
        self.markets = {spec.id: _Market(self.kind, spec.id, interval) for spec in data.listed(self.kind)}
        self.step = next(iter(self.markets.values())).step
        self.orders: dict[int, Order] = {}
        self.trades: list[dict] = []
        self._ids = iter(range(8_000_000_001, 10**12))
        self._partial: list[float] = []  # fractions the next market orders fill at once
        self._until = clock.now() // self.step * self.step  # candle boundaries up to here are processed

    def market(self, mid: str) -> _Market:
        if mid not in self.markets:
            raise Refused(-1121, "Invalid symbol.")
        return self.markets[mid]

    def next_id(self) -> int:
        return next(self._ids)

    def partial_fills(self, fraction: float, times: int = 1) -> None:
        """The next ``times`` market orders fill ``fraction`` at once and the rest at the next candle's open."""
        self._partial += [fraction] * times

    def find(self, mid: str, order_id: str | None, client_id: str | None) -> Order:
        for order in self.orders.values():
            if order.symbol == mid and (str(order.order_id) == order_id or order.client_id == client_id):
                return order
        raise Refused(-2013, "Order does not exist.")

    def open_orders(self, mid: str | None) -> list[Order]:
        return [o for o in self.orders.values() if o.open and mid in (None, o.symbol)]

    # -- time -------------------------------------------------------------------------------------
    def advance(self) -> int:
        """Apply what happened on every candle boundary up to now; returns now."""
        now = self.clock.now()
        while self._until + self.step <= now:
            boundary = self._until + self.step
            for mid, market in self.markets.items():
                self._candle_closed(mid, market, boundary - self.step, boundary)
            for mid, market in self.markets.items():
                self._candle_opens(mid, market, boundary)
            self._until = boundary
        return now

    def _candle_closed(self, mid: str, market: _Market, start: int, end: int) -> None:
        raise NotImplementedError

    def _candle_opens(self, mid: str, market: _Market, start: int) -> None:
        for order in list(self.orders.values()):
            if order.symbol == mid and order.rest_at == start:
                order.rest_at = None
                self._execute(order, order.qty - order.executed, market.open_at(start), start)

    def _execute(self, order: Order, qty: float, price: float, ts: int) -> None:
        raise NotImplementedError

    def _market_fill(self, order: Order, now: int) -> None:
        """A market order fills at the forming candle's open; a partial-fill fault leaves the rest to the next."""
        market = self.market(order.symbol)
        price = market.open_at(now)
        qty = order.qty
        if self._partial:
            qty = on_step(qty * self._partial.pop(0), market.spec.step_size)
            order.rest_at = (now // self.step + 1) * self.step
        self._execute(order, qty, price, now)

    def _trade(self, order: Order, qty: float, price: float, fee: float, fee_asset: str, ts: int,
               realized: float = 0.0) -> dict:
        order.executed += qty
        order.quote += qty * price
        order.update_time = ts
        order.status = "FILLED" if order.executed >= order.qty - 1e-12 else "PARTIALLY_FILLED"
        trade = {"symbol": order.symbol, "id": self.next_id(), "orderId": order.order_id, "side": order.side,
                 "price": price, "qty": qty, "quoteQty": qty * price, "commission": fee,
                 "commissionAsset": fee_asset, "realizedPnl": realized, "time": ts,
                 "clientOrderId": order.client_id}
        self.trades.append(trade)
        return trade


class FuturesAccount(_Account):
    """A USDT-M account: cross wallet in USDT, positions with isolated wallets, algo orders."""

    kind = "futures"
    taker = FUTURES_TAKER

    def __init__(self, clock: FakeClock, usdt: float, interval: str = "1h") -> None:
        super().__init__(clock, interval)
        self.wallet = float(usdt)  # USDT outside isolated wallets
        self.positions: dict[str, Holding] = {}
        self.leverage: dict[str, int] = {}
        self.margin_type: dict[str, str] = {}
        self.algo_orders: dict[int, AlgoOrder] = {}
        self.income: list[dict] = []
        self._client_ids: set[str] = set()

    def brackets(self, mid: str) -> Brackets:
        return BRACKETS_2024_10_24[data.unified("futures", mid)]

    # -- account settings --------------------------------------------------------------------------
    def set_leverage(self, mid: str, leverage: int) -> dict:
        self.market(mid)
        cap = self.brackets(mid)[0].max_leverage
        if not 1 <= leverage <= cap:
            raise Refused(-4028, f"Leverage {leverage} is not valid")
        self.leverage[mid] = leverage
        return {"leverage": leverage, "maxNotionalValue": decimal(self._max_notional(mid, leverage)), "symbol": mid}

    def _max_notional(self, mid: str, leverage: int) -> float:
        return max(b.cap for b in self.brackets(mid) if b.max_leverage >= leverage)

    def set_margin_type(self, mid: str, margin_type: str) -> dict:
        self.market(mid)
        if margin_type not in ("ISOLATED", "CROSSED"):
            raise Refused(-1116, "Invalid marginType.")
        if self.margin_type.get(mid, "CROSSED") == margin_type:
            raise Refused(-4046, "No need to change margin type.")
        if mid in self.positions or self.open_orders(mid) or self.open_algo_orders(mid):
            raise Refused(-4048, "Margin type cannot be changed if there exists position.")
        self.margin_type[mid] = margin_type
        return {"code": 200, "msg": "success"}

    def transfer(self, amount: float) -> None:
        """Money moved in (or out) of the futures wallet by hand: a balance change the agent did not make."""
        with self.lock:
            now = self.advance()
            self.wallet += amount
            self._income(now, "", "TRANSFER", amount)

    # -- orders ------------------------------------------------------------------------------------
    def _claim_client_id(self, client_id: str) -> None:
        if client_id in self._client_ids:
            raise Refused(-4116, "ClientOrderId is duplicated.")
        self._client_ids.add(client_id)

    def new_order(self, mid: str, side: str, type_: str, qty: float, client_id: str, reduce_only: bool) -> Order:
        """A market order (the only regular type the agent sends); conditional types belong to the algo API."""
        with self.lock:
            now = self.advance()
            market = self.market(mid)
            if type_ in ("STOP_MARKET", "TAKE_PROFIT_MARKET", "STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"):
                raise Refused(-4120, "Order type not supported for this endpoint. Please use the Algo Order API "
                                     "endpoints instead.")
            if type_ != "MARKET":
                raise Refused(-1116, "Invalid orderType.")
            self._check_qty(market, qty)
            holding = self.positions.get(mid)
            if reduce_only and (holding is None or (holding.amt > 0) == (side == "BUY")):
                raise Refused(-2022, "ReduceOnly Order is rejected.")
            if not reduce_only:
                price = market.open_at(now)
                if qty * price < float(market.spec.min_notional):
                    raise Refused(-4164, f"Order's notional must be no smaller than {market.spec.min_notional} "
                                         "(unless you choose reduce only).")
            self._claim_client_id(client_id)
            order = Order(self.next_id(), client_id, mid, side, "MARKET", qty, now, reduce_only=reduce_only,
                          update_time=now)
            self.orders[order.order_id] = order
            try:
                self._market_fill(order, now)
            except Refused:
                order.status = "REJECTED" if order.executed == 0 else order.status
                if order.executed == 0:
                    del self.orders[order.order_id]
                    self._client_ids.discard(client_id)
                raise
            return order

    def _check_qty(self, market: _Market, qty: float) -> None:
        spec = market.spec
        if qty < float(spec.min_qty) - 1e-12:
            raise Refused(-4003, "Quantity less than or equal to zero." if qty <= 0 else "Quantity less than min qty.")
        if qty > float(spec.market_max_qty):
            raise Refused(-4005, "Quantity greater than max quantity.")
        if abs(qty / float(spec.step_size) - round(qty / float(spec.step_size))) > 1e-6:
            raise Refused(-1111, "Precision is over the maximum defined for this asset.")

    def new_algo_order(self, mid: str, side: str, type_: str, qty: float, trigger: float, client_id: str, *,
                       working_type: str, reduce_only: bool, close_position: bool) -> AlgoOrder:
        with self.lock:
            now = self.advance()
            market = self.market(mid)
            if type_ not in ("STOP_MARKET", "TAKE_PROFIT_MARKET"):
                raise Refused(-1116, "Invalid orderType.")
            if not close_position:
                self._check_qty(market, qty)
            tick = float(market.spec.tick_size)
            if trigger <= 0 or abs(trigger / tick - round(trigger / tick)) > 1e-6:
                raise Refused(-1111, "Precision is over the maximum defined for this asset.")
            price = market.open_at(now)
            rising = (type_ == "STOP_MARKET") == (side == "BUY")  # triggers when the price rises to it
            if (rising and trigger <= price) or (not rising and trigger >= price):
                raise Refused(-2021, "Order would immediately trigger.")
            self._claim_client_id(client_id)
            order = AlgoOrder(self.next_id(), client_id, mid, side, type_, qty, trigger, working_type, reduce_only,
                              close_position, now, update_time=now)
            self.algo_orders[order.algo_id] = order
            return order

    def find_algo(self, algo_id: str | None, client_id: str | None) -> AlgoOrder:
        for order in self.algo_orders.values():
            if str(order.algo_id) == algo_id or order.client_id == client_id:
                return order
        raise Refused(-2013, "Order does not exist.")

    def cancel_algo(self, algo_id: str | None, client_id: str | None) -> AlgoOrder:
        with self.lock:
            self.advance()
            try:
                order = self.find_algo(algo_id, client_id)
            except Refused:
                raise Refused(-2011, "Unknown order sent.") from None
            if order.status != "NEW":
                raise Refused(-2011, "Unknown order sent.")
            order.status, order.update_time = "CANCELED", self.clock.now()
            return order

    def open_algo_orders(self, mid: str | None) -> list[AlgoOrder]:
        return [o for o in self.algo_orders.values() if o.status == "NEW" and mid in (None, o.symbol)]

    def manual_trade(self, mid: str, side: str, qty: float) -> Order:
        """A trade made by hand on the exchange (not through the agent), at the forming candle's open."""
        with self.lock:
            now = self.advance()
            order = Order(self.next_id(), f"web_{self.next_id()}", mid, side, "MARKET", qty, now, update_time=now)
            self.orders[order.order_id] = order
            self._execute(order, qty, self.market(mid).open_at(now), now)
            return order

    # -- fills -------------------------------------------------------------------------------------
    def _execute(self, order: Order, qty: float, price: float, ts: int) -> None:
        sign = 1 if order.side == "BUY" else -1
        holding = self.positions.get(order.symbol)
        if holding is not None and (holding.amt > 0) != (sign > 0):
            closing = min(qty, abs(holding.amt))
            self._reduce(order, holding, closing, price, ts)
            qty -= closing
            if order.reduce_only:
                qty = 0.0
        if qty > 1e-12:
            self._increase(order, qty, price, ts)

    def _increase(self, order: Order, qty: float, price: float, ts: int) -> None:
        mid = order.symbol
        leverage = self.leverage.get(mid, DEFAULT_LEVERAGE)
        notional = qty * price
        if notional > self._max_notional(mid, leverage):
            raise Refused(-2027, "Exceeded the maximum allowable position at current leverage.")
        margin, fee = notional / leverage, notional * self.taker
        if margin + fee > self.wallet:
            raise Refused(-2019, "Margin is insufficient.")
        self.wallet -= margin + fee
        holding = self.positions.get(mid)
        sign = 1 if order.side == "BUY" else -1
        if holding is None:
            holding = Holding(mid, 0.0, price, 0.0, self.margin_type.get(mid, "CROSSED") == "ISOLATED", leverage, ts)
            self.positions[mid] = holding
        size = abs(holding.amt)
        holding.entry = (holding.entry * size + price * qty) / (size + qty)
        holding.amt += sign * qty
        holding.wallet += margin
        self._trade(order, qty, price, fee, "USDT", ts)
        self._income(ts, mid, "COMMISSION", -fee)

    def _reduce(self, order: Order, holding: Holding, qty: float, price: float, ts: int) -> None:
        size = abs(holding.amt)
        side = 1 if holding.amt > 0 else -1
        pnl = side * qty * (price - holding.entry)
        released = holding.wallet * qty / size
        fee = qty * price * self.taker
        self.wallet += released + pnl - fee
        holding.wallet -= released
        holding.amt -= side * qty
        if abs(holding.amt) < 1e-12:
            del self.positions[holding.symbol]
        self._trade(order, qty, price, fee, "USDT", ts, realized=pnl)
        self._income(ts, holding.symbol, "REALIZED_PNL", pnl)
        self._income(ts, holding.symbol, "COMMISSION", -fee)

    def _income(self, ts: int, mid: str, kind: str, amount: float) -> None:
        self.income.append({"symbol": mid, "incomeType": kind, "income": amount, "asset": "USDT", "time": ts,
                            "info": "", "tranId": self.next_id(), "tradeId": ""})

    # -- candles -----------------------------------------------------------------------------------
    def _candle_opens(self, mid: str, market: _Market, start: int) -> None:
        for ts, rate in market.settlements(start - self.step, start):
            holding = self.positions.get(mid)
            if holding is None:
                continue
            mark = market.open_at(start, "mark")
            amount = -(1 if holding.amt > 0 else -1) * abs(holding.amt) * mark * rate
            if holding.isolated:
                holding.wallet += amount
            else:
                self.wallet += amount
            self._income(ts, mid, "FUNDING_FEE", amount)
        super()._candle_opens(mid, market, start)

    def _candle_closed(self, mid: str, market: _Market, start: int, end: int) -> None:
        last, mark = market.candle(start), market.candle(start, "mark")
        if last is None:
            return
        mark = mark or last
        holding = self.positions.get(mid)
        if holding is not None and holding.opened >= end:
            holding = None
        waiting = [o for o in self.open_algo_orders(mid) if o.time < end]
        stop = self._first_hit([o for o in waiting if o.type == "STOP_MARKET"], last, mark)
        target = self._first_hit([o for o in waiting if o.type == "TAKE_PROFIT_MARKET"], last, mark)
        liquidation = self.liquidation_price(holding) if holding is not None else None
        side = 0 if holding is None else (1 if holding.amt > 0 else -1)
        liquidated = liquidation is not None and side * ((mark.low if side > 0 else mark.high) - liquidation) <= 0
        if liquidated and side * (mark.open - liquidation) <= 0:
            self._liquidate(holding, liquidation, end)
            return
        if stop is not None and not (liquidated and side * (stop.trigger_price - liquidation) <= 0):
            self._trigger(stop, last, end)
        elif liquidated:
            self._liquidate(holding, liquidation, end)
        elif target is not None:
            self._trigger(target, last, end)

    def _first_hit(self, orders: list[AlgoOrder], last: Candle, mark: Candle) -> AlgoOrder | None:
        for order in orders:
            candle = mark if order.working_type == "MARK_PRICE" else last
            rising = (order.type == "STOP_MARKET") == (order.side == "BUY")
            if (rising and candle.high >= order.trigger_price) or (not rising and candle.low <= order.trigger_price):
                return order
        return None

    def _trigger(self, algo: AlgoOrder, last: Candle, end: int) -> None:
        """The conditional order places its market order: gap-aware, at the open when it is beyond the level."""
        rising = (algo.type == "STOP_MARKET") == (algo.side == "BUY")
        price = max(last.open, algo.trigger_price) if rising else min(last.open, algo.trigger_price)
        algo.trigger_time = algo.update_time = end
        holding = self.positions.get(algo.symbol)
        reduces = holding is not None and (holding.amt > 0) != (algo.side == "BUY")
        qty = abs(holding.amt) if holding is not None and algo.close_position else algo.qty
        if (algo.reduce_only or algo.close_position) and not reduces:
            algo.status = "EXPIRED"
            return
        order = Order(self.next_id(), algo.client_id, algo.symbol, algo.side, "MARKET", qty, end,
                      reduce_only=algo.reduce_only or algo.close_position, update_time=end)
        self.orders[order.order_id] = order
        try:
            self._execute(order, qty, price, end)
        except Refused:
            order.status = "EXPIRED"
        algo.status, algo.actual_order_id, algo.actual_price = "FINISHED", order.order_id, order.avg_price

    def liquidation_price(self, holding: Holding) -> float | None:
        if not holding.isolated:
            return None
        side = 1 if holding.amt > 0 else -1
        return isolated_liquidation_price(self.brackets(holding.symbol), side, abs(holding.amt), holding.entry,
                                          holding.wallet)

    def _liquidate(self, holding: Holding, price: float, ts: int) -> None:
        """The liquidation engine closes the position at its liquidation price; the wallet left is cleared."""
        side = 1 if holding.amt > 0 else -1
        qty = abs(holding.amt)
        order = Order(self.next_id(), f"autoclose-{ts}", holding.symbol, "SELL" if side > 0 else "BUY",
                      "LIQUIDATION", qty, ts, reduce_only=True, update_time=ts)
        self.orders[order.order_id] = order
        pnl = side * qty * (price - holding.entry)
        clearance = holding.wallet + pnl
        del self.positions[holding.symbol]
        self._trade(order, qty, price, 0.0, "USDT", ts, realized=pnl)
        self._income(ts, holding.symbol, "REALIZED_PNL", pnl)
        self._income(ts, holding.symbol, "INSURANCE_CLEAR", -clearance)

    # -- views -------------------------------------------------------------------------------------
    def mark_price(self, mid: str, now: int) -> float:
        return self.market(mid).open_at(now, "mark")

    def isolated_wallets(self) -> float:
        return sum(h.wallet for h in self.positions.values())


class SpotAccount(_Account):
    """A spot account: free and locked balances per asset; stop-limit orders lock what they sell."""

    kind = "spot"
    taker = SPOT_TAKER

    def __init__(self, clock: FakeClock, balances: dict[str, float], interval: str = "1h") -> None:
        super().__init__(clock, interval)
        self.free: dict[str, float] = dict(balances)
        self.locked: dict[str, float] = {}

    def _assets(self, mid: str) -> tuple[str, str]:
        spec = self.market(mid).spec
        return spec.base, spec.quote

    def new_order(self, mid: str, side: str, type_: str, qty: float | None, client_id: str, *,
                  quote_qty: float | None = None, price: float = 0.0, stop_price: float = 0.0) -> Order:
        with self.lock:
            now = self.advance()
            market = self.market(mid)
            if any(o.client_id == client_id and o.open for o in self.orders.values()):
                raise Refused(-2010, "Duplicate order sent.")
            if type_ == "MARKET":
                mark = market.open_at(now)
                if qty is None:
                    qty = on_step((quote_qty or 0.0) / mark, market.spec.step_size)
                self._check(market, qty, mark)
                order = Order(self.next_id(), client_id, mid, side, "MARKET", qty, now, update_time=now)
                self._require(mid, side, qty, mark)
                self.orders[order.order_id] = order
                self._market_fill(order, now)
                return order
            if type_ != "STOP_LOSS_LIMIT" or side != "SELL":
                raise Refused(-1116, "Invalid orderType.")
            assert qty is not None
            self._check(market, qty, price)
            if stop_price >= market.open_at(now):
                raise Refused(-2010, "Stop price would trigger immediately.")
            base, _ = self._assets(mid)
            if self.free.get(base, 0.0) < qty - 1e-12:
                raise Refused(-2010, "Account has insufficient balance for requested action.")
            self.free[base] -= qty
            self.locked[base] = self.locked.get(base, 0.0) + qty
            order = Order(self.next_id(), client_id, mid, side, type_, qty, now, price=price, stop_price=stop_price,
                          update_time=now)
            self.orders[order.order_id] = order
            return order

    def _check(self, market: _Market, qty: float, price: float) -> None:
        spec = market.spec
        if qty < float(spec.min_qty) - 1e-12 or qty > float(spec.max_qty):
            raise Refused(-1013, "Filter failure: LOT_SIZE")
        if abs(qty / float(spec.step_size) - round(qty / float(spec.step_size))) > 1e-6:
            raise Refused(-1013, "Filter failure: LOT_SIZE")
        if qty * price < float(spec.min_notional):
            raise Refused(-1013, "Filter failure: NOTIONAL")

    def _require(self, mid: str, side: str, qty: float, price: float) -> None:
        base, quote = self._assets(mid)
        need, asset = (qty * price, quote) if side == "BUY" else (qty, base)
        if self.free.get(asset, 0.0) < need - 1e-9:
            raise Refused(-2010, "Account has insufficient balance for requested action.")

    def cancel(self, mid: str, order_id: str | None, client_id: str | None) -> Order:
        with self.lock:
            self.advance()
            try:
                order = self.find(mid, order_id, client_id)
            except Refused:
                raise Refused(-2011, "Unknown order sent.") from None
            if not order.open:
                raise Refused(-2011, "Unknown order sent.")
            self._unlock(order)
            order.status, order.update_time = "CANCELED", self.clock.now()
            return order

    def _unlock(self, order: Order) -> None:
        if order.type == "STOP_LOSS_LIMIT":
            base, _ = self._assets(order.symbol)
            rest = order.qty - order.executed
            self.locked[base] -= rest
            self.free[base] = self.free.get(base, 0.0) + rest

    def manual_trade(self, mid: str, side: str, qty: float) -> Order:
        with self.lock:
            now = self.advance()
            order = Order(self.next_id(), f"web_{self.next_id()}", mid, side, "MARKET", qty, now, update_time=now)
            self.orders[order.order_id] = order
            self._execute(order, qty, self.market(mid).open_at(now), now)
            return order

    def _execute(self, order: Order, qty: float, price: float, ts: int) -> None:
        base, quote = self._assets(order.symbol)
        if order.side == "BUY":
            fee = qty * self.taker
            self.free[quote] = self.free.get(quote, 0.0) - qty * price
            self.free[base] = self.free.get(base, 0.0) + qty - fee
            self._trade(order, qty, price, fee, base, ts)
        else:
            fee = qty * price * self.taker
            source = self.locked if order.type == "STOP_LOSS_LIMIT" else self.free
            source[base] = source.get(base, 0.0) - qty
            self.free[quote] = self.free.get(quote, 0.0) + qty * price - fee
            self._trade(order, qty, price, fee, quote, ts)

    def _candle_closed(self, mid: str, market: _Market, start: int, end: int) -> None:
        candle = market.candle(start)
        if candle is None:
            return
        for order in [o for o in self.open_orders(mid) if o.type == "STOP_LOSS_LIMIT" and o.time < end]:
            if not order.triggered:
                if candle.low > order.stop_price:
                    continue
                order.triggered = True
                price = max(order.price, min(candle.open, order.stop_price))
            else:
                price = max(order.price, candle.open)
            if candle.high >= price:
                self._execute(order, order.qty - order.executed, price, end)

    def total(self, asset: str) -> float:
        return self.free.get(asset, 0.0) + self.locked.get(asset, 0.0)


def finite(value: float) -> str:
    """A number as Binance writes it in JSON strings."""
    return decimal(float(value)) if math.isfinite(value) else "0"


@dataclass
class Keys:
    """The API keys the exchange accepts: key -> secret. Revoking one makes its requests fail with -2015."""

    accepted: dict[str, str] = field(default_factory=dict)

    def revoke(self, api_key: str) -> None:
        self.accepted.pop(api_key, None)
