"""Modes: which Feed, Exchange and Clock a run uses, picked by ``mode=`` (``conf/mode/*.yaml``).

The agent, its components and the ledger are the same in every mode; a mode only decides where
bars come from, where orders go, what time it is, and how often the ledger is made durable.
Replay is here; paper and live, which talk to Binance through ccxt, are in ``machine.exchange_modes``
(imported only by a run that picks one).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

from components.clocks import ReplayClock
from components.exchange.sim import SimExchange
from components.market.feeds import StoredFeed
from core.component import declared_target
from core.market import MarketData
from core.protocols import Clock, Exchange, Feed
from machine.learning import BackgroundLearning, InlineLearning

if TYPE_CHECKING:
    from machine.config import RunConfig


class Mode:
    """Base of the modes: subclasses set ``name``, ``Config`` and build the three seams."""

    name: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    commit_every_bar: ClassVar[bool] = False  # paper, live: every bar durable before the next

    def __init__(self, config: BaseModel) -> None:
        self.config = config

    def feed(self, cfg: RunConfig, run_dir: Path, warmup_bars: int) -> Feed:
        raise NotImplementedError

    def exchange(self, cfg: RunConfig, market: MarketData) -> Exchange:
        raise NotImplementedError

    def clock(self, cfg: RunConfig) -> Clock:
        raise NotImplementedError

    def venue(self, cfg: RunConfig) -> str:
        """What the ledger's ``runs.exchange`` says the orders went to."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections the mode opened."""

    def learning(self) -> InlineLearning | BackgroundLearning:
        """Learning jobs run inline (replay: deterministic) or beside the loop (paper, live)."""
        return BackgroundLearning() if self.commit_every_bar else InlineLearning()


class ReplayConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReplayMode(Mode):
    """Stored bars (bundled, or downloaded into ``market.data_dir``), simulated fills and time."""

    name = "replay"
    Config = ReplayConfig

    def feed(self, cfg: RunConfig, run_dir: Path, warmup_bars: int) -> Feed:
        m = cfg.market
        start, end = m.window_ms()
        return StoredFeed(m.kind, list(m.symbols), m.timeframe, on_gap=m.on_gap, start_ms=start,
                          end_ms=end, data_dir=m.data_dir, warmup_bars=warmup_bars)

    def exchange(self, cfg: RunConfig, market: MarketData) -> Exchange:
        return SimExchange(cfg.exchange, market, cfg.starting_cash)

    def clock(self, cfg: RunConfig) -> Clock:
        return ReplayClock()

    def venue(self, cfg: RunConfig) -> str:
        return "sim"


def build_mode(decl: dict[str, Any]) -> Mode:
    cls, config = declared_target(decl, "mode", Mode)
    return cls(config)
