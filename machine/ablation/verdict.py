"""Does a loop help? Helps when the interval of (full agent - arm) lies wholly on the better side of
0, hurts when wholly on the worse side, no evidence otherwise (0 inside the interval).

Better is higher for return and Sharpe, lower for max drawdown. Trade count has no better side:
it says how much a loop changes the trading, not whether it helps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from machine.ablation.bootstrap import Interval

Verdict = Literal["helps", "no evidence", "hurts"]
HIGHER_IS_BETTER = {"return": True, "sharpe": True, "max_drawdown": False}
VERDICT_METRICS = tuple(HIGHER_IS_BETTER)


def verdict(interval: Interval, metric: str = "return") -> Verdict:
    """The verdict an interval of (full - arm) gives on ``metric``."""
    if metric not in HIGHER_IS_BETTER:
        raise ValueError(f"no verdict on {metric!r}; on one of {', '.join(VERDICT_METRICS)}")
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    low, high = sorted((sign * interval.low, sign * interval.high))
    if low > 0:
        return "helps"
    if high < 0:
        return "hurts"
    return "no evidence"


@dataclass(frozen=True)
class Comparison:
    """The full agent against one arm: the figures of both, intervals of the differences, the verdict."""

    loop: str
    arm: str
    kind: str  # off | placebo
    against: str  # what the arm does instead
    full: dict[str, float]
    other: dict[str, float]
    effect: dict[str, Interval]  # full - arm
    verdict: Verdict
    verdict_on: str

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["effect"] = {k: asdict(v) for k, v in self.effect.items()}
        return out
