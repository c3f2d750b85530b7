"""Binance's public market-data endpoints, as ccxt calls them (spot /api/v3, USDT-M /fapi/v1).

Only what the exchange clock has reached is served: candles that opened by ``now`` (the newest
one still forming, with partial values, as Binance sends it), settlements at or before ``now``.
Parameters are checked as Binance checks them (limits, intervals, symbols), with its error codes.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from tests.support.binance import data
from tests.support.binance.data import SPECS, Candles, SymbolSpec, decimal
from tests.support.binance.server import FakeBinance, Handler, Reply, Request, binance_error

INVALID_SYMBOL = (-1121, "Invalid symbol.")
INVALID_INTERVAL = (-1120, "Invalid interval.")
PERPETUAL_DELIVERY = 4133404800000  # Binance's delivery date for perpetuals (2100-12-25)


def server_time(server: FakeBinance, request: Request) -> Reply:
    return Reply({"serverTime": server.clock.now()})


# -- exchangeInfo -------------------------------------------------------------------------------
def spot_exchange_info(server: FakeBinance, request: Request) -> Reply:
    limits = [_limit("REQUEST_WEIGHT", "MINUTE", 1, 6000), _limit("ORDERS", "SECOND", 10, 100),
              _limit("ORDERS", "DAY", 1, 200000), _limit("RAW_REQUESTS", "MINUTE", 5, 61000)]
    return Reply({"timezone": "UTC", "serverTime": server.clock.now(), "rateLimits": limits,
                  "exchangeFilters": [], "symbols": [_spot_symbol(s) for s in data.listed("spot")]})


def futures_exchange_info(server: FakeBinance, request: Request) -> Reply:
    limits = [_limit("REQUEST_WEIGHT", "MINUTE", 1, 2400), _limit("ORDERS", "MINUTE", 1, 1200),
              _limit("ORDERS", "SECOND", 10, 300)]
    return Reply({"timezone": "UTC", "serverTime": server.clock.now(), "futuresType": "U_MARGINED",
                  "rateLimits": limits, "exchangeFilters": [],
                  "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
                  "symbols": [_futures_symbol(s) for s in data.listed("futures")]})


def inverse_exchange_info(server: FakeBinance, request: Request) -> Reply:
    """COIN-M: nothing listed (ccxt asks only when its fetchMarkets types include 'inverse')."""
    return Reply({"timezone": "UTC", "serverTime": server.clock.now(), "rateLimits": [],
                  "exchangeFilters": [], "symbols": []})


def _limit(kind: str, interval: str, num: int, limit: int) -> dict:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": num, "limit": limit}


def _fixed(value: str) -> str:
    return f"{Decimal(value):.8f}"


def _spot_symbol(spec: SymbolSpec) -> dict:
    return {
        "symbol": spec.id, "status": "TRADING", "baseAsset": spec.base, "baseAssetPrecision": 8,
        "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8, "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
                       "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": _fixed(spec.min_price), "maxPrice": _fixed(spec.max_price),
             "tickSize": _fixed(spec.tick_size)},
            {"filterType": "LOT_SIZE", "minQty": _fixed(spec.min_qty), "maxQty": _fixed(spec.max_qty),
             "stepSize": _fixed(spec.step_size)},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": _fixed(spec.market_max_qty),
             "stepSize": "0.00000000"},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
             "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": _fixed(spec.min_notional), "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [], "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }


def _futures_symbol(spec: SymbolSpec) -> dict:
    return {
        "symbol": spec.id, "pair": spec.id, "contractType": "PERPETUAL", "deliveryDate": PERPETUAL_DELIVERY,
        "onboardDate": spec.onboard_ms, "status": "TRADING", "maintMarginPercent": "2.5000",
        "requiredMarginPercent": "5.0000", "baseAsset": spec.base, "quoteAsset": spec.quote,
        "marginAsset": spec.quote, "pricePrecision": spec.precision(spec.tick_size),
        "quantityPrecision": spec.precision(spec.step_size), "baseAssetPrecision": 8, "quotePrecision": 8,
        "underlyingType": "COIN", "underlyingSubType": ["PoW"], "triggerProtect": "0.0500",
        "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": spec.min_price, "maxPrice": spec.max_price,
             "tickSize": spec.tick_size},
            {"filterType": "LOT_SIZE", "minQty": spec.min_qty, "maxQty": spec.max_qty, "stepSize": spec.step_size},
            {"filterType": "MARKET_LOT_SIZE", "minQty": spec.min_qty, "maxQty": spec.market_max_qty,
             "stepSize": spec.step_size},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
             "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET",
                       "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


# -- klines ---------------------------------------------------------------------------------------
def klines(kind: str, series: str) -> Handler:
    """/api/v3/klines (spot), /fapi/v1/klines and /fapi/v1/markPriceKlines (futures)."""
    max_limit = 1000 if kind == "spot" else 1500
    intervals = data.SPOT_INTERVALS if kind == "spot" else data.FUTURES_INTERVALS

    def handler(server: FakeBinance, request: Request) -> Reply:
        problem = _required(request, "symbol", "interval")
        if problem is not None:
            return problem
        mid, interval = request.params["symbol"], request.params["interval"]
        if mid not in SPECS[kind]:
            return binance_error(*INVALID_SYMBOL)
        if interval not in intervals:
            return binance_error(*INVALID_INTERVAL)
        window = _window(request, default_limit=500, max_limit=max_limit)
        if isinstance(window, Reply):
            return window
        start, end, limit = window
        found = None if interval == "1M" else data.candles(kind, mid, interval, series)  # months: none bundled
        if found is None:
            return Reply([])
        now = server.clock.now()
        rows = _served_rows(server, kind, mid, series, found, now)
        picked = _pick(found.ts, rows, start, end, limit)
        return Reply([_kline(found, int(i), now, series, SPECS[kind][mid]) for i in picked])

    return handler


def _served_rows(server: FakeBinance, kind: str, mid: str, series: str, found: Candles, now: int) -> np.ndarray:
    """Row numbers the exchange shows at ``now``: opened by now, minus gaps and late candles."""
    hi = int(np.searchsorted(found.ts, now, side="right"))
    hidden = []
    for fault in server.faults.candle_faults(kind, mid, series):
        if fault.delay_ms is None:
            hidden.append(fault.ts)
        elif fault.ts <= now < fault.ts + found.step + fault.delay_ms:
            hi = min(hi, int(np.searchsorted(found.ts, fault.ts, side="left")))
    rows = np.arange(hi)
    return rows[~np.isin(found.ts[:hi], hidden)]


def _pick(ts: np.ndarray, rows: np.ndarray, start: int | None, end: int | None, limit: int) -> np.ndarray:
    """Binance's selection: from ``start`` onwards, else the latest up to ``end``; ``limit`` rows."""
    times = ts[rows]
    lo = 0 if start is None else int(np.searchsorted(times, start, side="left"))
    hi = len(times) if end is None else int(np.searchsorted(times, end, side="right"))
    if start is not None:
        return rows[lo:min(hi, lo + limit)]
    return rows[max(lo, hi - limit):hi]


def _kline(c: Candles, i: int, now: int, series: str, spec: SymbolSpec) -> list:
    ts = int(c.ts[i])
    o, h, lo, close, volume = (float(c.open[i]), float(c.high[i]), float(c.low[i]), float(c.close[i]),
                               float(c.volume[i]))
    if ts + c.step > now:  # still forming: the move so far, as a straight line from the open
        elapsed = (now - ts) / c.step
        close = _on_grid(o + (close - o) * elapsed, spec.tick_size)
        h, lo, volume = max(o, close), min(o, close), _on_grid(volume * elapsed, spec.step_size)
    if series == "mark":  # Binance's mark-price klines carry no volume
        return [ts, decimal(o), decimal(h), decimal(lo), decimal(close), "0", ts + c.step - 1, "0", 0, "0", "0",
                "0"]
    quote = volume * (o + close) / 2
    return [ts, decimal(o), decimal(h), decimal(lo), decimal(close), decimal(volume), ts + c.step - 1,
            decimal(quote), 0, decimal(volume / 2), decimal(quote / 2), "0"]


def _on_grid(value: float, size: str) -> float:
    """``value`` rounded to a tick or lot size, as every Binance price and quantity is."""
    return float(Decimal(repr(value)).quantize(Decimal(size).normalize()))


# -- funding ----------------------------------------------------------------------------------
def funding_rate(server: FakeBinance, request: Request) -> Reply:
    """/fapi/v1/fundingRate: settled rates, oldest first (limit 100 by default, 1000 at most)."""
    window = _window(request, default_limit=100, max_limit=1000)
    if isinstance(window, Reply):
        return window
    start, end, limit = window
    mid = request.params.get("symbol")
    if mid is not None and mid not in SPECS["futures"]:
        return binance_error(*INVALID_SYMBOL)
    now = server.clock.now()
    out = []
    for symbol in [mid] if mid else [s.id for s in data.listed("futures")]:
        settled = data.funding(symbol)
        if settled is None:
            continue
        ts, rate = settled
        rows = _pick(ts, np.arange(int(np.searchsorted(ts, now, side="right"))), start, end, limit)
        out += [{"symbol": symbol, "fundingTime": int(ts[i]), "fundingRate": decimal(float(rate[i])),
                 "markPrice": _mark_at(symbol, int(ts[i]))} for i in rows]
    return Reply(sorted(out, key=lambda r: r["fundingTime"])[:limit])


def premium_index(server: FakeBinance, request: Request) -> Reply:
    """/fapi/v1/premiumIndex: mark price now and the rate of the coming settlement."""
    mid = request.params.get("symbol")
    if mid is not None and mid not in SPECS["futures"]:
        return binance_error(*INVALID_SYMBOL)
    now = server.clock.now()
    entries = [_premium(symbol, now) for symbol in ([mid] if mid else [s.id for s in data.listed("futures")])]
    return Reply(entries[0] if mid else entries)


def _premium(mid: str, now: int) -> dict:
    mark = data.candles("futures", mid, "1h", "mark")
    price = "0"
    if mark is not None:
        i = int(np.searchsorted(mark.ts, now, side="right")) - 1
        price = _kline(mark, i, now, "mark", SPECS["futures"][mid])[4] if i >= 0 else "0"
    settled = data.funding(mid)
    next_time, next_rate = (now // (8 * data.HOUR) + 1) * 8 * data.HOUR, 0.0001
    if settled is not None:
        ts, rate = settled
        j = int(np.searchsorted(ts, now, side="right"))
        if j < len(ts):
            next_time, next_rate = int(ts[j]), float(rate[j])
    return {"symbol": mid, "markPrice": price, "indexPrice": price, "estimatedSettlePrice": price,
            "lastFundingRate": decimal(next_rate), "interestRate": "0.00010000", "nextFundingTime": next_time,
            "time": now}


def _mark_at(mid: str, ts: int) -> str:
    mark = data.candles("futures", mid, "1h", "mark")
    if mark is None:
        return ""
    i = int(np.searchsorted(mark.ts, ts))
    return decimal(float(mark.open[i])) if i < len(mark.ts) and mark.ts[i] == ts else ""


# -- parameters -------------------------------------------------------------------------------
def _required(request: Request, *names: str) -> Reply | None:
    for name in names:
        if not request.params.get(name):
            return binance_error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return None


def _window(request: Request, *, default_limit: int, max_limit: int) -> tuple[int | None, int | None, int] | Reply:
    values: dict[str, int | None] = {}
    for name in ("startTime", "endTime", "limit"):
        raw = request.params.get(name)
        if raw is not None and not raw.isdigit():
            legal = "legal range is '^[0-9]{1,20}$'."
            return binance_error(-1100, f"Illegal characters found in parameter '{name}'; {legal}")
        values[name] = None if raw is None else int(raw)
    limit = default_limit if values["limit"] is None else values["limit"]
    if not 1 <= limit <= max_limit:
        return binance_error(-1130, "Data sent for parameter 'limit' is not valid.")
    start, end = values["startTime"], values["endTime"]
    if start is not None and end is not None and start > end:
        return binance_error(-1023, "Start time is greater than end time.")
    return start, end, limit


ROUTES: dict[tuple[str, str], Handler] = {
    ("GET", "/api/v3/time"): server_time,
    ("GET", "/api/v3/exchangeInfo"): spot_exchange_info,
    ("GET", "/api/v3/klines"): klines("spot", "candles"),
    ("GET", "/fapi/v1/time"): server_time,
    ("GET", "/fapi/v1/exchangeInfo"): futures_exchange_info,
    ("GET", "/fapi/v1/klines"): klines("futures", "candles"),
    ("GET", "/fapi/v1/markPriceKlines"): klines("futures", "mark"),
    ("GET", "/fapi/v1/fundingRate"): funding_rate,
    ("GET", "/fapi/v1/premiumIndex"): premium_index,
    ("GET", "/dapi/v1/exchangeInfo"): inverse_exchange_info,
}
