"""Binance's signed side through ccxt: orders by client id, positions, balances, trades and funding.

Every call goes through ``BinanceClient`` (ccxt errors translated, retried per the connection's
policy) except sending an order: a request that timed out or met a 5xx may have been carried out, so
it is never simply repeated. The exchange is asked for the order by its client id first, and it is
sent again only when the exchange has no such order. A refusal because the client id is taken
(USDT-M -4116, spot -2010 "Duplicate order sent.") is answered the same way: the order already
there is the one that counts.

USDT-M stops and targets are conditional orders, which Binance serves from its algo-order endpoints
(``/fapi/v1/algoOrder``); ccxt routes them there when the order carries a trigger price.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from components.exchange.ccxt_client import BinanceClient, RetryPolicy
from core.errors import ExchangeError, ExchangeUnavailable

ORDER_MISSING = -2013  # Order does not exist.
UNKNOWN_ORDER = -2011  # Unknown order sent (a cancel of what is no longer open)
DUPLICATE_ID = -4116  # USDT-M: ClientOrderId is duplicated.
SPOT_REJECTED = -2010  # spot: NEW_ORDER_REJECTED, "Duplicate order sent." among others
WOULD_TRIGGER = -2021  # USDT-M: Order would immediately trigger.
MARGIN_TYPE_SET = -4046  # USDT-M: No need to change margin type.
QUOTE = "USDT"
log = logging.getLogger("ratchet.exchange")


def binance_code(exc: BaseException) -> int | None:
    """Binance's error code carried by a translated error (from the ccxt error it was raised from)."""
    for text in (str(exc.__cause__ or ""), str(exc)):
        found = re.search(r'"code"\s*:\s*(-?\d+)', text) or re.search(r"Binance code (-?\d+)", text)
        if found:
            return int(found.group(1))
    return None


def binance_message(exc: BaseException) -> str:
    found = re.search(r"\{.*\}", str(exc.__cause__ or ""))
    if found:
        try:
            return str(json.loads(found.group(0)).get("msg", ""))
        except ValueError:
            pass
    return ""


@dataclass(frozen=True, slots=True)
class OrderState:
    """What the exchange says of one order."""

    symbol: str
    client_id: str
    exchange_id: str | None
    status: str  # open | closed | canceled | expired | rejected | missing
    filled: float = 0.0
    average: float | None = None
    ts: int | None = None
    triggered_order_id: str | None = None  # a conditional order's market order, once it triggered
    trigger_price: float | None = None
    side: str = ""
    amount: float = 0.0

    @property
    def final(self) -> bool:
        return self.status in ("closed", "canceled", "expired", "rejected")


@dataclass(frozen=True, slots=True)
class Execution:
    """One order's trades, summed: quantity, average price, fees in USDT, realized pnl, last trade time."""

    qty: float
    price: float
    fee: float  # in USDT
    fee_in_base: float  # spot buys pay their fee in the asset bought: the position holds that much less
    realized: float
    ts: int


@dataclass(frozen=True, slots=True)
class ExchangePosition:
    """A USDT-M position as the exchange holds it."""

    symbol: str
    amt: float  # signed: + long, - short
    entry: float
    isolated_wallet: float
    liquidation: float | None


@dataclass(frozen=True, slots=True)
class ForeignTrade:
    """A trade on the exchange: which order, which side, how much, at what price and fee."""

    order_id: str
    side: int
    qty: float
    price: float
    fee: float
    ts: int


class BinanceAccount:
    """The signed calls a live run makes, for one market kind ('spot' or 'futures')."""

    def __init__(self, client: BinanceClient, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self.client = client
        self.kind = client.kind
        self.exchange = client.exchange
        policy = client.policy
        self._placing = BinanceClient(client.exchange, client.kind, RetryPolicy(0, policy.backoff_s,
                                                                                policy.max_backoff_s))
        self._sleep = sleep

    @property
    def futures(self) -> bool:
        return self.kind == "futures"

    # -- set-up ----------------------------------------------------------------------------------
    def check_keys(self) -> None:
        """One signed request: raises AuthenticationFailed when the keys are refused."""
        self.client.call("account", self.exchange.fetch_balance)

    def leverage_tiers(self, symbols: list[str]) -> dict[str, list[dict[str, Any]]]:
        if not self.futures:
            return {}
        return self.client.call("leverage brackets", lambda: self.exchange.fetch_leverage_tiers(symbols))

    def set_isolated(self, symbol: str) -> None:
        """Isolated margin for ``symbol``; already isolated is fine (a restart, or set by hand)."""
        try:
            self.client.call(f"margin type {symbol}", lambda: self.exchange.set_margin_mode("isolated", symbol))
        except ExchangeError as exc:
            if binance_code(exc) != MARGIN_TYPE_SET:
                raise

    def set_leverage(self, symbol: str, leverage: int) -> None:
        self.client.call(f"leverage {symbol}", lambda: self.exchange.set_leverage(leverage, symbol))

    # -- orders ----------------------------------------------------------------------------------
    def place_market(self, symbol: str, side: int, qty: float | None, client_id: str, *, reduce_only: bool = False,
                     quote_qty: float | None = None) -> OrderState:
        """A market order, sent at most once under ``client_id`` (``quote_qty``: a spot buy spending that much)."""
        params: dict[str, Any] = {"clientOrderId": client_id}
        if reduce_only and self.futures:
            params["reduceOnly"] = True
        if quote_qty is not None:
            params["cost"] = quote_qty
        what = f"market {_side(side)} {symbol} ({client_id})"
        return self._place(symbol, client_id, False, what, lambda: self.exchange.create_order(
            symbol, "market", _side(side), qty, None, params))

    def place_protection(self, symbol: str, side: int, qty: float, trigger: float, client_id: str, kind: str, *,
                         working_type: str = "CONTRACT_PRICE", limit: float | None = None) -> OrderState:
        """A reduce-only STOP_MARKET / TAKE_PROFIT_MARKET (USDT-M), or a STOP_LOSS_LIMIT sell (spot)."""
        key = "stopLossPrice" if kind == "stop_loss" else "takeProfitPrice"
        params: dict[str, Any] = {"clientOrderId": client_id, key: trigger}
        if self.futures:
            params |= {"reduceOnly": True, "workingType": working_type}
            order_type, price = "market", None
        else:
            order_type, price = "limit", limit
        what = f"{kind} {_side(side)} {symbol} at {trigger:g} ({client_id})"
        return self._place(symbol, client_id, self.futures, what, lambda: self.exchange.create_order(
            symbol, order_type, _side(side), qty, price, params))

    def _place(self, symbol: str, client_id: str, conditional: bool, what: str,
               send: Callable[[], dict[str, Any]]) -> OrderState:
        policy = self.client.policy
        attempt = 0
        while True:
            try:
                return self._state(symbol, self._placing.call(what, send), conditional)
            except ExchangeUnavailable as failure:  # it may have been carried out: ask before sending again
                found = self.order(symbol, client_id, conditional=conditional)
                if found.status != "missing":
                    return found
                wait = policy.wait_s(failure, attempt)
                if attempt >= policy.retries or wait > policy.max_backoff_s:
                    raise
                log.info("%s; %s not found on the exchange, sent again in %.3g s", failure, client_id, wait)
                self._sleep(wait)
                attempt += 1
            except ExchangeError as refused:
                code = binance_code(refused)
                duplicate = code == DUPLICATE_ID or (code == SPOT_REJECTED and "Duplicate" in binance_message(refused))
                if duplicate:
                    found = self.order(symbol, client_id, conditional=conditional)
                    if found.status != "missing":
                        return found
                raise

    def order(self, symbol: str, client_id: str, *, conditional: bool = False) -> OrderState:
        """The order sent under ``client_id``; status ``missing`` when the exchange has none."""
        params: dict[str, Any] = {"clientOrderId": client_id}
        if conditional:
            params["trigger"] = True
        try:
            reply = self.client.call(f"order {client_id}", lambda: self.exchange.fetch_order(None, symbol, params))
        except ExchangeError as exc:
            if binance_code(exc) == ORDER_MISSING:
                return OrderState(symbol, client_id, None, "missing")
            raise
        return self._state(symbol, reply, conditional)

    def order_by_id(self, symbol: str, exchange_id: str) -> dict[str, Any]:
        """The raw order (Binance's fields) with exchange id ``exchange_id``."""
        reply = self.client.call(f"order #{exchange_id}", lambda: self.exchange.fetch_order(exchange_id, symbol))
        return reply.get("info", {})

    def cancel(self, symbol: str, client_id: str, *, conditional: bool = False) -> bool:
        """Cancel; False when the exchange no longer has it open (filled, cancelled, expired, unknown)."""
        params: dict[str, Any] = {"clientOrderId": client_id}
        if conditional:
            params["trigger"] = True
        try:
            self.client.call(f"cancel {client_id}", lambda: self.exchange.cancel_order(None, symbol, params))
        except ExchangeError as exc:
            if binance_code(exc) in (UNKNOWN_ORDER, ORDER_MISSING):
                return False
            raise
        return True

    def open_orders(self, symbols: list[str]) -> list[OrderState]:
        """Every open order of these symbols, conditional ones included."""
        out: list[OrderState] = []
        for symbol in symbols:
            regular = self.client.call(f"open orders {symbol}", lambda s=symbol: self.exchange.fetch_open_orders(s))
            out += [self._state(symbol, o, False) for o in regular]
            if self.futures:
                algo = self.client.call(f"open conditional orders {symbol}", lambda s=symbol: (
                    self.exchange.fetch_open_orders(s, None, None, {"trigger": True})))
                out += [self._state(symbol, o, True) for o in algo]
        return out

    def _state(self, symbol: str, reply: dict[str, Any], conditional: bool) -> OrderState:
        info = reply.get("info") or {}
        if conditional and "algoStatus" in info:
            status = {"NEW": "open", "TRIGGERING": "open", "TRIGGERED": "closed", "FINISHED": "closed",
                      "CANCELED": "canceled", "EXPIRED": "expired", "REJECTED": "rejected"}.get(info["algoStatus"],
                                                                                               "open")
            actual = info.get("actualOrderId")
            return OrderState(symbol, str(info.get("clientAlgoId", reply.get("clientOrderId"))),
                              str(info.get("algoId")), status, ts=_int(info.get("updateTime")),
                              triggered_order_id=str(actual) if actual not in (None, "", "0") else None,
                              trigger_price=_float(info.get("triggerPrice")), side=str(info.get("side", "")).lower(),
                              amount=_float(info.get("quantity")) or 0.0)
        status = str(reply.get("status") or "open")
        return OrderState(symbol, str(reply.get("clientOrderId")), str(reply.get("id")), status,
                          float(reply.get("filled") or 0.0), _float(reply.get("average")),
                          _int(reply.get("lastTradeTimestamp") or reply.get("timestamp")),
                          trigger_price=_float(reply.get("triggerPrice")), side=str(reply.get("side") or ""),
                          amount=float(reply.get("amount") or 0.0))

    # -- what happened -----------------------------------------------------------------------------
    def execution(self, symbol: str, exchange_id: str) -> Execution | None:
        """An order's trades summed (None before its first trade)."""
        trades = self.client.call(f"trades of order #{exchange_id}", lambda: self.exchange.fetch_my_trades(
            symbol, None, None, {"orderId": exchange_id}))
        if not trades:
            return None
        base = self.exchange.market(symbol)["base"]
        qty = sum(float(t["amount"]) for t in trades)
        cost = sum(float(t["amount"]) * float(t["price"]) for t in trades)
        fee = fee_in_base = realized = 0.0
        for t in trades:
            paid = float((t.get("fee") or {}).get("cost") or 0.0)
            if (t.get("fee") or {}).get("currency") == base:
                fee_in_base += paid
                fee += paid * float(t["price"])
            else:
                fee += paid
            realized += float((t.get("info") or {}).get("realizedPnl") or 0.0)
        return Execution(qty, cost / qty, fee, fee_in_base, realized, max(int(t["timestamp"]) for t in trades))

    def trades_since(self, symbol: str, since: int) -> list[ForeignTrade]:
        """Every trade of ``symbol`` from ``since`` on, oldest first."""
        trades = self.client.call(f"trades {symbol}", lambda: self.exchange.fetch_my_trades(symbol, since))
        out = []
        for t in trades:
            fee = t.get("fee") or {}
            paid = float(fee.get("cost") or 0.0)
            if fee.get("currency") not in (None, QUOTE):
                paid *= float(t["price"])
            out.append(ForeignTrade(str(t["order"]), 1 if t["side"] == "buy" else -1, float(t["amount"]),
                                    float(t["price"]), paid, int(t["timestamp"])))
        return out

    def positions(self) -> dict[str, ExchangePosition]:
        """Open USDT-M positions by symbol."""
        rows = self.client.call("positions", self.exchange.fetch_positions)
        out = {}
        for row in rows:
            info = row.get("info") or {}
            amt = float(info.get("positionAmt") or 0.0)
            if amt == 0:
                continue
            liquidation = _float(info.get("liquidationPrice"))
            out[row["symbol"]] = ExchangePosition(row["symbol"], amt, float(info.get("entryPrice") or 0.0),
                                                  float(info.get("isolatedWallet") or 0.0),
                                                  liquidation if liquidation else None)
        return out

    def balances(self) -> dict[str, float]:
        """What the account holds: USDT-M the USDT outside isolated wallets (``crossWalletBalance``);
        spot every asset's free and locked amount, and ``USDT`` free."""
        reply = self.client.call("account", self.exchange.fetch_balance)
        info = reply.get("info") or {}
        if self.futures:
            asset = next((a for a in info.get("assets", []) if a.get("asset") == QUOTE), {})
            return {QUOTE: float(asset.get("crossWalletBalance") or 0.0)}
        out = {b["asset"]: float(b["free"]) + float(b["locked"]) for b in info.get("balances", [])}
        out[QUOTE] = next((float(b["free"]) for b in info.get("balances", []) if b["asset"] == QUOTE), 0.0)
        return out

    def income(self, kind: str, since: int) -> list[tuple[str, int, float]]:
        """USDT-M income rows of ``kind`` (FUNDING_FEE, INSURANCE_CLEAR...) from ``since``: (symbol, ms, amount)."""
        rows = self.client.call(f"income {kind}", lambda: self.exchange.fetch_funding_history(
            None, since, 1000, {"incomeType": kind}))
        return [(str(r["symbol"]), int(r["timestamp"]), float(r["amount"])) for r in rows]


def _side(side: int) -> str:
    return "buy" if side > 0 else "sell"


def _float(value: Any) -> float | None:
    if value in (None, ""):
        return None
    number = float(value)
    return number if number == number else None


def _int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)
