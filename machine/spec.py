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
from core.validation import InvalidKey

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
    terminal: bool = False  # a deliberate end: no transition leaves it (see machine/soundness.py)
    # roles views, reports and alerts read instead of state names: `breaker` (no new entries after a
    # trip), `halt` (only an operator lifts it), `exploring` (clock- or draw-driven visits)
    tags: tuple[str, ...] = ()

    @field_validator("tags")
    @classmethod
    def _snake_tags(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for tag in v:
            if not _SNAKE.match(tag):
                raise ValueError(f"state tag {tag!r} must be snake_case")
        return v


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


class RolesSpec(BaseModel):
    """Triggers the agent fires by role, so no code names a trigger."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fallback: str | None = None  # a component failed: back to conservative defaults
    epsilon: str | None = None  # an epsilon draw took a signal the gate rejected: explore for it


class MachineSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    initial: str
    states: dict[str, StateSpec]
    transitions: tuple[TransitionSpec, ...]
    roles: RolesSpec = RolesSpec()

    @model_validator(mode="after")
    def _references_exist(self) -> MachineSpec:
        for name in self.states:
            if not _SNAKE.match(name):
                raise InvalidKey(
                    f"states.{name}", "state ids must be snake_case (a hyphen breaks mermaid and transitions)"
                )
        known = set(self.states)
        if self.initial not in known:
            raise InvalidKey("initial", f"state {self.initial!r} is not declared; states: {sorted(known)}")
        triggers: set[str] = set()
        for i, t in enumerate(self.transitions):
            for s in (*t.source, t.dest):
                if s not in known:
                    raise InvalidKey(f"transitions.{i}", f"transition {t.trigger!r} names unknown state {s!r}; "
                                                         f"states: {sorted(known)}")
            if t.trigger in triggers:
                raise InvalidKey(f"transitions.{i}", f"trigger {t.trigger!r} is declared twice")
            triggers.add(t.trigger)
        for role, trigger in self.roles.model_dump().items():
            if trigger is not None and trigger not in triggers:
                raise ValueError(f"roles.{role} names unknown trigger {trigger!r}; triggers: {sorted(triggers)}")
        return self

    def states_tagged(self, tag: str) -> tuple[str, ...]:
        """The states that carry ``tag``, in declared order."""
        return tuple(name for name, spec in self.states.items() if tag in spec.tags)

    def check_references(self, guards: set[str], components: set[str], where: str) -> None:
        """Reject guards and components the agent does not know, naming them."""
        for i, t in enumerate(self.transitions):
            for g in t.when:
                if g.name not in guards:
                    raise ConfigError(
                        f"{where}.machine.transitions.{i}: transition {t.trigger!r} names unknown guard "
                        f"{g.name!r}; known guards: {', '.join(sorted(guards))}"
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
