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
    """Shadows of ``challenger`` and ``incumbent`` (component declarations) over bars ``start .. end``."""

    def __init__(self, cfg: RunConfig, challenger: Mapping[str, Mapping[str, Any]],
                 incumbent: Mapping[str, Mapping[str, Any]], market: MarketData, start: int, end: int, *,
                 leaders: Mapping[str, Leader], artifacts_dir: Path) -> None:
        self.start, self.end = start, end  # the first bar and the verdict's bar, inclusive
        known = min(len(market), end + 1)
        self.shadows = tuple(Backtest(cfg, decls, market, start, known, leaders=leaders, artifacts_dir=artifacts_dir)
                             for decls in (challenger, incumbent))

    def advance(self, market: MarketData, i: int) -> None:
        """Step both shadows through bar ``i`` (closed now; never past the verdict's bar)."""
        for shadow in self.shadows:
            shadow.grow(market, min(len(market), self.end + 1))
            shadow.advance(min(i, self.end) + 1)

    def verdict(self, objective: Objective, margin: float) -> Verdict:
        challenger, incumbent = (s.performance() for s in self.shadows)
        lead = challenger.objective(objective) - incumbent.objective(objective)
        return Verdict(lead > margin, challenger, incumbent, lead)
