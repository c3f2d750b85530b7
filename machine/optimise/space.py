"""The declared search space and schedule of the weekly optimiser (``agent.optimise``).

The space names component parameters under ``agent.components``, one mapping per component,
and gives each a range (a nested parameter nests one level more)::

    space:
      signal:
        fast: {type: int, low: 5, high: 13}
      fixed_risk:
        risk: {type: float, low: 0.0015, high: 0.006, log: true}
      atr_exits:
        stop_atr: {normal: {type: float, low: 1.5, high: 3.0}}
      regime_gate:
        trade_with_trend: {type: choice, choices: [true, false]}

It is checked against the agent when the config is validated, each mistake naming its key
(``agent.optimise.space.signal.fast``): the parameter must exist (declared, or a default of the
component's Config), its range must hold more than one value, each bound must be a value the
component accepts on its own, and the value in force must lie inside the range. Components that
learn on the agent's clock (the ML gate) cannot vary: a rebuild would discard what they learned.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from core.component import Component, declared_target
from core.errors import ConfigError
from core.validation import InvalidKey

Objective = Literal["return_over_drawdown", "sharpe", "return"]
Scalar = bool | int | float | str | None


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ParamRange(_Frozen):
    """How one parameter varies: an int or float range (optionally on a log scale), or a choice."""

    type: Literal["int", "float", "choice"]
    low: int | float | None = None
    high: int | float | None = None
    log: bool = False  # sample on a log scale (low > 0)
    step: int | None = Field(default=None, ge=1)  # int ranges: the stride (default 1)
    choices: tuple[Scalar, ...] | None = None

    @model_validator(mode="after")
    def _well_formed(self) -> ParamRange:
        problem = self._problem()
        if problem is not None:
            raise ValueError(problem)
        return self

    def _problem(self) -> str | None:
        if self.type == "choice":
            if self.low is not None or self.high is not None or self.log or self.step is not None:
                return "a choice takes `choices` only (no low, high, log or step)"
            if self.choices is None or len(self.choices) < 2:
                return "a choice needs at least two `choices`"
            if len({(type(c), c) for c in self.choices}) < len(self.choices):
                return f"choices {list(self.choices)} repeat a value"
            return None
        if self.choices is not None:
            return f"`choices` is for type: choice; a {self.type} range takes low and high"
        if self.low is None or self.high is None:
            return f"a {self.type} range needs low and high"
        if self.type == "int" and not (_is_int(self.low) and _is_int(self.high)):
            return f"an int range needs whole bounds (got low {self.low}, high {self.high})"
        if self.type == "float" and self.step is not None:
            return "step is for int ranges"
        if not self.low < self.high:
            return f"empty range: low {self.low} is not below high {self.high}"
        if self.log and self.low <= 0:
            return f"a log scale needs low > 0 (got {self.low})"
        if self.log and self.step not in (None, 1):
            return "a log scale takes no step"
        return None

    def bounds(self) -> tuple[Any, ...]:
        """The values a study may reach at the edges (every choice for a choice)."""
        if self.type == "choice":
            assert self.choices is not None
            return self.choices
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return int(self.low), int(self.high)
        return float(self.low), float(self.high)

    def contains(self, value: Any) -> bool:
        if self.type == "choice":
            assert self.choices is not None
            return any(type(value) is type(c) and value == c for c in self.choices)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        low, high = self.bounds()
        if not low <= value <= high:
            return False
        return self.type != "int" or (value - low) % (self.step or 1) == 0

    def describe(self) -> str:
        if self.type == "choice":
            return f"choices {list(self.bounds())}"
        low, high = self.bounds()
        extra = (", log" if self.log else "") + (f", step {self.step}" if self.step else "")
        return f"[{low}, {high}]{extra}"


class OptimiseConfig(_Frozen):
    """``agent.optimise``: what varies, how candidates are judged, and when the job runs."""

    enabled: bool = True  # false: declared but off (no study, no canary; replays as without the block)
    space: dict[str, ParamRange] = Field(min_length=1)  # "component.key" -> range (nested in YAML)
    objective: Objective = "return_over_drawdown"  # net of fees, from the equity marks (objective.py)
    lookback_days: float = Field(default=28.0, gt=0)  # the study backtests the bars of this stretch before now
    trials: int = Field(default=30, ge=1)  # per study; the first trial is the set in force
    startup_trials: int = Field(default=8, ge=1)  # random trials before TPE models the results
    every_days: float = Field(default=7.0, gt=0)  # a study this long after the last one began ...
    stale_after_days: float = Field(default=8.0, gt=0)  # ... and at once when the set in force is older
    canary_days: float = Field(default=7.0, gt=0)  # the challenger shadows the agent this long
    watch_days: float = Field(default=7.0, ge=0)  # after a promotion: the previous set is shadowed this long
    margin: float = Field(default=0.0, ge=0)  # objective units a challenger must win by (and a promoted set may lose)
    storage: str | None = None  # an Optuna storage URL to share studies; None: a journal in the run folder

    @field_validator("space", mode="before")
    @classmethod
    def _flatten(cls, value: Any) -> Any:
        """The nested YAML mapping as ``{"component.key": range}`` (keys the way overrides name them)."""
        if not isinstance(value, Mapping):
            return value
        return _flatten(value, "")


def _flatten(node: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "type" not in value and all(isinstance(v, Mapping) for v in value.values()):
            if not value:
                raise InvalidKey(path, "names no parameter to vary")
            out.update(_flatten(value, f"{path}."))
        elif isinstance(value, Mapping) and "type" in value:
            if "." not in path:
                raise InvalidKey(path, "name a parameter of the component: space.<component>.<key>: {type: ...}")
            out[path] = value
        else:
            raise InvalidKey(path, "a range needs `type` (int, float or choice), e.g. {type: int, low: 5, high: 15}")
    return out


def _is_int(value: float) -> bool:
    return not isinstance(value, bool) and float(value).is_integer() and math.isfinite(value)


# --- the space against the agent's components ------------------------------------------------
def learns_on_clock(cls: type[Component]) -> bool:
    """A component with scheduled learning (models, schedules): trials follow it, the space cannot vary it."""
    return cls.on_clock is not Component.on_clock


def resolved_params(decl: Mapping[str, Any], where: str) -> tuple[type[Component], dict[str, Any]]:
    """The component's class and every parameter it runs with (declared, or its Config's default)."""
    cls, config = declared_target(dict(decl), where, Component)
    return cls, config.model_dump(mode="python")  # type: ignore[return-value]


def read_path(params: Mapping[str, Any], key: str) -> Any:
    node: Any = params
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(part)
        node = node[part]
    return node


def with_value(params: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``params`` with ``key`` (dotted, nested) set to ``value``."""
    out = copy.deepcopy(dict(params))
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        node[part] = child = dict(child) if isinstance(child, Mapping) else {}
        node = child
    node[parts[-1]] = value
    return out


def check_space(space: Mapping[str, ParamRange], components: Mapping[str, Mapping[str, Any]]) -> None:
    """Raise InvalidKey naming ``space.<component>.<key>`` for anything this agent cannot vary."""
    for path, rng in space.items():
        name, _, key = path.partition(".")
        where = f"space.{path}"
        if name not in components:
            raise InvalidKey(where, f"the agent has no component {name!r} (it has {sorted(components)})")
        try:
            cls, params = resolved_params(components[name], f"agent.components.{name}")
        except ConfigError:
            continue  # the component's own declaration is wrong: building it says so, naming its key
        if learns_on_clock(cls):
            raise InvalidKey(where, f"{name} learns on the agent's clock; rebuilding it with other parameters "
                                    "would discard what it learned")
        try:
            current = read_path(params, key)
        except KeyError:
            raise InvalidKey(where, f"agent.components.{name} has no parameter {key!r} "
                                    f"(it has {sorted(params)})") from None
        _check_kind(rng, current, where)
        if not rng.contains(current):
            raise InvalidKey(where, f"the value in force {current!r} lies outside {rng.describe()}")
        for bound in rng.bounds():
            problem = _rejected(cls, params, key, bound)
            if problem is not None:
                raise InvalidKey(where, f"{bound!r} is not a value agent.components.{name}.{key} accepts: {problem}")


def _check_kind(rng: ParamRange, current: Any, where: str) -> None:
    numeric = isinstance(current, int | float) and not isinstance(current, bool)
    if rng.type != "choice" and not numeric:
        raise InvalidKey(where, f"the value in force is {current!r}, not a number: use type: choice")
    if rng.type == "float" and isinstance(current, int) and not isinstance(current, bool):
        raise InvalidKey(where, f"the value in force {current!r} is an integer: use type: int")


def _rejected(cls: type[Component], params: Mapping[str, Any], key: str, value: Any) -> str | None:
    """Why the component's Config refuses ``value`` for ``key`` on its own (joint rules such as
    fast < slow are left to the trials, which skip such combinations), or None."""
    try:
        cls.Config.model_validate(with_value(params, key, value))
    except ValidationError as exc:
        path = tuple(key.split("."))
        for err in exc.errors():
            if tuple(str(p) for p in err["loc"][: len(path)]) == path and len(err["loc"]) >= len(path):
                return str(err["msg"])
    return None


# --- parameter sets and component declarations -----------------------------------------------
def in_force(space: Mapping[str, Any], declarations: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The value each key of the space has in these component declarations."""
    out = {}
    for path in space:
        name, _, key = path.partition(".")
        out[path] = read_path(resolved_params(declarations[name], f"agent.components.{name}")[1], key)
    return out


def merged(declarations: Mapping[str, Mapping[str, Any]], params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The component declarations with ``params`` ({"component.key": value}) set; untouched ones as declared."""
    out = {name: dict(decl) for name, decl in declarations.items()}
    by_component: dict[str, list[tuple[str, Any]]] = {}
    for path, value in params.items():
        name, _, key = path.partition(".")
        by_component.setdefault(name, []).append((key, value))
    for name, values in by_component.items():
        decl = declarations[name]
        resolved = resolved_params(decl, f"agent.components.{name}")[1]
        for key, value in values:
            resolved = with_value(resolved, key, value)
        out[name] = {"_target_": decl["_target_"], **resolved}
    return out


def overrides(params: Mapping[str, Any]) -> list[str]:
    """The parameters as Hydra overrides ready to paste (``agent.components.signal.fast=7``)."""
    return [f"agent.components.{path}={json.dumps(value)}" for path, value in params.items()]


def _checked(value: OptimiseConfig | None, info: ValidationInfo) -> OptimiseConfig | None:
    components = info.data.get("components")
    if value is not None and components is not None:
        check_space(value.space, components)
    return value


# The type of ``AgentConfig.optimise``: the block, checked against the agent's components.
OptimiseField = Annotated[OptimiseConfig | None, AfterValidator(_checked)]
