"""Real components that read one bar ahead on purpose: the no-lookahead probe must catch them.

Both read the bar that opens when the agent decides (the close of bar ``i + 1`` at the close of
bar ``i``): a one-bar peek, the smallest there is, invisible to a probe that only changes bars
opening after the decision.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from components.ml_gate import MLGate
from core.component import AgentContext, Component, Decision, Stage
from core.market import Bars, MarketData


class NextBarPeekingGateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class NextBarPeekingGate(Component):
    """Lets an entry through only when the bar after the decision bar closes in its favour."""

    stage = Stage.GATE
    Config = NextBarPeekingGateConfig

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        self._closes = {s: d.bars.close for s, d in market.symbols.items()}

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        closes = self._closes[d.symbol]
        if d.entry and d.i + 1 < len(closes) and d.entry * (closes[d.i + 1] - d.close) <= 0:
            d.entry, d.reason = 0, "the next bar closes against it"


class NextBarPeekingMLGate(MLGate):
    """The real ML gate, fed every bar's successor in its place: it trains, scores and resolves
    one bar ahead, the off-by-one of a pipeline that confuses a candle's open and close time."""

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        super().prepare(one_bar_ahead(market), shared)


def one_bar_ahead(market: MarketData) -> MarketData:
    """The market with each bar's prices and volume replaced by the next bar's (the last kept)."""

    def ahead(b: Bars) -> Bars:
        def shift(a: np.ndarray) -> np.ndarray:
            return np.append(a[1:], a[-1:])

        return replace(b, open=shift(b.open), high=shift(b.high), low=shift(b.low), close=shift(b.close),
                       volume=shift(b.volume))

    return replace(market, symbols={s: replace(d, bars=ahead(d.bars)) for s, d in market.symbols.items()})
