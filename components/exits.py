"""ATR stop-loss and take-profit that adapt to the volatility regime, with trailing and break-even.

Stops are set from the signal bar's close (the fill price is not known yet). The exchange
triggers them intrabar on the bar's high and low; when one bar touches both the stop and the
target, it assumes the stop (the worst case).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from components.regime_detector import VOL_NAMES
from core.component import NEVER, AgentContext, Component, Decision, Stage
from core.market import MarketData
from core.records import Position


class Multiples(BaseModel):
    """ATR multiples per volatility regime: wider when volatile, tighter when quiet."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    low: float = Field(gt=0.0)
    normal: float = Field(gt=0.0)
    high: float = Field(gt=0.0)

    def for_regime(self, vol_regime: int) -> float:
        return getattr(self, VOL_NAMES[vol_regime])


class AtrExitsConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stop_atr: Multiples = Multiples(low=1.5, normal=2.0, high=3.0)
    take_profit_atr: Multiples | None = Multiples(low=3.0, normal=4.0, high=6.0)
    trailing_atr: float | None = Field(default=None, gt=0.0)  # trail the stop this many ATRs behind
    breakeven_at_r: float | None = Field(default=1.0, gt=0.0)  # stop to entry after this many R


class AtrExits(Component):
    """Sets stop and target distances for new entries and moves protection for open positions."""

    stage = Stage.EXITS
    Config = AtrExitsConfig
    config: AtrExitsConfig

    def next_event(self, symbol: str, i: int, position: Position | None) -> int:
        return i if position is not None else NEVER  # trails open positions every bar; sizes entries

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self._last_regime: dict[str, int] = {}
        self._initial_risk: dict[str, float] = {}  # trade_id -> |entry - initial stop|
        self._at_breakeven: set[str] = set()

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        self._atr = {s: shared[s]["atr"] for s in market.symbols}

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        atr = self._atr[d.symbol][d.i]
        if d.position is None:
            if d.entry:
                self._size_protection(d, atr, ctx)
        else:
            self._manage(d, atr, ctx)

    def _size_protection(self, d: Decision, atr: float, ctx: AgentContext) -> None:
        c = self.config
        stop_mult = c.stop_atr.for_regime(d.vol_regime)
        tp_mult = c.take_profit_atr.for_regime(d.vol_regime) if c.take_profit_atr else None
        d.stop_distance = stop_mult * atr
        d.take_profit_distance = tp_mult * atr if tp_mult is not None else None
        previous = self._last_regime.get(d.symbol)
        if previous != d.vol_regime:
            self._last_regime[d.symbol] = d.vol_regime
            ctx.adjust(
                "stop_adaptation",
                None if previous is None else {
                    "symbol": d.symbol, "volatility": VOL_NAMES[previous],
                    "stop_atr": c.stop_atr.for_regime(previous),
                    "take_profit_atr": c.take_profit_atr.for_regime(previous) if c.take_profit_atr else None},
                {"symbol": d.symbol, "volatility": VOL_NAMES[d.vol_regime], "stop_atr": stop_mult,
                 "take_profit_atr": tp_mult},
                "stop and target multiples follow the volatility regime",
                {"atr": atr, "close": d.close},
            )

    def _manage(self, d: Decision, atr: float, ctx: AgentContext) -> None:
        pos, c = d.position, self.config
        if pos is None or pos.stop_price is None:
            return
        risk = self._initial_risk.setdefault(pos.trade_id, abs(pos.entry_price - pos.stop_price))
        new_stop = pos.stop_price
        if (c.breakeven_at_r is not None and pos.trade_id not in self._at_breakeven and risk > 0
                and (d.close - pos.entry_price) * pos.side >= c.breakeven_at_r * risk):
            self._at_breakeven.add(pos.trade_id)
            new_stop = _tighter(pos.side, new_stop, pos.entry_price)
            if new_stop != pos.stop_price:
                ctx.adjust("stop_adaptation", {"trade_id": pos.trade_id, "stop_price": pos.stop_price},
                           {"trade_id": pos.trade_id, "stop_price": new_stop},
                           f"break-even after {c.breakeven_at_r}R", {"close": d.close, "risk": risk})
        if c.trailing_atr is not None and atr == atr:
            new_stop = _tighter(pos.side, new_stop, d.close - pos.side * c.trailing_atr * atr)
        if new_stop != pos.stop_price:
            ctx.amend_protection(d.symbol, new_stop, None)


def _tighter(side: int, current: float, candidate: float) -> float:
    """The stop closer to price: only ever move a stop in the position's favour."""
    return max(current, candidate) if side > 0 else min(current, candidate)
