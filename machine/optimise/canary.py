"""Two shadows on the same bars: a challenger and the set it must beat, and the verdict between them.

Both shadows start flat, with the run's starting cash, on the bar after the one that started
them, and step the live agent's bars as it closes them (same bars, same simulated fills, no
orders reach the exchange). The challenger wins when its objective beats the incumbent's by more
than the margin. The incumbent is a shadow too, not the live agent's own book: the live agent
carries positions, Kelly risk and breaker state from before the canary began (and its fills are
real ones in live mode), so only two shadows differ in nothing but their parameters.

A canary judges a proposal (challenger: the study's best; incumbent: the set in force); the watch
after a promotion judges the promotion (challenger: the previous set; incumbent: the promoted set).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.market import MarketData
from machine.config import RunConfig
from machine.optimise.backtest import Backtest, Leader
from machine.optimise.objective import Performance
from machine.optimise.space import Objective


@dataclass(frozen=True)
class Verdict:
    challenger_wins: bool
    challenger: Performance
    incumbent: Performance
    lead: float  # challenger's objective minus the incumbent's

    def evidence(self, objective: Objective, margin: float) -> dict[str, Any]:
        return {"challenger": self.challenger.evidence(objective), "incumbent": self.incumbent.evidence(objective),
                "lead": round(self.lead, 6), "margin": margin, "objective": objective}


class Canary:
    """Shadows of ``challenger`` and ``incumbent`` (component declarations) from bar ``start`` of ``market``
    to the first bar that closes at or after ``end_ts`` (in paper and live a bar not known yet)."""

    def __init__(self, cfg: RunConfig, challenger: Mapping[str, Mapping[str, Any]],
                 incumbent: Mapping[str, Mapping[str, Any]], market: MarketData, start: int, end_ts: int, *,
                 leaders: Mapping[str, Leader], artifacts_dir: Path) -> None:
        self.start, self.end_ts = start, end_ts
        known = self._known(market)
        self.shadows = tuple(Backtest(cfg, decls, market, start, known, leaders=leaders, artifacts_dir=artifacts_dir)
                             for decls in (challenger, incumbent))

    def _known(self, market: MarketData) -> int:
        """The bars a shadow may hold: up to the verdict's bar, as far as the market knows them."""
        verdict_bar = int(np.searchsorted(market.ts, self.end_ts - market.timeframe_ms))
        return min(len(market), verdict_bar + 1)

    def advance(self, market: MarketData, i: int) -> None:
        """Step both shadows through bar ``i`` (closed now; never past the verdict's bar)."""
        known = self._known(market)
        for shadow in self.shadows:
            shadow.grow(market, known)
            shadow.advance(min(i + 1, known))

    def verdict(self, objective: Objective, margin: float) -> Verdict:
        challenger, incumbent = (s.performance() for s in self.shadows)
        lead = challenger.objective(objective) - incumbent.objective(objective)
        return Verdict(lead > margin, challenger, incumbent, lead)
