"""What a parameter set earned over a stretch of bars, net of fees, and the one number a study maximises.

Every figure comes from the equity marks (mark-to-market at each bar close, after fees and
funding), starting from the equity the stretch began with:

* ``return``: end equity over start equity, minus one;
* ``return_over_drawdown``: that return over the largest peak-to-trough fall of the marks, the
  fall floored at ``DRAWDOWN_FLOOR`` so a short stretch without a loss does not divide by almost
  nothing (below the floor the objective is the return in units of the floor);
* ``sharpe``: the mean over the standard deviation of the bar-to-bar returns, annualised by
  the bars in a year (0 when the marks never move).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from machine.optimise.space import Objective

DRAWDOWN_FLOOR = 0.01
YEAR_MS = 365 * 86_400_000


@dataclass(frozen=True)
class Performance:
    """A stretch of equity marks summed up."""

    bars: int
    trades: int
    fees: float
    start_equity: float
    end_equity: float
    total_return: float
    max_drawdown: float
    sharpe: float

    def objective(self, name: Objective) -> float:
        if name == "return":
            return self.total_return
        if name == "sharpe":
            return self.sharpe
        return self.total_return / max(self.max_drawdown, DRAWDOWN_FLOOR)

    def evidence(self, name: Objective) -> dict[str, float | int]:
        """The figures as a ledger row's evidence: rounded, with the objective's value."""
        row = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}
        return {**row, "objective": round(self.objective(name), 6)}


def performance(equity: np.ndarray, start_equity: float, trades: int, fees: float,
                timeframe_ms: int) -> Performance:
    """``equity``: the marks at each bar close of the stretch, in order."""
    path = np.concatenate(([start_equity], np.asarray(equity, dtype=np.float64)))
    peaks = np.maximum.accumulate(path)
    drawdown = float(np.max(1.0 - path / peaks)) if len(path) else 0.0
    returns = path[1:] / path[:-1] - 1.0 if len(path) > 1 else np.zeros(0)
    sd = float(returns.std()) if len(returns) > 1 else 0.0
    sharpe = float(returns.mean()) / sd * math.sqrt(YEAR_MS / timeframe_ms) if sd > 0 else 0.0
    end = float(path[-1])
    return Performance(bars=len(path) - 1, trades=trades, fees=float(fees), start_equity=float(start_equity),
                       end_equity=end, total_return=end / start_equity - 1.0, max_drawdown=drawdown,
                       sharpe=sharpe)
