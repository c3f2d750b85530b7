"""Binance's signed endpoints, as ccxt calls them, over the loopback exchange's accounts.

Every request is checked as Binance checks it: the ``X-MBX-APIKEY`` header names a known key
(-2014 when absent or malformed, -2015 when unknown or revoked), ``signature`` is the HMAC-SHA256
of the query string and body as sent (without the signature itself) under that key's secret (-1022),
and ``timestamp`` lies within ``recvWindow`` (default 5000 ms, at most 60000) of the wall clock
(-1021). The exchange clock is simulated for market data; a signature's freshness is real time.

    venue = Venue.install(server, api_key="k", secret="s", usdt=10_000)
    venue.futures.manual_trade("BTCUSDT", "SELL", 0.01)   # what the agent did not do
    venue.lose_reply("/fapi/v1/order")                     # processed, but the answer never arrives
    release = venue.hold("/fapi/v1/order", carried_out=False)  # held (a test kills the client), never done

USDT-M: /fapi/v2|v3/account, /fapi/v2|v3/balance, /fapi/v2|v3/positionRisk, /fapi/v1/leverage,
/fapi/v1/marginType, /fapi/v1/leverageBracket, /fapi/v1/order (POST, GET, DELETE), /fapi/v1/openOrders,
/fapi/v1/algoOrder (POST, GET, DELETE: STOP_MARKET and TAKE_PROFIT_MARKET go there since Binance moved
conditional orders to its algo service), /fapi/v1/openAlgoOrders, /fapi/v1/userTrades, /fapi/v1/income.
Spot: /api/v3/account, /api/v3/order (POST, GET, DELETE), /api/v3/openOrders, /api/v3/myTrades.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.support.binance.data import decimal
from tests.support.binance.matching import (
    AlgoOrder,
    FuturesAccount,
    Keys,
    Order,
    Refused,
    SpotAccount,
    finite,
)
from tests.support.binance.server import FakeBinance, Handler, Reply, Request, binance_error

MAX_RECV_WINDOW = 60_000


@dataclass
class LostReply:
    """A request the exchange processes whose answer never reaches the client (a 5xx, or a stall)."""

    path: str
    method: str
    times: int
    status: int = 503
    stall_s: float = 0.0
    seen: int = 0


@dataclass
class Hold:
    """The next matching request waits until released; it is carried out (then answered) or refused with a 503."""

    path: str
    method: str
    carried_out: bool
    release: threading.Event = field(default_factory=threading.Event)
    taken: bool = False


@dataclass
class Venue:
    """The signed side of one loopback exchange: keys, a futures and a spot account."""

    server: FakeBinance
    keys: Keys
    futures: FuturesAccount
    spot: SpotAccount
    lost: list[LostReply] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def install(cls, server: FakeBinance, *, api_key: str, secret: str, usdt: float = 10_000.0,
                spot: dict[str, float] | None = None, interval: str = "1h") -> Venue:
        venue = cls(server, Keys({api_key: secret}), FuturesAccount(server.clock, usdt, interval),
                    SpotAccount(server.clock, spot if spot is not None else {"USDT": usdt}, interval))
        for (method, path), handler in _routes().items():
            server.routes[(method, path)] = venue._signed(handler)
        return venue

    def lose_reply(self, path: str, *, method: str = "POST", times: int = 1, status: int = 503,
                   stall_s: float = 0.0) -> LostReply:
        """The next ``times`` matching requests are carried out, then answered ``status`` (or after ``stall_s``)."""
        lost = LostReply(path, method, times, status, stall_s)
        with self._lock:
            self.lost.append(lost)
        return lost

    def hold(self, path: str, *, carried_out: bool, method: str = "POST") -> threading.Event:
        """Hold the next matching request until the returned event is set: carried out first (the client
        never hears of it: killed between send and record), or not at all (killed before it was sent)."""
        hold = Hold(path, method, carried_out)
        with self._lock:
            self.holds.append(hold)
        return hold.release

    def _take_hold(self, request: Request) -> Hold | None:
        with self._lock:
            for hold in self.holds:
                if not hold.taken and hold.path == request.path and hold.method == request.method:
                    hold.taken = True
                    return hold
        return None

    def _wait(self, hold: Hold) -> None:
        while not hold.release.wait(0.05) and not self.server.closing.is_set():
            pass

    def _signed(self, handler: Callable[[Venue, Request], Any]) -> Handler:
        def serve(server: FakeBinance, request: Request) -> Reply:
            refusal = self._authenticate(request)
            if refusal is not None:
                return refusal
            hold = self._take_hold(request)
            if hold is not None and not hold.carried_out:
                self._wait(hold)
                return Reply("", 503)
            try:
                reply = Reply(handler(self, request))
            except Refused as exc:
                reply = binance_error(exc.code, exc.msg, exc.status)
            if hold is not None:
                self._wait(hold)
            lost = self._take_lost(request)
            if lost is not None:
                if lost.stall_s:
                    time.sleep(lost.stall_s)
                return Reply("", lost.status)
            return reply

        return serve

    def _take_lost(self, request: Request) -> LostReply | None:
        with self._lock:
            for lost in self.lost:
                if lost.path == request.path and lost.method == request.method and lost.seen < lost.times:
                    lost.seen += 1
                    return lost
        return None

    def _authenticate(self, request: Request) -> Reply | None:
        headers = {k.lower(): v for k, v in request.headers.items()}
        api_key = headers.get("x-mbx-apikey", "")
        if not api_key or not api_key.isprintable() or " " in api_key:
            return binance_error(-2014, "API-key format invalid.", 401)
        secret = self.keys.accepted.get(api_key)
        if secret is None:
            return binance_error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        signed, signature = _unsigned(request)
        if signature is None:
            return binance_error(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        expected = hmac.new(secret.encode(), signed.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature.lower()):
            return binance_error(-1022, "Signature for this request is not valid.")
        stamp, window = request.params.get("timestamp", ""), request.params.get("recvWindow", "5000")
        if not stamp.isdigit():
            return binance_error(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
        if not window.isdigit() or int(window) > MAX_RECV_WINDOW:
            return binance_error(-1131, "recvWindow must be less than 60000")
        wall = int(time.time() * 1000)
        if int(stamp) >= wall + 1000 or wall - int(stamp) > int(window):
            return binance_error(-1021, "Timestamp for this request is outside of the recvWindow.")
        return None


def _unsigned(request: Request) -> tuple[str, str | None]:
    """What the signature covers (query string then body, as sent, the signature taken out) and the signature."""
    signature = None
    parts = []
    for raw in (request.query, request.body):
        kept = []
        for pair in raw.split("&") if raw else []:
            if pair.startswith("signature="):
                signature = pair[len("signature="):]
            else:
                kept.append(pair)
        parts.append("&".join(kept))
    return "".join(parts), signature


# -- parameters ---------------------------------------------------------------------------------
def _need(request: Request, name: str) -> str:
    value = request.params.get(name)
    if not value:
        raise Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _number(request: Request, name: str, default: float | None = None) -> float:
    raw = request.params.get(name)
    if raw is None:
        if default is None:
            raise Refused(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return default
    try:
        return float(raw)
    except ValueError:
        raise Refused(-1100, f"Illegal characters found in parameter '{name}'.") from None


def _flag(request: Request, name: str) -> bool:
    return request.params.get(name, "false").lower() == "true"


def _window(request: Request, rows: list[dict], *, time_key: str, default_limit: int, max_limit: int) -> list[dict]:
    start, end = request.params.get("startTime"), request.params.get("endTime")
    limit = int(request.params.get("limit") or default_limit)
    limit = min(max(limit, 1), max_limit)
    picked = [r for r in rows
              if (start is None or r[time_key] >= int(start)) and (end is None or r[time_key] <= int(end))]
    return picked[:limit] if start is not None else picked[-limit:]


# -- USDT-M ---------------------------------------------------------------------------------------
def _futures_order(o: Order) -> dict:
    return {"orderId": o.order_id, "symbol": o.symbol, "status": o.status, "clientOrderId": o.client_id,
            "price": "0", "avgPrice": finite(o.avg_price), "origQty": finite(o.qty), "executedQty": finite(o.executed),
            "cumQty": finite(o.executed), "cumQuote": finite(o.quote), "timeInForce": "GTC", "type": o.type,
            "reduceOnly": o.reduce_only, "closePosition": False, "side": o.side, "positionSide": "BOTH",
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": o.type,
            "priceMatch": "NONE", "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": o.time,
            "updateTime": o.update_time}


def _algo_order(o: AlgoOrder) -> dict:
    out = {"algoId": o.algo_id, "clientAlgoId": o.client_id, "algoType": "CONDITIONAL", "orderType": o.type,
           "symbol": o.symbol, "side": o.side, "positionSide": "BOTH", "timeInForce": "GTC",
           "quantity": finite(o.qty), "algoStatus": o.status, "triggerPrice": finite(o.trigger_price),
           "price": "0", "icebergQuantity": None, "selfTradePreventionMode": "EXPIRE_MAKER",
           "workingType": o.working_type, "priceMatch": "NONE", "closePosition": o.close_position,
           "priceProtect": False, "reduceOnly": o.reduce_only, "createTime": o.time, "updateTime": o.update_time,
           "triggerTime": o.trigger_time, "goodTillDate": 0}
    if o.actual_order_id is not None:
        out |= {"actualOrderId": str(o.actual_order_id), "actualPrice": finite(o.actual_price)}
    return out


def futures_new_order(venue: Venue, request: Request) -> dict:
    order = venue.futures.new_order(_need(request, "symbol"), _need(request, "side"), _need(request, "type"),
                                    _number(request, "quantity", 0.0), request.params.get("newClientOrderId", ""),
                                    _flag(request, "reduceOnly"))
    return _futures_order(order)


def futures_query_order(venue: Venue, request: Request) -> dict:
    account = venue.futures
    with account.lock:
        account.advance()
        order = account.find(_need(request, "symbol"), request.params.get("orderId"),
                             request.params.get("origClientOrderId"))
        return _futures_order(order)


def futures_cancel_order(venue: Venue, request: Request) -> dict:
    account = venue.futures
    with account.lock:
        account.advance()
        try:
            order = account.find(_need(request, "symbol"), request.params.get("orderId"),
                                 request.params.get("origClientOrderId"))
        except Refused:
            raise Refused(-2011, "Unknown order sent.") from None
        if not order.open:
            raise Refused(-2011, "Unknown order sent.")
        order.status, order.update_time = "CANCELED", account.clock.now()
        return _futures_order(order)


def futures_open_orders(venue: Venue, request: Request) -> list[dict]:
    account = venue.futures
    with account.lock:
        account.advance()
        return [_futures_order(o) for o in account.open_orders(request.params.get("symbol"))]


def futures_new_algo_order(venue: Venue, request: Request) -> dict:
    if request.params.get("algoType") != "CONDITIONAL":
        raise Refused(-1102, "Mandatory parameter 'algoType' was not sent, was empty/null, or malformed.")
    close_position = _flag(request, "closePosition")
    if close_position and ("quantity" in request.params or _flag(request, "reduceOnly")):
        raise Refused(-1106, "Parameter 'reduceOnly' sent when not required.")
    order = venue.futures.new_algo_order(
        _need(request, "symbol"), _need(request, "side"), _need(request, "type"),
        0.0 if close_position else _number(request, "quantity"), _number(request, "triggerPrice"),
        request.params.get("clientAlgoId", ""), working_type=request.params.get("workingType", "CONTRACT_PRICE"),
        reduce_only=_flag(request, "reduceOnly"), close_position=close_position)
    return _algo_order(order)


def futures_query_algo_order(venue: Venue, request: Request) -> dict:
    account = venue.futures
    with account.lock:
        account.advance()
        return _algo_order(account.find_algo(request.params.get("algoId"), request.params.get("clientAlgoId")))


def futures_cancel_algo_order(venue: Venue, request: Request) -> dict:
    order = venue.futures.cancel_algo(request.params.get("algoId"), request.params.get("clientAlgoId"))
    return {"algoId": order.algo_id, "clientAlgoId": order.client_id, "code": "200", "msg": "success"}


def futures_open_algo_orders(venue: Venue, request: Request) -> list[dict]:
    account = venue.futures
    with account.lock:
        account.advance()
        return [_algo_order(o) for o in account.open_algo_orders(request.params.get("symbol"))]


def futures_leverage(venue: Venue, request: Request) -> dict:
    with venue.futures.lock:
        return venue.futures.set_leverage(_need(request, "symbol"), int(_number(request, "leverage")))


def futures_margin_type(venue: Venue, request: Request) -> dict:
    with venue.futures.lock:
        return venue.futures.set_margin_type(_need(request, "symbol"), _need(request, "marginType"))


def futures_leverage_bracket(venue: Venue, request: Request) -> list[dict]:
    account = venue.futures
    mids = [request.params["symbol"]] if "symbol" in request.params else list(account.markets)
    out = []
    for mid in mids:
        account.market(mid)
        tiers = [{"bracket": k + 1, "initialLeverage": int(b.max_leverage), "notionalCap": int(b.cap),
                  "notionalFloor": int(b.floor), "maintMarginRatio": b.mmr, "cum": float(b.cum)}
                 for k, b in enumerate(account.brackets(mid))]
        out.append({"symbol": mid, "notionalCoef": 1.0, "brackets": tiers})
    return out


def _position_rows(account: FuturesAccount, now: int, *, v2: bool) -> list[dict]:
    rows = []
    for mid, h in account.positions.items():
        mark = account.mark_price(mid, now)
        pnl = h.amt * (mark - h.entry)
        liquidation = account.liquidation_price(h)
        row = {"symbol": mid, "positionSide": "BOTH", "positionAmt": finite(h.amt), "entryPrice": finite(h.entry),
               "breakEvenPrice": finite(h.entry), "markPrice": finite(mark), "unRealizedProfit": finite(pnl),
               "liquidationPrice": finite(liquidation or 0.0), "isolatedMargin": finite(h.wallet + pnl if h.isolated
                                                                                         else 0.0),
               "notional": finite(h.amt * mark), "marginAsset": "USDT",
               "isolatedWallet": finite(h.wallet if h.isolated else 0.0),
               "initialMargin": finite(abs(h.amt) * mark / h.leverage),
               "maintMargin": "0", "positionInitialMargin": finite(abs(h.amt) * mark / h.leverage),
               "openOrderInitialMargin": "0", "adl": 0, "bidNotional": "0", "askNotional": "0", "updateTime": now}
        if v2:
            row |= {"leverage": str(h.leverage), "marginType": "isolated" if h.isolated else "cross",
                    "isAutoAddMargin": "false", "maxNotionalValue": "0"}
        rows.append(row)
    return rows


def futures_position_risk(v2: bool) -> Callable[[Venue, Request], list[dict]]:
    def handler(venue: Venue, request: Request) -> list[dict]:
        account = venue.futures
        with account.lock:
            now = account.advance()
            rows = _position_rows(account, now, v2=v2)
            mid = request.params.get("symbol")
            return [r for r in rows if mid in (None, r["symbol"])]

    return handler


def futures_account(venue: Venue, request: Request) -> dict:
    account = venue.futures
    with account.lock:
        now = account.advance()
        positions = _position_rows(account, now, v2=False)
        unrealized = sum(float(p["unRealizedProfit"]) for p in positions)
        wallet = account.wallet + account.isolated_wallets()
        cross = account.wallet
        asset = {"asset": "USDT", "walletBalance": decimal(wallet), "unrealizedProfit": decimal(unrealized),
                 "marginBalance": decimal(wallet + unrealized), "maintMargin": "0",
                 "initialMargin": decimal(account.isolated_wallets()), "positionInitialMargin": "0",
                 "openOrderInitialMargin": "0", "crossWalletBalance": decimal(cross), "crossUnPnl": "0",
                 "availableBalance": decimal(cross), "maxWithdrawAmount": decimal(cross), "marginAvailable": True,
                 "updateTime": now}
        return {"totalInitialMargin": asset["initialMargin"], "totalMaintMargin": "0",
                "totalWalletBalance": asset["walletBalance"], "totalUnrealizedProfit": asset["unrealizedProfit"],
                "totalMarginBalance": asset["marginBalance"], "totalPositionInitialMargin": "0",
                "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": decimal(cross), "totalCrossUnPnl": "0",
                "availableBalance": decimal(cross), "maxWithdrawAmount": decimal(cross), "assets": [asset],
                "positions": [{k: p[k] for k in ("symbol", "positionSide", "positionAmt", "unRealizedProfit",
                                                 "isolatedMargin", "notional", "isolatedWallet", "initialMargin",
                                                 "maintMargin", "updateTime")} for p in positions]}


def futures_balance(venue: Venue, request: Request) -> list[dict]:
    asset = futures_account(venue, request)["assets"][0]
    return [{"accountAlias": "SgsR", "asset": "USDT", "balance": asset["walletBalance"],
             "crossWalletBalance": asset["crossWalletBalance"], "crossUnPnl": "0",
             "availableBalance": asset["availableBalance"], "maxWithdrawAmount": asset["maxWithdrawAmount"],
             "marginAvailable": True, "updateTime": asset["updateTime"]}]


def futures_user_trades(venue: Venue, request: Request) -> list[dict]:
    account = venue.futures
    with account.lock:
        account.advance()
        mid = _need(request, "symbol")
        order_id = request.params.get("orderId")
        rows = [t for t in account.trades if t["symbol"] == mid and order_id in (None, str(t["orderId"]))]
        rows = _window(request, rows, time_key="time", default_limit=500, max_limit=1000)
        return [{"buyer": t["side"] == "BUY", "commission": finite(t["commission"]),
                 "commissionAsset": t["commissionAsset"], "id": t["id"], "maker": False, "orderId": t["orderId"],
                 "price": finite(t["price"]), "qty": finite(t["qty"]), "quoteQty": finite(t["quoteQty"]),
                 "realizedPnl": finite(t["realizedPnl"]), "side": t["side"], "positionSide": "BOTH",
                 "symbol": t["symbol"], "time": t["time"]} for t in rows]


def futures_income(venue: Venue, request: Request) -> list[dict]:
    account = venue.futures
    with account.lock:
        account.advance()
        mid, kind = request.params.get("symbol"), request.params.get("incomeType")
        rows = [r for r in account.income if mid in (None, r["symbol"]) and kind in (None, r["incomeType"])]
        rows = _window(request, rows, time_key="time", default_limit=100, max_limit=1000)
        return [r | {"income": finite(r["income"])} for r in rows]


# -- spot ----------------------------------------------------------------------------------------
def _spot_order(o: Order, *, full: bool = False, trades: list[dict] | None = None) -> dict:
    out = {"symbol": o.symbol, "orderId": o.order_id, "orderListId": -1, "clientOrderId": o.client_id,
           "price": finite(o.price), "origQty": finite(o.qty), "executedQty": finite(o.executed),
           "cummulativeQuoteQty": finite(o.quote), "status": o.status, "timeInForce": "GTC", "type": o.type,
           "side": o.side, "stopPrice": finite(o.stop_price), "icebergQty": "0.00000000", "time": o.time,
           "updateTime": o.update_time, "isWorking": o.type == "MARKET" or o.triggered, "workingTime": o.time,
           "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "EXPIRE_MAKER"}
    if full:
        out["transactTime"] = o.update_time
        out["fills"] = [{"price": finite(t["price"]), "qty": finite(t["qty"]), "commission": finite(t["commission"]),
                         "commissionAsset": t["commissionAsset"], "tradeId": t["id"]} for t in trades or []]
    return out


def spot_new_order(venue: Venue, request: Request) -> dict:
    account = venue.spot
    type_ = _need(request, "type")
    quote_qty = request.params.get("quoteOrderQty")
    order = account.new_order(
        _need(request, "symbol"), _need(request, "side"), type_,
        None if quote_qty is not None and "quantity" not in request.params else _number(request, "quantity"),
        request.params.get("newClientOrderId", ""), quote_qty=float(quote_qty) if quote_qty else None,
        price=_number(request, "price", 0.0), stop_price=_number(request, "stopPrice", 0.0))
    trades = [t for t in account.trades if t["orderId"] == order.order_id]
    return _spot_order(order, full=True, trades=trades)


def spot_query_order(venue: Venue, request: Request) -> dict:
    account = venue.spot
    with account.lock:
        account.advance()
        return _spot_order(account.find(_need(request, "symbol"), request.params.get("orderId"),
                                        request.params.get("origClientOrderId")))


def spot_cancel_order(venue: Venue, request: Request) -> dict:
    order = venue.spot.cancel(_need(request, "symbol"), request.params.get("orderId"),
                              request.params.get("origClientOrderId"))
    return _spot_order(order) | {"origClientOrderId": order.client_id}


def spot_open_orders(venue: Venue, request: Request) -> list[dict]:
    account = venue.spot
    with account.lock:
        account.advance()
        return [_spot_order(o) for o in account.open_orders(request.params.get("symbol"))]


def spot_account(venue: Venue, request: Request) -> dict:
    account = venue.spot
    with account.lock:
        now = account.advance()
        assets = sorted(set(account.free) | set(account.locked))
        balances = [{"asset": a, "free": finite(account.free.get(a, 0.0)), "locked": finite(account.locked.get(a, 0.0))}
                    for a in assets]
        rates = {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"}
        return {"makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
                "commissionRates": rates, "canTrade": True, "canWithdraw": True, "canDeposit": True,
                "brokered": False, "requireSelfTradePrevention": False, "preventSor": False, "updateTime": now,
                "accountType": "SPOT", "balances": balances, "permissions": ["SPOT"], "uid": 354937868}


def spot_my_trades(venue: Venue, request: Request) -> list[dict]:
    account = venue.spot
    with account.lock:
        account.advance()
        mid = _need(request, "symbol")
        order_id = request.params.get("orderId")
        rows = [t for t in account.trades if t["symbol"] == mid and order_id in (None, str(t["orderId"]))]
        rows = _window(request, rows, time_key="time", default_limit=500, max_limit=1000)
        return [{"symbol": t["symbol"], "id": t["id"], "orderId": t["orderId"], "orderListId": -1,
                 "price": finite(t["price"]), "qty": finite(t["qty"]), "quoteQty": finite(t["quoteQty"]),
                 "commission": finite(t["commission"]), "commissionAsset": t["commissionAsset"], "time": t["time"],
                 "isBuyer": t["side"] == "BUY", "isMaker": False, "isBestMatch": True} for t in rows]


def _routes() -> dict[tuple[str, str], Callable[[Venue, Request], Any]]:
    return {
        ("GET", "/fapi/v3/account"): futures_account,
        ("GET", "/fapi/v2/account"): futures_account,
        ("GET", "/fapi/v3/balance"): futures_balance,
        ("GET", "/fapi/v2/balance"): futures_balance,
        ("GET", "/fapi/v3/positionRisk"): futures_position_risk(v2=False),
        ("GET", "/fapi/v2/positionRisk"): futures_position_risk(v2=True),
        ("POST", "/fapi/v1/leverage"): futures_leverage,
        ("POST", "/fapi/v1/marginType"): futures_margin_type,
        ("GET", "/fapi/v1/leverageBracket"): futures_leverage_bracket,
        ("POST", "/fapi/v1/order"): futures_new_order,
        ("GET", "/fapi/v1/order"): futures_query_order,
        ("DELETE", "/fapi/v1/order"): futures_cancel_order,
        ("GET", "/fapi/v1/openOrders"): futures_open_orders,
        ("POST", "/fapi/v1/algoOrder"): futures_new_algo_order,
        ("GET", "/fapi/v1/algoOrder"): futures_query_algo_order,
        ("DELETE", "/fapi/v1/algoOrder"): futures_cancel_algo_order,
        ("GET", "/fapi/v1/openAlgoOrders"): futures_open_algo_orders,
        ("GET", "/fapi/v1/userTrades"): futures_user_trades,
        ("GET", "/fapi/v1/income"): futures_income,
        ("GET", "/api/v3/account"): spot_account,
        ("POST", "/api/v3/order"): spot_new_order,
        ("GET", "/api/v3/order"): spot_query_order,
        ("DELETE", "/api/v3/order"): spot_cancel_order,
        ("GET", "/api/v3/openOrders"): spot_open_orders,
        ("GET", "/api/v3/myTrades"): spot_my_trades,
    }

