"""In-memory ledger facts that guards read: O(1) updates per event, never a SQL query per bar.

A test proves these equal the ledger's SQL views at the end of a run (DESIGN.md invariant 3).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@dataclass(slots=True)
class TradeStats:
    """Win/loss tracking with the Kelly inputs. A trade with pnl <= 0 is a loss (as the views)."""

    wins: int = 0
    losses: int = 0
    total_wins: float = 0.0
    total_losses: float = 0.0  # positive number
    consecutive_losses: int = 0
    _evidence: dict[str, float | int | None] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def closed_trades(self) -> int:
        return self.wins + self.losses

    @property
    def win_rate(self) -> float | None:
        return self.wins / self.closed_trades if self.closed_trades else None

    @property
    def win_loss_ratio(self) -> float | None:
        if not self.wins or not self.losses or self.total_losses == 0.0:
            return None
        return (self.total_wins / self.wins) / (self.total_losses / self.losses)

    @property
    def kelly_edge(self) -> float | None:
        """f* = p - (1 - p) / b; None until both a win and a loss are known."""
        p, b = self.win_rate, self.win_loss_ratio
        if p is None or b is None:
            return None
        return p - (1.0 - p) / b

    def record(self, pnl: float) -> None:
        self._evidence = None
        if pnl > 0.0:
            self.wins += 1
            self.total_wins += pnl
            self.consecutive_losses = 0
        else:
            self.losses += 1
            self.total_losses += -pnl
            self.consecutive_losses += 1

    def as_evidence(self) -> dict[str, float | int | None]:
        """The Kelly inputs as a guard records them; the same until the next trade closes."""
        if self._evidence is None:
            self._evidence = self._inputs()
        return self._evidence

    def _inputs(self) -> dict[str, float | int | None]:
        return {
            "closed_trades": self.closed_trades,
            "wins": self.wins,
            "losses": self.losses,
            "total_wins": round(self.total_wins, 8),
            "total_losses": round(self.total_losses, 8),
            "win_rate": self.win_rate,
            "win_loss_ratio": self.win_loss_ratio,
            "kelly_edge": self.kelly_edge,
        }


@dataclass(slots=True)
class AgentFacts:
    """Everything the guards may read about one agent, kept current by the agent."""

    now: int = 0
    state: str = ""
    state_entered_at: int = 0
    history_ready: bool = False
    stats: TradeStats = field(default_factory=TradeStats)
    equity: float = math.nan
    peak_equity: float = math.nan
    day: int = -1
    day_start_equity: float = math.nan
    breaker_trips: deque[int] = field(default_factory=deque)
    failure: str | None = None  # the last component failure not yet acted on
    resume_requested: bool = False
    exchange_refused: str | None = None  # the exchange refused the API keys (live): why, until a resume
    epsilon_drawn: bool = False  # an epsilon draw took a signal the gate rejected, this decision
    came_from: str = ""

    @property
    def drawdown(self) -> float:
        if not self.peak_equity or math.isnan(self.peak_equity):
            return 0.0
        return max(0.0, 1.0 - self.equity / self.peak_equity)

    @property
    def daily_loss(self) -> float:
        """Loss since the UTC day began, as a fraction of the day's starting equity."""
        if math.isnan(self.day_start_equity) or self.day_start_equity <= 0:
            return 0.0
        return max(0.0, 1.0 - self.equity / self.day_start_equity)

    @property
    def hours_in_state(self) -> float:
        return (self.now - self.state_entered_at) / HOUR_MS

    def mark_equity(self, now: int, equity: float) -> None:
        self.now = now
        day = now // DAY_MS
        if day != self.day:
            self.day = day
            self.day_start_equity = equity if math.isnan(self.equity) else self.equity
        self.equity = equity
        if math.isnan(self.peak_equity) or equity > self.peak_equity:
            self.peak_equity = equity

    def mark_equity_path(self, closes: np.ndarray, equity: np.ndarray) -> None:
        """``mark_equity`` for each (close, equity) in order, in one go."""
        days = closes // DAY_MS
        changed = np.flatnonzero(days != np.concatenate(([self.day], days[:-1])))
        if changed.size:
            k = int(changed[-1])
            before = self.equity if k == 0 else float(equity[k - 1])
            self.day_start_equity = float(equity[k]) if math.isnan(before) else before
            self.day = int(days[-1])
        self.now = int(closes[-1])
        self.equity = float(equity[-1])
        top = float(equity.max())
        if math.isnan(self.peak_equity) or top > self.peak_equity:
            self.peak_equity = top

    def enter_state(self, state: str, now: int) -> None:
        self.came_from = self.state
        self.state = state
        self.state_entered_at = now

    def start_afresh(self) -> None:
        """After a breaker resumes: drawdown, daily loss and the losing streak start from now."""
        self.peak_equity = self.equity
        self.day_start_equity = self.equity
        self.stats.consecutive_losses = 0
