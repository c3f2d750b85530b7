"""One agent: its machine decides which components run; their decisions become orders.

Per bar (called after the exchange processed the bar): record what the exchange did, mark
equity, let the machine take at most one transition, run the enabled components for every
symbol, and submit the resulting orders. A component that raises drops the agent to its
conservative defaults through the declared ``component_failed`` transition; the run goes on.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from components.sizing import size_position
from core.component import NEVER, Component, Decision, build_component
from core.errors import ComponentError, ConfigError, ExchangeError
from core.facts import AgentFacts
from core.market import MarketData, per_bar
from core.protocols import Exchange
from core.records import BarEvents, EntryOrder, ExitOrder, ExitReason
from machine.builder import AgentMachine, Fired
from machine.config import AgentConfig
from machine.guards import GUARDS
from machine.learning import BackgroundLearning, InlineLearning
from machine.recorder import Recorder

T = TypeVar("T")


class Agent:
    def __init__(self, config: AgentConfig, components: dict[str, Component], market: MarketData,
                 exchange: Exchange, recorder: Recorder, *, artifacts_dir: Path, seed: int,
                 learning: InlineLearning | BackgroundLearning | None = None):
        config.machine.check_references(set(GUARDS), set(components), f"agent({config.name})")
        self.name = config.name
        self.config = config
        self.machine = AgentMachine(config.machine)
        self.components = components
        self.market = market
        self.exchange = exchange
        self.recorder = recorder
        self.facts = AgentFacts()
        self.shared: dict[str, dict[str, Any]] = {}
        self._symbols = list(market.symbols)
        self._see(market)
        self._order_seq = 0
        self._now = 0
        self._moved = True  # the machine moved in the last bar: the next is looked at, not passed over
        self.entries_paused = False  # ratchet-control RUN flatten pauses entries until resume
        self._pipelines = {
            state: sorted((components[c] for c in spec.components), key=lambda c: c.stage)
            for state, spec in config.machine.states.items()
        }
        self.artifacts_dir = artifacts_dir
        self.seed = seed
        self.learning = learning or InlineLearning()
        used = [components[n] for n in dict.fromkeys(c for spec in config.machine.states.values()
                                                      for c in spec.components)]
        self._scheduled = [c for c in used if type(c).on_clock is not Component.on_clock]
        self._learners = [c for c in used if type(c).on_trade_closed is not Component.on_trade_closed]

    # --- AgentContext -----------------------------------------------------------------------
    @property
    def state(self) -> str:
        return self.machine.state

    def adjust(self, kind: str, before: Any, after: Any, reason: str, evidence: dict[str, Any]) -> None:
        self.recorder.adjustment(self._now, kind, before, after, reason, evidence)

    def record(self, table: str, row: dict[str, Any]) -> None:
        self.recorder.row(table, {"ts": self._now, "agent": self.name, **row})

    def amend_protection(self, symbol: str, stop_price: float | None,
                         take_profit_price: float | None) -> None:
        self.exchange.amend_protection(symbol, stop_price=stop_price, take_profit_price=take_profit_price)

    @property
    def learns_inline(self) -> bool:
        return self.learning.inline

    def learn(self, job: Callable[[], T]) -> Future[T]:
        return self.learning.submit(job)

    # --- lifecycle --------------------------------------------------------------------------
    def prepare(self) -> int:
        """Precompute every component; returns the first bar with enough history."""
        self._prepare_components()
        start = self.market.trade_from
        self.facts.enter_state(self.machine.state, self._ts[start] if start < len(self._ts) else 0)
        return max((c.warmup_bars(self._tf) for c in self.components.values()), default=0)

    def extend(self, market: MarketData) -> None:
        """The feed's market grew at its end (paper, live): components see the new bars."""
        self._see(market)
        self._prepare_components()

    def _see(self, market: MarketData) -> None:
        self.market = market
        self._closes = {s: per_bar(d.bars.close) for s, d in market.symbols.items()}
        self._ts = per_bar(market.ts)
        self._tf = market.timeframe_ms

    def _prepare_components(self) -> None:
        for c in sorted(self.components.values(), key=lambda c: c.stage):
            c.prepare(self.market, self.shared)

    def on_bar(self, i: int, events: BarEvents, ready_index: int, *, last: bool = False) -> None:
        """One bar; on the ``last`` bar of the data, what is still open is closed at its close."""
        now = self._ts[i] + self._tf
        self._now = now
        self._moved = False
        self.record_events(events)
        for component in self._scheduled:
            try:
                component.on_clock(i, now, self)
            except Exception as exc:  # noqa: BLE001 - learning never stops trading
                self._fail(component.name, "*", exc)
        equity, cash, unrealized = self.exchange.mark_to_market(i)
        self.facts.mark_equity(now, equity)
        self.facts.history_ready = i >= ready_index
        self._transition(now)
        self.facts.resume_requested = False  # a command is for the bar it is taken at, never later
        state = self.machine.state
        pipeline = self._pipelines[state]
        if last:  # marked at the last close, fees paid, and the final equity mark shows it
            self.record_events(self.exchange.close_all(i, ExitReason.END_OF_DATA))
            equity, cash, unrealized = self.exchange.mark_to_market(i)
            self.facts.mark_equity(now, equity)
        elif pipeline:
            for symbol in self._symbols:
                self._decide(symbol, i, now, pipeline, equity)
        self.recorder.equity(now, equity, cash, unrealized, len(self.exchange.positions), state)

    # --- quiet stretches ----------------------------------------------------------------------
    def quiet_until(self, i: int, ready_index: int) -> int:
        """The first bar >= ``i`` at which anything can happen for this agent, if nothing happens
        before it: a component's event (a signal, a regime change, a position it manages), a
        scheduled job, the exchange's next fill, funding, stop or target, a guard the clock moves,
        history becoming ready. Bars before it change nothing but the clock and the equity marks,
        which ``pass_quiet`` books in one go. ``i`` itself when the last bar moved the machine."""
        if self._moved or (self.exchange.positions and self.machine.watches_equity()):
            return i
        first = ready_index if i <= ready_index else NEVER  # history_ready turns true at that bar
        first = min(first, self.exchange.next_event(i))
        for component in self._scheduled:
            first = min(first, component.next_clock(i))
        positions = self.exchange.positions
        pipeline = self._pipelines[self.machine.state]
        for symbol, position in positions.items():  # a managed position: usually every bar
            if any(c.next_event(symbol, i, position) <= i for c in pipeline):
                return i
        for component in pipeline:
            for symbol in self._symbols:
                first = min(first, component.next_event(symbol, i, positions.get(symbol)))
            if first <= i:
                return i
        change = self.machine.next_change(self.facts)
        if change is not None:
            first = min(first, self.bar_closing_at(change))
        return max(i, first)

    def bar_closing_at(self, ts: int) -> int:
        """The first bar whose close is at or after ``ts`` (ms)."""
        return bisect_left(self._ts, ts - self._tf)

    def pass_quiet(self, i: int, j: int) -> None:
        """Bars ``i .. j-1``, quiet by ``quiet_until``: their equity marks, and the clock moved on."""
        equity, cash, unrealized = self.exchange.pass_quiet_bars(i, j)
        closes = self.market.ts[i:j] + self._tf
        self.facts.mark_equity_path(closes, equity)
        self._now = int(closes[-1])
        self.recorder.equity_marks(closes, equity, cash, unrealized, len(self.exchange.positions), self.state)

    def status(self, i: int) -> dict[str, Any]:
        """What a heartbeat reports after bar ``i``: state and since when, equity, positions, model."""
        model: dict[str, Any] = {}
        for component in self.components.values():
            model.update(component.status())
        return {"state": self.state, "state_since": self.facts.state_entered_at, "equity": self.facts.equity,
                "exchange": self.exchange, "prices": {s: c[i] for s, c in self._closes.items()}, "model": model}

    def apply_command(self, now: int, command: dict[str, str]) -> None:
        """An operator command (machine/operator.py), recorded with the bar it was taken at."""
        self.recorder.adjustment(now, "operator_command", None, command, command.get("reason", ""),
                                 {"state": self.state})
        if command["command"] == "resume":  # lifts a halt (the machine's guard), a flatten and refused keys
            self.facts.resume_requested = True
            self.facts.exchange_refused = None
            self.entries_paused = False
        elif command["command"] == "flatten":  # close everything at market, take no new entries until resume
            self._now = now
            self.entries_paused = True
            for symbol, pos in list(self.exchange.positions.items()):
                self._submit_exit(symbol, pos.side, pos.qty, ExitReason.OPERATOR)

    # --- parameter sets (machine/optimise) -------------------------------------------------------
    def schedule(self, job: Component) -> None:
        """A job on the agent's clock beside its components' (the parameter optimiser): its ``on_clock``
        runs on every stepped bar after theirs, and its ``next_clock`` bounds the quiet stretches."""
        self._scheduled.append(job)

    def replace_components(self, declarations: dict[str, dict[str, Any]]) -> None:
        """Rebuild these components from their declarations, at a bar boundary (a parameter promotion
        or rollback), and prepare them and every later stage (which may read what they share) on the
        market so far; the others keep what they learned. Only parameters change: a component keeps
        its class, so its place too."""
        if not declarations:
            return
        for name, decl in declarations.items():
            old, new = self.components[name], build_component(name, decl, f"agent.components.{name}")
            self.components[name] = new
            for group in (*self._pipelines.values(), self._scheduled, self._learners):
                group[:] = [new if c is old else c for c in group]
        first = min(self.components[name].stage for name in declarations)
        for c in sorted(self.components.values(), key=lambda c: c.stage):
            if c.stage >= first:
                c.prepare(self.market, self.shared)
        self._moved = True

    # --- internals --------------------------------------------------------------------------
    def record_events(self, events: BarEvents) -> None:
        """What the exchange reported: funding, fills, closed trades (learners see them), refusals."""
        if not events:
            return
        rec = self.recorder
        for p in events.funding:
            rec.funding(p)
        for f in events.fills:
            rec.fill(f)
        for t in events.closed:
            rec.trade(t)
            self.facts.stats.record(t.pnl)
            for component in self._learners:
                component.on_trade_closed(t, self)
        for order_id, why in events.rejected:
            rec.adjustment(self._now, "order_rejected", None, {"order_id": order_id}, why, {})
        rec.exchange_events(self._now, events)  # a live exchange's order lifecycle, reconciliation, journal
        if events.halt is not None:
            self.facts.exchange_refused = events.halt

    def _transition(self, now: int) -> None:
        fired = self.machine.evaluate(self.facts)
        if fired is None:
            return
        self._on_fired(fired, now)

    def _on_fired(self, fired: Fired, now: int) -> None:
        self._moved = True
        self.recorder.transition(now, fired.source, fired.dest, fired.trigger, fired.reason,
                                 fired.evidence)
        self.facts.failure = None
        self.facts.enter_state(fired.dest, now)
        for action in (*fired.actions, *self.config.machine.states[fired.dest].on_enter):
            self._act(action, fired, now)

    def _act(self, action: str, fired: Fired, now: int) -> None:
        if action == "flatten":
            for symbol, pos in list(self.exchange.positions.items()):
                self._submit_exit(symbol, pos.side, pos.qty, ExitReason.BREAKER)
        elif action == "reset_risk":
            for c in self.components.values():
                c.reset(self)
        elif action == "record_trip":
            self.facts.breaker_trips.append(now)
        elif action == "start_afresh":
            self.facts.start_afresh()
        elif action == "alert":
            pass  # alerts follow from the transition row and the states' tags (machine/notices.py)
        else:  # pragma: no cover - the spec's Literal forbids others
            raise ConfigError(f"unknown action {action!r}")

    def _decide(self, symbol: str, i: int, now: int, pipeline: list[Component], equity: float) -> None:
        pos = self.exchange.positions.get(symbol)
        d = Decision(symbol, i, now, self._closes[symbol][i], pos)
        for component in pipeline:
            try:
                component.on_bar(d, self)
                if d.entry:  # the sizes an entry would be made with
                    _check_finite(d, component.name)
            except Exception as exc:  # noqa: BLE001 - isolation is the point: record and fall back
                self._fail(component.name, symbol, exc)
                return
        if pos is not None:
            if d.exit:
                self._submit_exit(symbol, pos.side, pos.qty, ExitReason.SIGNAL)
            return
        if d.entry and d.mode == "epsilon":
            self._explore_by_draw()
        if d.entry and (d.risk_fraction is not None or d.cash_fraction is not None):
            try:
                self._submit_entry(d, equity)
            except (ComponentError, ExchangeError) as exc:
                self._fail("sizing", symbol, exc)

    def _explore_by_draw(self) -> None:
        """An epsilon draw took a rejected signal: the machine's epsilon trigger fires for it."""
        self.facts.epsilon_drawn = True
        self._fire_role(self.config.machine.roles.epsilon)
        self.facts.epsilon_drawn = False

    def _fire_role(self, trigger: str | None) -> None:
        fired = self.machine.force(trigger, self.facts) if trigger is not None else None
        if fired is not None:
            self._on_fired(fired, self._now)

    def _fail(self, component: str, symbol: str, exc: Exception) -> None:
        why = f"{component} failed on {symbol}: {type(exc).__name__}: {exc}"
        self.recorder.adjustment(self._now, "fallback", {"state": self.state},
                                 {"state": "conservative defaults"}, why,
                                 {"component": component, "symbol": symbol, "error": str(exc)})
        self.facts.failure = why
        self._fire_role(self.config.machine.roles.fallback)
        self.facts.failure = None

    def _next_id(self) -> str:
        self._order_seq += 1
        return f"{self.name}-{self._order_seq:06d}"

    def _submit_exit(self, symbol: str, side: int, qty: float, reason: ExitReason) -> None:
        if any(isinstance(o, ExitOrder) and o.symbol == symbol for o in self.exchange.pending_orders()):
            return
        order = ExitOrder(self._next_id(), symbol, reason)
        self.exchange.submit_exit(order)
        self.recorder.exit_order(self._now, order, side, qty, self.state)

    def _submit_entry(self, d: Decision, equity: float) -> None:
        if self.entries_paused:
            return
        pending = [o for o in self.exchange.pending_orders() if isinstance(o, EntryOrder)]
        open_or_pending = len(self.exchange.positions) + len(pending)
        if open_or_pending >= self.config.max_open_positions:
            return
        if d.cash_fraction is not None:
            qty, leverage, stop, tp = math.nan, 1.0, None, None
        else:
            if d.stop_distance is None or d.risk_fraction is None:
                return  # no exit component sized a stop: never enter without one
            spot = self.market.kind == "spot"
            if spot:  # the cash the entries already sent this bar will spend is not there for this one
                reserved = sum(o.qty * self._closes[o.symbol][d.i] for o in pending if o.cash_fraction is None)
                budget = max(0.0, self.exchange.entry_cash - reserved)
            else:
                budget = equity * self.config.margin_per_position
            size = size_position(
                equity=equity, risk_fraction=d.risk_fraction * d.size_scale, stop_distance=d.stop_distance,
                price=d.close, margin_budget=budget, max_leverage=1.0 if spot else self.config.max_leverage)
            if size.clipped_from is not None:
                self.adjust("leverage_clip", {"qty": size.clipped_from}, {"qty": size.qty},
                            "size clipped to the leverage or cash limit",
                            {"symbol": d.symbol, "max_leverage": self.config.max_leverage,
                             "margin_budget": budget, "price": d.close})
            if size.qty <= 0:
                return
            qty, leverage = size.qty, size.leverage
            stop = d.close - d.entry * d.stop_distance
            tp = (d.close + d.entry * d.take_profit_distance) if d.take_profit_distance else None
            if tp is not None and tp <= 0:  # a short's target below zero: keep the stop, drop the target
                tp = None
        order = EntryOrder(self._next_id(), d.symbol, d.entry, qty, leverage, stop, tp, d.mode,
                           self.state, d.reason, (d.risk_fraction or 0.0) * d.size_scale, d.cash_fraction)
        self.exchange.submit_entry(order)
        self.recorder.entry_order(self._now, order)


def _check_finite(d: Decision, component: str) -> None:
    for name in ("risk_fraction", "stop_distance", "take_profit_distance"):
        v = getattr(d, name)
        if v is not None and not math.isfinite(v):
            raise ComponentError(f"{component} produced {name}={v}")
