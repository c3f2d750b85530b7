"""The machine declaration: states, the components each enables, and guarded transitions.

A declaration is data (YAML via Hydra). It is validated here, before anything trades, against
the guard catalog and the agent's declared components, so a typo fails with a message that names
the state, transition or guard.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.errors import ConfigError

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")

# Actions a state runs on entry or a transition runs when it fires:
#   flatten: close every open position; alert: record a notification; reset_risk: sizers back to base;
#   record_trip: count a breaker trip (for escalation); start_afresh: peak, day and streak restart now.
Action = Literal["flatten", "alert", "reset_risk", "record_trip", "start_afresh"]


class StateSpec(BaseModel):
    """One state: which components run while the agent is in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    components: tuple[str, ...] = ()
    on_enter: tuple[Action, ...] = ()
    description: str = ""


class GuardCall(BaseModel):
    """A named guard with its parameter (``None`` for guards that take none)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    param: Any = None

    @property
    def label(self) -> str:
        if self.param is None:
            return self.name
        if isinstance(self.param, dict):
            inner = ", ".join(f"{k}={v}" for k, v in self.param.items())
            return f"{self.name}({inner})"
        return f"{self.name}({self.param})"


def _parse_when(value: Any) -> tuple[GuardCall, ...]:
    """``when`` is a guard name, ``{name: param}``, or a list of those (all must pass)."""
    items = value if isinstance(value, list | tuple) else [value]
    calls: list[GuardCall] = []
    for item in items:
        if isinstance(item, GuardCall):
            calls.append(item)
        elif isinstance(item, str):
            calls.append(GuardCall(name=item))
        elif isinstance(item, dict) and "name" in item and set(item) <= {"name", "param"}:
            calls.append(GuardCall(**item))
        elif isinstance(item, dict) and len(item) >= 1:
            calls.extend(GuardCall(name=k, param=v) for k, v in item.items())
        else:
            raise ValueError(f"a guard must be a name or {{name: param}}, got {item!r}")
    return tuple(calls)


class TransitionSpec(BaseModel):
    """A guarded move; the first declared transition from the current state whose guards pass fires."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: str
    source: tuple[str, ...]
    dest: str
    when: tuple[GuardCall, ...] = Field(default=())
    actions: tuple[Action, ...] = ()

    @field_validator("source", mode="before")
    @classmethod
    def _source_list(cls, v: Any) -> Any:
        if v == "*":
            raise ValueError("source '*' includes the destination itself; list the sources")
        return [v] if isinstance(v, str) else v

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, v: Any) -> Any:
        return _parse_when(v) if v is not None else ()


class MachineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: str
    states: dict[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]

    @model_validator(mode="after")
    def _references_exist(self) -> MachineSpec:
        for name in self.states:
            if not _SNAKE.match(name):
                raise ValueError(
                    f"state id {name!r} must be snake_case (a hyphen breaks mermaid and transitions)"
                )
        known = set(self.states)
        if self.initial not in known:
            raise ValueError(f"initial state {self.initial!r} is not declared; states: {sorted(known)}")
        triggers: set[str] = set()
        for t in self.transitions:
            for s in (*t.source, t.dest):
                if s not in known:
                    raise ValueError(
                        f"transition {t.trigger!r} names unknown state {s!r}; states: {sorted(known)}"
                    )
            if t.trigger in triggers:
                raise ValueError(f"trigger {t.trigger!r} is declared twice")
            triggers.add(t.trigger)
        return self

    def check_references(self, guards: set[str], components: set[str], where: str) -> None:
        """Reject guards and components the agent does not know, naming them."""
        for t in self.transitions:
            for g in t.when:
                if g.name not in guards:
                    raise ConfigError(
                        f"{where}.machine.transitions[{t.trigger}]: unknown guard {g.name!r}; "
                        f"known guards: {', '.join(sorted(guards))}"
                    )
        for state, spec in self.states.items():
            for c in spec.components:
                if c not in components:
                    raise ConfigError(
                        f"{where}.machine.states.{state}: unknown component {c!r}; "
                        f"declared components: {', '.join(sorted(components))}"
                    )

    def transitions_from(self, state: str) -> list[TransitionSpec]:
        return [t for t in self.transitions if state in t.source]
