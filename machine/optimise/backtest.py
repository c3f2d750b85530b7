"""A muted agent on a simulated exchange: a trial on a past window, or a shadow beside the live agent.

A backtest builds the agent's components from declarations (the set in force with a candidate's
values merged in), on a window of the market that starts ``warmup`` bars before its first
decision, and steps its bars as the engine does, stepping over quiet stretches. It writes no
ledger: a ``Tape`` keeps the equity marks and closed trades in memory, which is all a verdict
reads. Components that learn on the agent's clock (the ML gate) do not learn here: they follow
a leader's scores (``follow``), the scores of the model version that was live at each bar.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from components.exchange.sim import SimExchange
from core.component import Component, build_component
from core.errors import ConfigError
from core.market import Bars, MarketData, SymbolData
from core.records import ClosedTrade, EntryOrder
from machine import engine  # the module: the engine imports this package in turn
from machine.agent import Agent
from machine.config import RunConfig
from machine.learning import InlineLearning
from machine.optimise.objective import Performance, performance
from machine.optimise.space import learns_on_clock, merged, resolved_params
from machine.optimise.study import InvalidCandidate
from machine.recorder import Recorder


class Leader(Protocol):
    """A live component that learns on the clock, read by its followers in trials and shadows."""

    def probability(self, symbol: str, i: int) -> float | None: ...


class ScoreTape:
    """A leader's probabilities for bars ``start .. end - 1``, each read once and kept for every trial
    of a study. ``eager`` reads them all at once: a study beside the loop (paper, live) then never
    reads the live component from its own thread while the loop moves it on."""

    def __init__(self, leader: Leader, symbols: list[str], start: int, end: int, *, eager: bool) -> None:
        self._leader, self._start, self._end = leader, start, end
        self._p: dict[tuple[str, int], float | None] = {}
        if eager:
            for symbol in symbols:
                for i in range(start, end):
                    self.probability(symbol, i)

    def probability(self, symbol: str, i: int) -> float | None:
        if not self._start <= i < self._end:
            return None
        key = (symbol, i)
        if key not in self._p:
            self._p[key] = self._leader.probability(symbol, i)
        return self._p[key]


class Tape(Recorder):
    """Records nothing to a ledger; keeps the equity marks, the closed trades and why entries were taken."""

    def __init__(self, agent: str) -> None:
        super().__init__(None, agent)  # type: ignore[arg-type]  # never written to
        self._marks: list[np.ndarray] = []
        self.trades: list[ClosedTrade] = []
        self.entries: list[tuple[int, str]] = []  # (bar close, reason) of each entry order

    def _append(self, table: str, row: dict[str, Any]) -> None:
        """Not kept: only the marks and the trades are."""

    def commit(self) -> bool:
        return False

    def equity(self, ts: int, equity: float, cash: float, unrealized: float, open_positions: int,
               state: str) -> None:
        self._marks.append(np.array([equity]))

    def equity_marks(self, closes: np.ndarray, equity: np.ndarray, cash: float, unrealized: np.ndarray,
                     open_positions: int, state: str) -> None:
        self._marks.append(np.asarray(equity, dtype=np.float64))

    def trade(self, t: ClosedTrade) -> None:
        self.trades.append(t)

    def entry_order(self, ts: int, o: EntryOrder) -> None:
        self.entries.append((ts, o.reason))

    def marks(self) -> np.ndarray:
        return np.concatenate(self._marks) if self._marks else np.zeros(0)


def window(market: MarketData, start: int, end: int, warmup: int) -> MarketData:
    """Bars ``start - warmup .. end - 1`` of ``market``, trading from ``start`` (indices of ``market``)."""
    first = max(0, start - warmup)

    def cut(b: Bars | None) -> Bars | None:
        if b is None:
            return None
        return replace(b, ts=b.ts[first:end], open=b.open[first:end], high=b.high[first:end], low=b.low[first:end],
                       close=b.close[first:end], volume=b.volume[first:end])

    symbols = {s: SymbolData(bars=cut(d.bars), mark=cut(d.mark), funding=d.funding)  # type: ignore[arg-type]
               for s, d in market.symbols.items()}
    return replace(market, ts=market.ts[first:end], symbols=symbols, issues=(), trade_from=start - first)


def build(declarations: Mapping[str, Mapping[str, Any]]) -> dict[str, Component]:
    return {name: build_component(name, dict(decl), f"agent.components.{name}")
            for name, decl in declarations.items()}


class Backtest:
    """One parameter set stepped over bars ``start ..`` of ``market``; bar indices are ``market``'s."""

    def __init__(self, cfg: RunConfig, declarations: Mapping[str, Mapping[str, Any]], market: MarketData,
                 start: int, end: int, *, leaders: Mapping[str, Leader] | None, artifacts_dir: Path) -> None:
        components = build(declarations)
        self.warmup = engine.warmup_bars(cfg, components, market.timeframe_ms)
        self.market = window(market, start, end, self.warmup)
        self.offset = start - self.market.trade_from  # market index = backtest index + offset
        self.start = start
        for name, component in components.items():
            if leaders is not None and learns_on_clock(type(component)):
                _follow(component, name, leaders, self.offset)
        self.tape = Tape(cfg.agent.name)
        self.exchange = SimExchange(cfg.exchange, self.market, cfg.starting_cash)
        self.agent = Agent(cfg.agent, components, self.market, self.exchange, self.tape, artifacts_dir=artifacts_dir,
                           seed=cfg.seed, learning=InlineLearning())
        self.ready = self.agent.prepare()
        self.starting_cash = cfg.starting_cash
        self._next = self.market.trade_from

    @property
    def stepped_to(self) -> int:
        """The first bar (market index) not stepped yet."""
        return self._next + self.offset

    def grow(self, market: MarketData, end: int) -> None:
        """The live market grew (paper, live): take its bars up to ``end``."""
        grown = window(market, self.start, end, self.warmup)
        if len(grown) > len(self.market):
            self.market = grown
            self.agent.extend(grown)
            self.exchange.extend(grown)

    def advance(self, end: int) -> None:
        """Step the bars up to ``end`` (a market index, exclusive), over quiet stretches as the engine does."""
        agent, exchange = self.agent, self.exchange
        i, stop = self._next, min(end - self.offset, len(self.market))
        while i < stop:
            j = min(agent.quiet_until(i, self.ready), stop)
            if j > i:
                agent.pass_quiet(i, j)
                i = j
                continue
            agent.on_bar(i, exchange.process_bar(i), self.ready)
            answered = exchange.dispatch()
            if answered:
                agent.record_events(answered)
            i += 1
        self._next = i

    def performance(self) -> Performance:
        trades = self.tape.trades
        return performance(self.tape.marks(), self.starting_cash, len(trades), sum(t.fees for t in trades),
                           self.market.timeframe_ms)


Evaluate = Callable[[dict[str, Any]], Performance]


def evaluator(cfg: RunConfig, declarations: Mapping[str, Mapping[str, Any]], market: MarketData, start: int,
              end: int, *, leaders: Mapping[str, Leader], artifacts_dir: Path) -> Evaluate:
    """A study's objective: a candidate's values merged into the declarations, backtested on bars
    ``start .. end - 1``; a combination a component refuses is an InvalidCandidate (the trial is pruned)."""

    def evaluate(candidate: dict[str, Any]) -> Performance:
        try:
            backtest = Backtest(cfg, merged(declarations, candidate), market, start, end, leaders=leaders,
                                artifacts_dir=artifacts_dir)
        except ConfigError as exc:
            raise InvalidCandidate(str(exc)) from None
        backtest.advance(end)
        return backtest.performance()

    return evaluate


def learned_leaders(cfg: RunConfig, market: MarketData, folder: Path) -> dict[str, Leader]:
    """The components that learn on the clock, after a replay of the window with the set in force (their
    models land in ``folder/models``; a second call finds them there and trains nothing)."""
    learning = {n for n, d in cfg.agent.components.items()
                if learns_on_clock(resolved_params(d, f"agent.components.{n}")[0])}
    if not learning:
        return {}
    replay = Backtest(cfg, cfg.agent.components, market, market.trade_from, len(market), leaders=None,
                      artifacts_dir=folder)
    replay.advance(len(market))
    return {name: _Shifted(replay.agent.components[name], replay.offset) for name in learning}  # type: ignore[arg-type]


class _Shifted:
    """A leader of a backtest, read by the indices of the market the backtest was cut from."""

    def __init__(self, leader: Leader, offset: int) -> None:
        self._leader, self._offset = leader, offset

    def probability(self, symbol: str, i: int) -> float | None:
        return self._leader.probability(symbol, i - self._offset)


def _follow(component: Component, name: str, leaders: Mapping[str, Leader], offset: int) -> None:
    leader = leaders.get(name)
    follow: Callable[[Callable[[str, int], float | None]], None] | None = getattr(component, "follow", None)
    if leader is None or follow is None:
        raise ConfigError(f"agent.components.{name} learns on the agent's clock: a trial or shadow follows the "
                          "live agent's scores, and this component offers none (probability/follow)")
    follow(lambda symbol, k: leader.probability(symbol, k + offset))
