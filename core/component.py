"""The component interface: what an agent's state can switch on.

A component precomputes what it can over whole arrays, causally, in ``prepare`` and does O(1)
work per bar in ``on_bar``. Components run in stage order, whatever order a state lists them in.
Each pairs with a pydantic ``Config`` (``KellySizerConfig`` builds ``KellySizer``).
"""

from __future__ import annotations

import importlib
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ValidationError

from core.errors import ConfigError
from core.validation import format_validation_error

if TYPE_CHECKING:
    from pathlib import Path

    from core.facts import AgentFacts
    from core.market import MarketData
    from core.records import ClosedTrade, Position


T = TypeVar("T")
NEVER = 1 << 62  # a bar index no market reaches: "no event ahead"


def next_at_or_after(events: list[int], i: int) -> int:
    """The first of the sorted bar indices ``events`` that is >= ``i``, or NEVER."""
    k = bisect_left(events, i)
    return events[k] if k < len(events) else NEVER


class Stage(IntEnum):
    FEATURES = 10
    REGIME = 20
    SIGNAL = 30
    GATE = 40
    MODEL_GATE = 45  # after the cheap filters, so models score only what they let through
    SIZING = 50
    EXITS = 60


@dataclass(slots=True)
class Decision:
    """What the components concluded for one symbol on one bar."""

    symbol: str
    i: int
    now: int
    close: float
    position: Position | None
    vol_regime: int = 0
    trend_regime: int = 0
    entry: int = 0  # +1 open long, -1 open short, 0 nothing
    exit: bool = False
    mode: str = "normal"
    risk_fraction: float | None = None
    stop_distance: float | None = None
    take_profit_distance: float | None = None
    cash_fraction: float | None = None
    gate_relaxation: float = 0.0  # lowers gate thresholds (exploration windows)
    size_scale: float = 1.0  # multiplies the sized risk (epsilon exploration takes less)
    reason: str = ""


class AgentContext(Protocol):
    """What a component may read and do besides its Decision."""

    @property
    def facts(self) -> AgentFacts: ...

    @property
    def state(self) -> str: ...

    @property
    def artifacts_dir(self) -> Path:
        """The run folder: where learning artifacts (models) are kept."""

    @property
    def seed(self) -> int: ...

    def record(self, table: str, row: dict[str, Any]) -> None:
        """Append a row to a ledger table (decisions, models, predictions)."""

    def adjust(self, kind: str, before: Any, after: Any, reason: str, evidence: dict[str, Any]) -> None:
        """Record a learning or risk adjustment in the ledger."""

    def amend_protection(self, symbol: str, stop_price: float | None,
                         take_profit_price: float | None) -> None: ...

    @property
    def learns_inline(self) -> bool:
        """True in replay: learning jobs finish inside the bar that starts them (deterministic)."""

    def learn(self, job: Callable[[], T]) -> Future[T]:
        """Run a learning job: inline in replay; beside the loop in paper and live, so a retrain
        never delays a bar. Poll the future on later bars and swap the result in when done."""


class Component:
    """Base class: subclasses set ``stage`` and ``Config`` and override the hooks they need."""

    stage: ClassVar[Stage]
    Config: ClassVar[type[BaseModel]]
    acts_on_entries_only: ClassVar[bool] = False  # on_bar acts only on an entry another component raised

    def __init__(self, name: str, config: BaseModel):
        self.name = name
        self.config = config

    def prepare(self, market: MarketData, shared: dict[str, dict[str, Any]]) -> None:
        """Causal precomputation over whole arrays; ``shared[symbol]`` holds series for others.

        Called again whenever the market grows at its end (paper, live), so it only derives
        arrays from bars: learned state lives in attributes set in ``__init__`` or by the hooks.
        """

    def warmup_bars(self, timeframe_ms: int) -> int:
        """Bars of history this component needs before its first decision (from its config)."""
        return 0

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        """O(1) work for one symbol on one bar."""

    def next_event(self, symbol: str, i: int, position: Position | None) -> int:
        """The first bar >= ``i`` at which ``on_bar`` may act for ``symbol`` while no other
        component has raised an entry (a precomputed signal or regime change; every bar while it
        manages ``position``). The engine steps over bars where no component has one.

        By default a component that overrides ``on_bar`` may act on any bar. One that acts only on
        an entry another component raised sets ``acts_on_entries_only``; one that acts on an open
        position says so here."""
        if self.acts_on_entries_only or type(self).on_bar is Component.on_bar:
            return NEVER
        return i

    def on_clock(self, i: int, now: int, ctx: AgentContext) -> None:
        """Every bar, in every state: scheduled learning (retraining, weight updates)."""

    def next_clock(self, i: int) -> int:
        """The first bar >= ``i`` at which ``on_clock`` has work (a retrain due, predictions to resolve)."""
        return i if type(self).on_clock is not Component.on_clock else NEVER

    def on_trade_closed(self, trade: ClosedTrade, ctx: AgentContext) -> None:
        """A round trip closed; learn from its outcome."""

    def reset(self, ctx: AgentContext) -> None:
        """Return learned risk to its conservative default (state ``on_enter: reset_risk``)."""

    def status(self) -> dict[str, Any]:
        """What a heartbeat shows of this component (the ML gate: its live model, recent hit rate)."""
        return {}


def declared_target(decl: dict[str, Any], where: str, base: type) -> tuple[type, BaseModel]:
    """``{_target_: module.Class, **params}``: the class (a subclass of ``base``) and its params
    validated by ``Class.Config``; every mistake is a ConfigError naming ``where``."""
    params = dict(decl)
    target = params.pop("_target_", None)
    if not isinstance(target, str) or "." not in target:
        raise ConfigError(f"{where}._target_: expected 'module.Class', got {target!r}")
    module_name, _, cls_name = target.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{where}._target_: cannot import {target!r} ({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(f"{where}._target_: {target!r} is not a Ratchet {base.__name__.lower()}")
    try:
        config = cls.Config.model_validate(params)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, where)) from None
    return cls, config


def build_component(name: str, decl: dict[str, Any], where: str) -> Component:
    """Instantiate a declared component with its validated config."""
    cls, config = declared_target(decl, where, Component)
    return cls(name, config)
