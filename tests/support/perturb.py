"""Copies of market data whose every bar after a time is changed: the no-lookahead probe."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from core.market import Bars, MarketData, SymbolData


def perturbed_after(market: MarketData, t: int, rng: np.random.Generator) -> MarketData:
    """A copy whose every bar opening after ``t`` (and every funding rate after it) is changed."""

    def shake(b: Bars | None) -> Bars | None:
        if b is None:
            return None
        later = b.ts > t
        f_open = np.where(later, rng.uniform(0.8, 1.2, len(b.ts)), 1.0)
        f_close = np.where(later, rng.uniform(0.8, 1.2, len(b.ts)), 1.0)
        o, c = b.open * f_open, b.close * f_close
        hi = np.maximum.reduce([b.high * f_open, o, c])
        lo = np.minimum.reduce([b.low * f_open, o, c])
        return replace(b, open=o, high=hi, low=lo, close=c)

    symbols = {}
    for s, d in market.symbols.items():
        funding = d.funding
        if funding is not None:
            funding = replace(funding, rate=np.where(funding.ts > t, -funding.rate * 3, funding.rate))
        symbols[s] = SymbolData(bars=shake(d.bars), mark=shake(d.mark), funding=funding)
    return replace(market, symbols=symbols)
