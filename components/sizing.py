"""Position sizers: fixed fractional risk, earned Kelly, and all-in for baselines.

A sizer only sets ``risk_fraction`` (share of equity lost if the stop is hit); turning that into
a quantity and a leverage is ``size_position``, the same for every sizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.component import AgentContext, Component, Decision, Stage
from core.errors import ComponentError


class FixedRiskSizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    risk: float = Field(default=0.003, gt=0.0, le=0.05)  # 0.3 % of equity at risk per trade
    mode: Literal["normal", "explore", "window", "epsilon"] = "normal"  # the ledger's tag for the trades it sizes


class FixedRiskSizer(Component):
    """The conservative default: a fixed fraction of equity at risk per trade."""

    stage = Stage.SIZING
    Config = FixedRiskSizerConfig
    config: FixedRiskSizerConfig
    acts_on_entries_only = True

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if d.entry and d.position is None:
            d.risk_fraction = self.config.risk
            if d.mode == "normal":  # a gate's exploration mode (window, epsilon) stands
                d.mode = self.config.mode


class AllInSizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    cash_fraction: float = Field(default=1.0, gt=0.0, le=1.0)


class AllInSizer(Component):
    """Spends a fraction of free cash at the fill (baselines compared with other backtesters)."""

    stage = Stage.SIZING
    Config = AllInSizerConfig
    config: AllInSizerConfig
    acts_on_entries_only = True

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if d.entry and d.position is None:
            d.cash_fraction = self.config.cash_fraction
            d.risk_fraction = 1.0


class KellySizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    base_risk: float = Field(default=0.003, gt=0.0, le=0.05)  # where Kelly starts ratcheting from
    kelly_fraction: float = Field(default=0.5, gt=0.0, le=1.0)  # share of full Kelly f*
    cap: float = Field(default=0.15, gt=0.0, le=0.15)  # never more than 15 % risk per trade
    max_step_up: float = Field(default=0.005, gt=0.0)  # largest increase per closed trade
    high_volatility_factor: float = Field(default=0.5, gt=0.0, le=1.0)
    against_trend_factor: float = Field(default=0.5, gt=0.0, le=1.0)


@dataclass(frozen=True)
class KellyStep:
    """One ratchet step: the Kelly inputs and the risk fraction before and after."""

    p: float
    b: float
    f_star: float
    target: float
    before: float
    after: float


def kelly_step(p: float, b: float, current: float, c: KellySizerConfig) -> KellyStep:
    """f* = p - (1-p)/b scaled by the Kelly fraction; up by at most one step, down at once."""
    if not (0.0 <= p <= 1.0) or not b > 0.0 or math.isnan(current):
        raise ComponentError(f"kelly inputs out of range: p={p}, b={b}, risk={current}")
    f_star = p - (1.0 - p) / b
    target = min(c.cap, max(0.0, f_star * c.kelly_fraction))
    after = min(target, current + c.max_step_up) if target > current else target
    return KellyStep(p, b, f_star, target, current, after)


class KellySizer(Component):
    """Risk from the ledger's own record: earned after enough closed trades, capped at 15 %."""

    stage = Stage.SIZING
    Config = KellySizerConfig
    config: KellySizerConfig
    acts_on_entries_only = True  # its ratchet moves only when a trade closes, on a bar that is stepped

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self.risk = self.config.base_risk  # the ratcheted Kelly risk, before the regime factor
        self.entry_risk = self.config.base_risk  # the last risk an entry was sized with
        self._seen_trades: int | None = None  # None: count from the next bar, step on later closes
        self._last_step: KellyStep | None = None

    def reset(self, ctx: AgentContext) -> None:
        """Back to base risk; the ratchet moves again only when a trade closes after this."""
        self.risk = self.entry_risk = self.config.base_risk
        self._seen_trades = None

    def _update(self, ctx: AgentContext) -> None:
        stats = ctx.facts.stats
        if self._seen_trades is None:
            self._seen_trades = stats.closed_trades
            return
        if stats.closed_trades == self._seen_trades:
            return
        self._seen_trades = stats.closed_trades
        p, b = stats.win_rate, stats.win_loss_ratio
        if p is None or b is None:
            return
        step = kelly_step(p, b, self.risk, self.config)
        self._last_step = step
        if step.after != step.before:
            self.risk = step.after
            ctx.adjust(
                "kelly_update", {"risk_fraction": step.before}, {"risk_fraction": step.after},
                "ratchet up by at most one step" if step.after > step.before else "edge shrank",
                {"p": p, "b": b, "f_star": step.f_star, "target": step.target,
                 "kelly_fraction": self.config.kelly_fraction, "cap": self.config.cap,
                 "max_step_up": self.config.max_step_up, "closed_trades": stats.closed_trades},
            )

    def regime_factor(self, d: Decision) -> float:
        factor = 1.0
        if d.vol_regime > 0:
            factor *= self.config.high_volatility_factor
        if d.entry * d.trend_regime < 0:
            factor *= self.config.against_trend_factor
        return factor

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        self._update(ctx)
        if not d.entry or d.position is not None:
            return
        factor = self.regime_factor(d)
        risk = min(self.config.cap, self.risk * factor)
        if risk != self.entry_risk:
            step = self._last_step
            ctx.adjust("risk_fraction", {"risk_fraction": self.entry_risk}, {"risk_fraction": risk},
                       "Kelly risk times the regime factor",
                       {"p": step.p if step else None, "b": step.b if step else None,
                        "f_star": step.f_star if step else None, "kelly_risk": self.risk,
                        "regime_factor": factor, "cap": self.config.cap, "symbol": d.symbol})
            self.entry_risk = risk
        d.risk_fraction = risk


@dataclass(frozen=True)
class PositionSize:
    qty: float
    leverage: float
    clipped_from: float | None  # the quantity before a leverage or cash clip


def size_position(
    *, equity: float, risk_fraction: float, stop_distance: float, price: float,
    margin_budget: float, max_leverage: float,
) -> PositionSize:
    """qty = equity x risk / stop distance; leverage = notional / margin, clipped at the max.

    Leverage is a whole number as on Binance; spot passes ``max_leverage=1`` and its free cash
    as the margin budget.
    """
    inputs = {"equity": equity, "risk_fraction": risk_fraction, "stop_distance": stop_distance,
              "price": price, "margin_budget": margin_budget}
    if not all(math.isfinite(v) for v in inputs.values()) or stop_distance <= 0 or price <= 0:
        raise ComponentError(f"cannot size a position from {inputs}")
    qty = max(0.0, equity * risk_fraction / stop_distance)
    if margin_budget <= 0:  # nothing left to put up: no position, however small the risk
        return PositionSize(0.0, 1.0, qty if qty > 0 else None)
    needed = qty * price / margin_budget  # inf for a budget too small to divide by: clipped below
    leverage = max(1.0, float(math.ceil(needed - 1e-9))) if math.isfinite(needed) else math.inf
    if leverage <= max_leverage:
        return PositionSize(qty, leverage, None)
    clipped = max(0.0, max_leverage * margin_budget / price)
    return PositionSize(clipped, max_leverage, qty)
