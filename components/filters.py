"""Entry filters that need no model: the ATR band."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.component import AgentContext, Component, Decision, Stage
from core.market import MarketData


class AtrBandFilterConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    min_atr_pct: float = Field(default=0.002, ge=0.0)  # ATR / close below this: too quiet to pay fees
    max_atr_pct: float = Field(default=0.05, gt=0.0)  # above this: too wild for the stop

    @model_validator(mode="after")
    def _ordered(self) -> AtrBandFilterConfig:
        if self.min_atr_pct >= self.max_atr_pct:
            raise ValueError(f"min_atr_pct ({self.min_atr_pct}) must be below max_atr_pct ({self.max_atr_pct})")
        return self


class AtrBandFilter(Component):
    """No entries while ATR% is outside ``[min_atr_pct, max_atr_pct]``."""

    stage = Stage.GATE
    Config = AtrBandFilterConfig
    config: AtrBandFilterConfig
    acts_on_entries_only = True

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        self._atr = {s: shared[s]["atr"] for s in market.symbols}

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry:
            return
        atr_pct = self._atr[d.symbol][d.i] / d.close
        if not self.config.min_atr_pct <= atr_pct <= self.config.max_atr_pct:
            d.entry, d.reason = 0, f"ATR% {atr_pct:.4f} outside the band"
