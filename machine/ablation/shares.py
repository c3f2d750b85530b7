"""What a placebo must match, measured on the full agent: the share of signals a filter takes, the
risks Kelly chose.

* An ML gate records every signal that reaches it in ``decisions`` (``passed``): its share is read
  from the full agent's ledgers.
* A rule filter (the regime gate) records nothing, but decides from precomputed series only: its
  share is measured aside, on the same bars, by running the components its state runs before it
  and the filter itself over every signal bar (no position open, no trades, nothing recorded).
* Kelly's risks are the ``risk_fraction`` of the full agent's normal-mode trades entered in a
  state that sizes with Kelly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from core.component import NEVER, Component, Decision
from core.errors import ConfigError
from core.facts import AgentFacts
from machine.config import RunConfig
from machine.engine import build_components, load_run_market

T = TypeVar("T")


def decisions_share(con: duckdb.DuckDBPyConnection, run_dirs: Sequence[str]) -> tuple[int, int]:
    """(passed, decided) over the ML gate's ``decisions`` of these runs (``con`` from ``connect_sweep``)."""
    passed, decided = con.execute(
        "SELECT count(*) FILTER (WHERE passed), count(*) FROM decisions WHERE list_contains(?, run_dir)",
        [list(run_dirs)]).fetchone() or (0, 0)
    return int(passed), int(decided)


def kelly_risks(con: duckdb.DuckDBPyConnection, run_dirs: Sequence[str], states: Sequence[str]) -> list[float]:
    """The risk fractions of the normal-mode trades entered in ``states`` (Kelly's), oldest first."""
    rows = con.execute(
        "SELECT risk_fraction FROM trades WHERE list_contains(?, run_dir) AND list_contains(?, state) "
        "AND mode = 'normal' AND risk_fraction > 0 ORDER BY run_dir, entry_ts, trade_id",
        [list(run_dirs), list(states)]).fetchall()
    return [float(r) for (r,) in rows]


class _Aside:
    """The context of a pass beside any run: it records nothing and moves no protection."""

    def __init__(self, state: str, seed: int):
        self.facts = AgentFacts()
        self.state = state
        self.seed = seed
        self.artifacts_dir = Path(".")
        self.learns_inline = True

    def record(self, table: str, row: dict[str, Any]) -> None:
        """Nothing is recorded aside."""

    def adjust(self, kind: str, before: Any, after: Any, reason: str, evidence: dict[str, Any]) -> None:
        """Nothing is recorded aside."""

    def amend_protection(self, symbol: str, stop_price: float | None, take_profit_price: float | None) -> None:
        """No positions are open aside."""

    def learn(self, job: Callable[[], T]) -> Future[T]:
        done: Future[T] = Future()
        done.set_result(job())
        return done


def filter_share(cfg: RunConfig, component: str) -> tuple[int, int]:
    """(passed, offered): the entry signals ``component`` lets through, of those its first state's
    earlier stages raise while flat, over the trading bars of ``cfg``'s market."""
    components = build_components(cfg)
    state = next((s for s, spec in cfg.agent.machine.states.items() if component in spec.components), None)
    if state is None:
        raise ConfigError(f"agent.components.{component}: no state enables it, so it filters no signals")
    gate = components[component]
    upstream = sorted((components[c] for c in cfg.agent.machine.states[state].components
                       if components[c].stage < gate.stage), key=lambda c: c.stage)
    learners = [c.name for c in upstream if type(c).on_clock is not Component.on_clock]
    if learners:
        raise ConfigError(f"agent.components.{component}: {', '.join(learners)} learn(s) before it on the clock; "
                          "its share of signals can only be read from a run's ledger")
    market = load_run_market(cfg)
    shared: dict[str, dict[str, Any]] = {}
    for c in [*upstream, gate]:
        c.prepare(market, shared)
    ready = max((c.warmup_bars(market.timeframe_ms) for c in components.values()), default=0)
    ctx = _Aside(state, cfg.seed)
    passed = offered = 0
    for symbol, data in market.symbols.items():
        closes = data.bars.close.tolist()
        i = max(market.trade_from, ready)
        while i < len(market):
            i = min(c.next_event(symbol, i, None) for c in upstream)
            if i >= len(market) or i >= NEVER:
                break
            d = Decision(symbol, i, int(market.ts[i]) + market.timeframe_ms, closes[i], None)
            for c in upstream:
                c.on_bar(d, ctx)  # type: ignore[arg-type]
            if d.entry:
                offered += 1
                gate.on_bar(d, ctx)  # type: ignore[arg-type]
                passed += bool(d.entry)
            i += 1
    return passed, offered
