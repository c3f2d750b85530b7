"""Placebos for the ablation (machine/ablation): seeded coins that stand in for a learning loop.

A placebo keeps what a loop does on average and drops what it knows. ``CoinGate`` takes the
share of entry signals a filter took, picked by a coin; ``RandomRiskSizer`` sizes each entry
with a risk drawn from the risks Kelly chose. A filter that beats its coin picks better trades;
one that only matches it helps, if at all, by trading less.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from core.component import AgentContext, Component, Decision, Stage


class CoinGateConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    take: float = Field(ge=0.0, le=1.0)  # share of the entry signals reaching it that it lets through
    seed: int = 0  # with the run's seed: the coin's draws


class _Coin(Component):
    """A seeded coin in a filter's place: each entry reaching it passes with probability ``take``."""

    Config = CoinGateConfig
    config: CoinGateConfig
    acts_on_entries_only = True

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self._rng: np.random.Generator | None = None

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry:
            return
        if self._rng is None:
            self._rng = np.random.default_rng((ctx.seed, self.config.seed))
        if self._rng.random() >= self.config.take:
            d.entry, d.reason = 0, f"placebo coin: not among the {self.config.take:.1%} it takes"


class CoinGate(_Coin):
    """A coin where a rule filter sits (the regime gate's stage)."""

    stage = Stage.GATE


class CoinModelGate(_Coin):
    """A coin where the model gate sits (after the rule filters)."""

    stage = Stage.MODEL_GATE


class RandomRiskSizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    # risk fractions to draw from, with replacement (Kelly's cap: never above 15 %)
    risks: tuple[Annotated[float, Field(gt=0.0, le=0.15)], ...] = Field(min_length=1)
    seed: int = 0


class RandomRiskSizer(Component):
    """Sizes each entry with a risk fraction drawn at random from ``risks`` (Kelly's own, in the ablation)."""

    stage = Stage.SIZING
    Config = RandomRiskSizerConfig
    config: RandomRiskSizerConfig
    acts_on_entries_only = True

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self._rng: np.random.Generator | None = None
        self._risks = np.asarray(self.config.risks, dtype=np.float64)

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry or d.position is not None:
            return
        if self._rng is None:
            self._rng = np.random.default_rng((ctx.seed, self.config.seed))
        d.risk_fraction = float(self._risks[self._rng.integers(len(self._risks))])
