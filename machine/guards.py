"""The guard catalog: named, parameterised predicates over ledger facts and the clock.

Each guard returns ``(passed, evidence)``; the evidence (its inputs) is stored with the
transition it fired. Declarations name guards as ``{name: param}`` (see machine/spec.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.errors import ConfigError
from core.facts import HOUR_MS, AgentFacts
from machine.spec import GuardCall

Evidence = dict[str, Any]
GuardFn = Callable[[AgentFacts, Any], tuple[bool, Evidence]]

GUARDS: dict[str, GuardFn] = {}


def guard(fn: GuardFn) -> GuardFn:
    GUARDS[fn.__name__] = fn
    return fn


def _number(param: Any, name: str) -> float:
    if isinstance(param, bool) or not isinstance(param, int | float):
        raise ConfigError(f"guard {name!r} needs a number, got {param!r}")
    return float(param)


@guard
def history_ready(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    return f.history_ready, {"history_ready": f.history_ready}


@guard
def closed_trades_at_least(f: AgentFacts, n: Any) -> tuple[bool, Evidence]:
    need = _number(n, "closed_trades_at_least")
    return f.stats.closed_trades >= need, {"closed_trades": f.stats.closed_trades, "threshold": need}


@guard
def kelly_edge_positive(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    edge = f.stats.kelly_edge
    return edge is not None and edge > 0.0, f.stats.as_evidence()


@guard
def kelly_edge_not_positive(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    edge = f.stats.kelly_edge
    return edge is None or edge <= 0.0, f.stats.as_evidence()


@guard
def drawdown_at_least(f: AgentFacts, limit: Any) -> tuple[bool, Evidence]:
    lim = _number(limit, "drawdown_at_least")
    ev = {"drawdown": round(f.drawdown, 8), "limit": lim, "equity": f.equity, "peak_equity": f.peak_equity}
    return f.drawdown >= lim, ev


@guard
def daily_loss_at_least(f: AgentFacts, limit: Any) -> tuple[bool, Evidence]:
    lim = _number(limit, "daily_loss_at_least")
    ev = {"daily_loss": round(f.daily_loss, 8), "limit": lim, "equity": f.equity,
          "day_start_equity": f.day_start_equity}
    return f.daily_loss >= lim, ev


@guard
def consecutive_losses_at_least(f: AgentFacts, n: Any) -> tuple[bool, Evidence]:
    need = _number(n, "consecutive_losses_at_least")
    got = f.stats.consecutive_losses
    return got >= need, {"consecutive_losses": got, "threshold": need}


@guard
def cooldown_elapsed(f: AgentFacts, hours: Any) -> tuple[bool, Evidence]:
    need = _number(hours, "cooldown_elapsed")
    return f.hours_in_state >= need, {"hours_in_state": f.hours_in_state, "cooldown_hours": need}


@guard
def trips_within_at_least(f: AgentFacts, param: Any) -> tuple[bool, Evidence]:
    """Escalation: ``{count: 3, hours: 168}`` breaker trips inside the trailing window."""
    if not isinstance(param, dict) or set(param) != {"count", "hours"}:
        raise ConfigError(f"guard 'trips_within_at_least' needs {{count, hours}}, got {param!r}")
    since = f.now - float(param["hours"]) * HOUR_MS
    recent = sum(1 for t in f.breaker_trips if t >= since)
    return recent >= param["count"], {"recent_trips": recent, **param}


@guard
def resume_requested(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    return f.resume_requested, {"resume_requested": f.resume_requested}


@guard
def exchange_refused(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    """The exchange refused the API keys (live): nothing can be sent until an operator resumes."""
    return f.exchange_refused is not None, {"exchange_refused": f.exchange_refused}


@guard
def epsilon_drawn(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    return f.epsilon_drawn, {"epsilon_drawn": f.epsilon_drawn}


@guard
def component_failed(f: AgentFacts, _: Any) -> tuple[bool, Evidence]:
    return f.failure is not None, {"failure": f.failure}


@guard
def exploration_window(f: AgentFacts, param: Any) -> tuple[bool, Evidence]:
    """Inside ``[start_minute, end_minute)`` of each hour on the agent's clock."""
    start, end = _window(param)
    minute = (f.now // 60_000) % 60
    return start <= minute < end, {"minute": int(minute), "window": [start, end]}


@guard
def outside_exploration_window(f: AgentFacts, param: Any) -> tuple[bool, Evidence]:
    inside, ev = exploration_window(f, param)
    return not inside, ev


@guard
def schedule_window(f: AgentFacts, param: Any) -> tuple[bool, Evidence]:
    """The first ``for_hours`` of every ``every_hours`` (from the epoch, UTC) on the agent's clock."""
    every, length = _schedule(param)
    hour = (f.now // HOUR_MS) % every
    return hour < length, {"hour_in_cycle": int(hour), "every_hours": every, "for_hours": length}


@guard
def outside_schedule_window(f: AgentFacts, param: Any) -> tuple[bool, Evidence]:
    inside, ev = schedule_window(f, param)
    return not inside, ev


def _schedule(param: Any) -> tuple[int, int]:
    if not isinstance(param, dict) or set(param) != {"every_hours", "for_hours"}:
        raise ConfigError(f"schedule window needs {{every_hours, for_hours}}, got {param!r}")
    every, length = int(param["every_hours"]), int(param["for_hours"])
    if not 0 < length < every:
        raise ConfigError(f"schedule window needs 0 < for_hours < every_hours, got {param!r}")
    return every, length


@guard
def came_from(f: AgentFacts, state: Any) -> tuple[bool, Evidence]:
    return f.came_from == state, {"came_from": f.came_from}


def _window(param: Any) -> tuple[int, int]:
    if not isinstance(param, dict) or set(param) != {"start_minute", "end_minute"}:
        raise ConfigError(f"exploration window needs {{start_minute, end_minute}}, got {param!r}")
    start, end = int(param["start_minute"]), int(param["end_minute"])
    if not 0 <= start < end <= 60:
        raise ConfigError(f"exploration window minutes must satisfy 0 <= start < end <= 60, got {param!r}")
    return start, end


# When the clock alone can next change a guard's value (ms), for guards the clock drives; every
# other guard changes only with the facts (trades, equity, commands, failures). The engine steps
# over quiet bars up to the earliest of these (machine/engine.py).
ClockFn = Callable[[AgentFacts, Any], int | None]


def _after(now: int, candidates: list[int]) -> int:
    return min(t for t in candidates if t > now)


def _cooldown_ends(f: AgentFacts, hours: Any) -> int | None:
    ends = f.state_entered_at + int(_number(hours, "cooldown_elapsed") * HOUR_MS)
    return ends if ends > f.now else None


def _window_edge(f: AgentFacts, param: Any) -> int:
    start, end = _window(param)
    hour = f.now - f.now % HOUR_MS
    return _after(f.now, [hour + m * 60_000 for m in (start, end, start + 60, end + 60)])


def _schedule_edge(f: AgentFacts, param: Any) -> int:
    every, length = _schedule(param)
    cycle = f.now - f.now % (every * HOUR_MS)
    return _after(f.now, [cycle + length * HOUR_MS, cycle + every * HOUR_MS, cycle + (every + length) * HOUR_MS])


# Guards that read equity: with a position open, its price moves them on every bar.
READS_EQUITY = frozenset({"drawdown_at_least", "daily_loss_at_least"})

CLOCKS: dict[str, ClockFn] = {
    "cooldown_elapsed": _cooldown_ends,
    "exploration_window": _window_edge,
    "outside_exploration_window": _window_edge,
    "schedule_window": _schedule_edge,
    "outside_schedule_window": _schedule_edge,
}


class BoundGuard:
    """A guard bound to its parameter; named by its label so diagrams show it on the edge."""

    __slots__ = ("__name__", "clock", "fn", "name", "param")

    def __init__(self, call: GuardCall):
        if call.name not in GUARDS:
            raise ConfigError(f"unknown guard {call.name!r}; known: {', '.join(sorted(GUARDS))}")
        self.fn = GUARDS[call.name]
        self.name = call.name
        self.clock = CLOCKS.get(call.name)
        self.param = call.param
        self.__name__ = call.label
        self.fn(AgentFacts(), self.param)  # validates the parameter now, not mid-run

    def __call__(self, facts: AgentFacts) -> tuple[bool, Evidence]:
        return self.fn(facts, self.param)

    def next_change(self, facts: AgentFacts) -> int | None:
        """When the clock may next change this guard's value (ms), or None if only facts can."""
        return self.clock(facts, self.param) if self.clock is not None else None
