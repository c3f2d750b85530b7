"""Binance's trading rules, checked before an order is sent: an order that cannot meet them is not sent.

The rules come from the exchange itself: ``load_markets`` (exchangeInfo filters: tick size, lot size,
the market lot's maximum, minimum notional) and, for USDT-M, the leverage brackets
(``/fapi/v1/leverageBracket``: the highest leverage each notional tier allows). Quantities and
prices are rounded the exchange's way, by ccxt (``amount_to_precision`` truncates to the lot step,
``price_to_precision`` rounds to the tick).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import ccxt


@dataclass(frozen=True, slots=True)
class Tier:
    """One leverage bracket: notionals in ``[floor, cap)`` may use at most ``max_leverage``."""

    floor: float
    cap: float
    max_leverage: float


class ExchangeRules:
    """Rounding and limits of the symbols a run trades, as the exchange publishes them."""

    def __init__(self, exchange: ccxt.Exchange, tiers: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self._exchange = exchange
        self._tiers = {symbol: tuple(Tier(float(t["minNotional"]), float(t["maxNotional"]), float(t["maxLeverage"]))
                                     for t in rows) for symbol, rows in (tiers or {}).items()}

    def qty(self, symbol: str, qty: float) -> float:
        """``qty`` truncated to the lot step; 0.0 when nothing is left."""
        if not (math.isfinite(qty) and qty > 0):
            return 0.0
        try:
            return float(self._exchange.amount_to_precision(symbol, qty))
        except ccxt.InvalidOrder:  # below one lot step
            return 0.0

    def price(self, symbol: str, price: float) -> float:
        """``price`` rounded to the tick."""
        return float(self._exchange.price_to_precision(symbol, price))

    def leverage(self, leverage: float) -> int:
        """Binance's leverage is a whole number: the agent's, rounded up (a little less margin, never more risk)."""
        return max(1, math.ceil(leverage - 1e-9))

    def refusal(self, symbol: str, qty: float, price: float, *, leverage: int | None = None,
                reduce_only: bool = False) -> str | None:
        """Why an order of ``qty`` (already rounded) at about ``price`` would be refused; None when it may go."""
        limits = self._exchange.market(symbol)["limits"]
        lot_min = limits["amount"]["min"] or 0.0
        market_max = (limits.get("market") or {}).get("max") or limits["amount"]["max"]
        if qty <= 0 or qty < lot_min:
            return f"quantity {qty:g} is below {symbol}'s minimum lot {lot_min:g}"
        if market_max and qty > market_max:
            return f"quantity {qty:g} is above {symbol}'s largest market order {market_max:g}"
        notional = qty * price
        min_notional = limits["cost"]["min"] or 0.0
        if not reduce_only and notional < min_notional:
            return f"notional {notional:.2f} is below {symbol}'s minimum {min_notional:g}"
        if leverage is not None and symbol in self._tiers:
            allowed = self.max_leverage(symbol, notional)
            if leverage > allowed:
                return (f"leverage {leverage} is above the {allowed:g}x {symbol}'s brackets allow at notional "
                        f"{notional:.2f}")
        return None

    def max_leverage(self, symbol: str, notional: float) -> float:
        """The highest leverage the bracket holding ``notional`` allows."""
        tiers = self._tiers[symbol]
        return next((t.max_leverage for t in tiers if notional < t.cap), tiers[-1].max_leverage)
