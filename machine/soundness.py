"""Is a machine able to trade? Refuse what a run would refuse, and what would sit still forever.

A declaration can name only known states, guards and components and still never trade: a state
no transition leads to, a state with no way out that opens no trades, a warmup whose every exit
waits on a fact that cannot change while the agent sits in it. Each is refused before a run,
naming the state and why. The reasoning is over the declaration only, with one declared fact per
guard: what can make it true while the agent stays in a state (``GUARD_DRIVERS``):

    clock      bars and time pass              history_ready, cooldown_elapsed, windows
    trading    trades close or equity moves    closed trades, Kelly edge, losses, drawdown
    entry      fixed when the state is entered breaker trips, the state the agent came from
    operator   an operator command             resume_requested (ratchet-control RUN resume)
    component  a component acts by its role    component_failed (fallback), epsilon_drawn
    exchange   a live exchange's answer        exchange_refused (the API keys were refused)

The rules (errors name ``agent.machine.states.<state>``):

1. The initial state must have a transition out whose guards can all become true there. The
   agent starts with no trades, no positions, flat equity and no breaker trips, so unless the
   initial state opens trades (enables a signal and a sizer), its trading and entry guards keep
   the value they have on a fresh agent's facts; a transition needing one of those to change can
   never fire.
2. A state no transition leaves must open trades (it trades on forever, like the EMA baseline's
   ``conservative``) or be declared ``terminal: true``; a terminal state has no transition out.
3. Every state must be reachable from the initial state along declared transitions (leaving out
   those rule 1 found can never fire).

Warnings, not errors: a state reached only through transitions that wait on an operator command
or a component's role, and an initial state left only that way. Such a machine can be right
(a state only an operator may enter), but a run without that event never visits the state. A
state left only by a command, like ``halted`` (lifted by ``resume``), is a design, not a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from core.component import Stage, build_component
from core.errors import ConfigError
from core.facts import AgentFacts
from machine.guards import GUARDS, BoundGuard
from machine.spec import MachineSpec, TransitionSpec


class MachineWarning(UserWarning):
    """The machine can run, but some state is visited only after a command or a component's role."""


class Driver(StrEnum):
    """What can make a guard true while the agent stays in one state."""

    CLOCK = "clock"
    TRADING = "trading"
    ENTRY = "entry"
    OPERATOR = "operator"
    COMPONENT = "component"
    EXCHANGE = "exchange"  # what a live exchange answers (refused keys): a state only it leads to is a design


GUARD_DRIVERS: dict[str, Driver] = {
    "history_ready": Driver.CLOCK,
    "cooldown_elapsed": Driver.CLOCK,
    "exploration_window": Driver.CLOCK,
    "outside_exploration_window": Driver.CLOCK,
    "schedule_window": Driver.CLOCK,
    "outside_schedule_window": Driver.CLOCK,
    "closed_trades_at_least": Driver.TRADING,
    "kelly_edge_positive": Driver.TRADING,
    "kelly_edge_not_positive": Driver.TRADING,
    "consecutive_losses_at_least": Driver.TRADING,
    "drawdown_at_least": Driver.TRADING,
    "daily_loss_at_least": Driver.TRADING,
    "trips_within_at_least": Driver.ENTRY,
    "came_from": Driver.ENTRY,
    "resume_requested": Driver.OPERATOR,
    "exchange_refused": Driver.EXCHANGE,
    "component_failed": Driver.COMPONENT,
    "epsilon_drawn": Driver.COMPONENT,
}

_BY_EVENT = (Driver.OPERATOR, Driver.COMPONENT)
_EVENT_NAMES = {Driver.OPERATOR: "an operator command", Driver.COMPONENT: "a component's role"}


def check_machine(spec: MachineSpec, components: Mapping[str, Mapping[str, Any]], where: str) -> None:
    """Raise ConfigError naming every state the rules refuse; warn (MachineWarning) about command-only states.

    ``components`` are the agent's declarations (``{_target_: ..., **params}``); ``where`` is the
    agent's key (``agent``). Unknown guards and components and bad guard parameters are refused
    first, as building the agent would refuse them.
    """
    spec.check_references(set(GUARDS), set(components), where)
    guards = _bound_guards(spec, where)
    trades = _TradingStates(spec, components, where)
    never = _never_fire_from_initial(spec, guards, trades)
    stuck = list(_initial_cannot_end(spec, never))  # then nothing else is reached: say only that
    problems = [*stuck, *_dead_ends(spec, trades), *([] if stuck else _unreachable(spec, never))]
    if problems:
        raise ConfigError("\n  ".join(f"{where}.machine.states.{state}: {why}" for state, why in problems))
    for state, why in _reached_only_by_events(spec, never):
        warnings.warn(f"{where}.machine.states.{state}: {why}", MachineWarning, stacklevel=2)


def _bound_guards(spec: MachineSpec, where: str) -> dict[str, list[BoundGuard]]:
    """Each transition's guards with their parameters checked, as the machine builder binds them."""
    bound: dict[str, list[BoundGuard]] = {}
    for i, t in enumerate(spec.transitions):
        try:
            bound[t.trigger] = [BoundGuard(g) for g in t.when]
        except ConfigError as exc:
            raise ConfigError(f"{where}.machine.transitions.{i}: transition {t.trigger!r}: {exc}") from None
    return bound


class _TradingStates:
    """Which states open trades: they enable a signal and a sizer (components are built to know)."""

    def __init__(self, spec: MachineSpec, components: Mapping[str, Mapping[str, Any]], where: str):
        self._spec, self._components, self._where = spec, components, where
        self._stages: dict[str, Stage] = {}

    def open_trades(self, state: str) -> bool:
        stages = {self._stage(name) for name in self._spec.states[state].components}
        return Stage.SIGNAL in stages and Stage.SIZING in stages

    def _stage(self, name: str) -> Stage:
        if name not in self._stages:
            decl = dict(self._components[name])
            self._stages[name] = build_component(name, decl, f"{self._where}.components.{name}").stage
        return self._stages[name]


def _never_fire_from_initial(spec: MachineSpec, guards: Mapping[str, list[BoundGuard]],
                             trades: _TradingStates) -> dict[str, str]:
    """Transitions out of the initial state that can never fire there, each with the guard that blocks it."""
    state = spec.initial
    opens_trades = trades.open_trades(state)
    fresh = AgentFacts()  # what the guards read when the agent starts: no trades, no trips, flat equity
    never: dict[str, str] = {}
    for t in spec.transitions_from(state):
        for call, guard in zip(t.when, guards[t.trigger], strict=True):
            driver = GUARD_DRIVERS[call.name]
            if guard(fresh)[0] or driver not in (Driver.TRADING, Driver.ENTRY):
                continue
            if driver is Driver.ENTRY:
                never[t.trigger] = (f"{guard.__name__} (transition {t.trigger!r}) is false when the agent starts "
                                    f"and cannot change while it stays in {state!r}")
                break
            if not opens_trades:
                never[t.trigger] = (f"{guard.__name__} (transition {t.trigger!r}) needs trades, but {state!r} "
                                    f"enables no signal and sizer and the agent starts with no positions")
                break
    return never


def _initial_cannot_end(spec: MachineSpec, never: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    exits = spec.transitions_from(spec.initial)
    if exits and all(t.trigger in never for t in exits):
        blocked = "; ".join(never[t.trigger] for t in exits)
        yield spec.initial, f"the initial state can never be left: {blocked}"


def _dead_ends(spec: MachineSpec, trades: _TradingStates) -> Iterable[tuple[str, str]]:
    for state, decl in spec.states.items():
        exits = spec.transitions_from(state)
        if decl.terminal and exits:
            yield state, f"declared terminal, but transition {exits[0].trigger!r} leaves it"
        elif not exits and not decl.terminal and not trades.open_trades(state):
            yield state, ("no transition leaves it and its components open no trades, so an agent that "
                          "enters it never trades again; add a transition out or declare it `terminal: true`")


def _reachable(spec: MachineSpec, usable: Iterable[TransitionSpec]) -> set[str]:
    edges = list(usable)
    seen, frontier = {spec.initial}, [spec.initial]
    while frontier:
        state = frontier.pop()
        for t in edges:
            if state in t.source and t.dest not in seen:
                seen.add(t.dest)
                frontier.append(t.dest)
    return seen


def _usable(spec: MachineSpec, never: Mapping[str, str]) -> list[TransitionSpec]:
    """Transitions, less those from the initial state that can never fire (they may leave other states)."""
    return [t.model_copy(update={"source": tuple(s for s in t.source if s != spec.initial)})
            if t.trigger in never else t for t in spec.transitions]


def _unreachable(spec: MachineSpec, never: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    reached = _reachable(spec, _usable(spec, never))
    for state in spec.states:
        if state in reached:
            continue
        into = [t.trigger for t in spec.transitions if t.dest == state]
        why = (f"only transitions {', '.join(map(repr, into))} lead to it, from states the agent cannot reach"
               if into else "no transition leads to it")
        yield state, f"cannot be reached from the initial state {spec.initial!r}: {why}"


def _event(t: TransitionSpec) -> Driver | None:
    """The operator or component event a transition waits for, if any."""
    return next((GUARD_DRIVERS[g.name] for g in t.when if GUARD_DRIVERS[g.name] in _BY_EVENT), None)


def _reached_only_by_events(spec: MachineSpec, never: Mapping[str, str]) -> Iterable[tuple[str, str]]:
    usable = _usable(spec, never)
    exits = [t for t in usable if spec.initial in t.source]
    if exits and all(_event(t) is not None for t in exits):  # then so is every other state: say only that
        events = sorted({_EVENT_NAMES[_event(t)] for t in exits})  # type: ignore[index]
        yield spec.initial, f"the initial state is left only after {' or '.join(events)}"
        return
    reached = _reachable(spec, usable)
    on_its_own = _reachable(spec, [t for t in usable if _event(t) is None])
    gates = [t for t in usable if _event(t) is not None and t.dest not in on_its_own
             and any(s in on_its_own for s in t.source)]
    via = " or ".join(f"{t.trigger!r} ({_EVENT_NAMES[_event(t)]})" for t in gates)  # type: ignore[index]
    for state in spec.states:
        if state in reached and state not in on_its_own:
            yield state, f"reached only after transition {via}: a run without that event never visits it"
