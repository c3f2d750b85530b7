"""The learning loops an agent declares, and the config changes that switch each one off.

Every switch is config only: a mapping merged over the composed config (mappings merge, lists
replace), written as a Hydra config group option (``+ablation=without_kelly``). Loops are found
in the agent's declaration by what its components are and by its states' tags, never by names:

    retraining              every ML gate keeps its first model (retrain_every_days: a million days)
    ensemble_weighting      equal member weights (temperature so high that softmax is flat; no updates)
    gate_threshold          the ML gate's threshold fixed at its start (threshold_min = threshold_max)
    ml_gate                 signals only: the ML gate leaves every state                 [placebo: coin]
    kelly                   fixed risk at Kelly's base risk in Kelly's place             [placebo: risk]
    exploration             no way into an `exploring` state, epsilon 0
    parameter_optimisation  optimise.enabled: false
    regime_gating           the regime gate (admit: inside) leaves every state            [placebo: coin]
    adaptive_stops          stop and target multiples of the normal regime in every regime
    breakers                no way into a `breaker` state

A transition is closed by adding a guard no run passes (``closed_trades_at_least: 10**12``): the
machine keeps its states, so it stays sound (machine/soundness.py refuses unreachable states).
An ablated agent is named ``<agent>~<arm>``: its ledger says which arm it is (the
``learning_effect`` view pairs arms by that name).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from components.exits import AtrExits
from components.ml_gate import MLGate
from components.regime_detector import RegimeGate
from components.sizing import FixedRiskSizer, KellySizer
from core.component import Component, Stage, declared_target
from core.errors import ConfigError

NEVER_CLOSED_TRADES = 10**12
NEVER = {"closed_trades_at_least": NEVER_CLOSED_TRADES}  # a guard no run passes
NEVER_DAYS = 1_000_000.0  # a retrain interval no run reaches
EQUAL_WEIGHTS = {"temperature": 1.0e9, "cadence": 10**9}  # softmax flat to 1e-11; never updated
ARM_SEPARATOR = "~"
FULL = "full"

Placebo = Literal["coin", "risk"]
ArmKind = Literal["full", "off", "placebo"]


@dataclass(frozen=True)
class Loop:
    """One learning loop: what switching it off means, and the agent changes that do it."""

    name: str
    title: str
    off: dict[str, Any]  # merged over the composed `agent` node
    placebo: Placebo | None = None
    component: str | None = None  # the component a placebo takes the place of


@dataclass(frozen=True)
class Arm:
    """One replay of the ablation: the full agent, a loop switched off, or a loop's placebo."""

    name: str
    kind: ArmKind
    loop: str | None
    agent_changes: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    def config(self, agent_name: str) -> dict[str, Any]:
        """What the arm's config group option merges over the composed config."""
        if self.kind == "full":
            return {}
        return {"agent": {"name": f"{agent_name}{ARM_SEPARATOR}{self.name}", **self.agent_changes}}


class AgentDeclaration:
    """The composed ``agent`` node, read for what its components are and how its machine is wired."""

    def __init__(self, agent: Mapping[str, Any]):
        self.agent = copy.deepcopy(dict(agent))
        self.name: str = self.agent["name"]
        self.components: dict[str, dict[str, Any]] = self.agent["components"]
        self.states: dict[str, dict[str, Any]] = self.agent["machine"]["states"]
        self.transitions: list[dict[str, Any]] = self.agent["machine"]["transitions"]

    def built(self, name: str) -> tuple[type[Component], BaseModel]:
        return declared_target(self.components[name], f"agent.components.{name}", Component)

    def used(self) -> list[str]:
        """Components some state enables, in declared order."""
        return list(dict.fromkeys(c for s in self.states.values() for c in s.get("components", [])))

    def of_kind(self, base: type[Component], keep: Callable[[BaseModel], bool] = lambda c: True) -> list[str]:
        """Used components that are ``base`` (or a subclass) and whose config passes ``keep``."""
        found = []
        for name in self.used():
            cls, config = self.built(name)
            if issubclass(cls, base) and keep(config):
                found.append(name)
        return found

    def tagged(self, tag: str) -> list[str]:
        return [s for s, spec in self.states.items() if tag in spec.get("tags", [])]

    def without(self, names: Iterable[str]) -> dict[str, Any]:
        """Every state's components less ``names``."""
        drop = set(names)
        return {"machine": {"states": {
            s: {"components": [c for c in spec["components"] if c not in drop]}
            for s, spec in self.states.items() if drop & set(spec.get("components", []))}}}

    def replacing(self, old: str, new: str, declaration: dict[str, Any]) -> dict[str, Any]:
        """``new`` (declared here) wherever a state enables ``old``."""
        return {"components": {new: declaration}, "machine": {"states": {
            s: {"components": [new if c == old else c for c in spec["components"]]}
            for s, spec in self.states.items() if old in spec.get("components", [])}}}

    def closed_into(self, states: Iterable[str]) -> dict[str, Any]:
        """The transitions, each into one of ``states`` given a guard no run passes."""
        into = set(states)
        transitions = []
        for t in self.transitions:
            t = copy.deepcopy(t)
            if t["dest"] in into:
                when = t.get("when", [])
                t["when"] = [*(when if isinstance(when, list) else [when]), dict(NEVER)]
            transitions.append(t)
        return {"machine": {"transitions": transitions}}

    def kelly_states(self, kelly: str) -> list[str]:
        return [s for s, spec in self.states.items() if kelly in spec.get("components", [])]


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` over ``base`` as OmegaConf merges a config file: mappings merge, the rest replaces."""
    out = copy.deepcopy(dict(base))
    for key, value in changes.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _gates(a: AgentDeclaration) -> list[str]:
    return a.of_kind(MLGate)


def _retraining(a: AgentDeclaration) -> list[Loop]:
    gates = _gates(a)
    if not gates:
        return []
    return [Loop("retraining", "the first model forever (no retraining)",
                 {"components": {g: {"retrain_every_days": NEVER_DAYS} for g in gates}})]


def _ensemble_weighting(a: AgentDeclaration) -> list[Loop]:
    gates = a.of_kind(MLGate, lambda c: c.retrainer.ensemble.combiner == "weighted")  # type: ignore[attr-defined]
    if not gates:
        return []
    return [Loop("ensemble_weighting", "equal ensemble weights, never updated",
                 {"components": {g: {"retrainer": {"ensemble": dict(EQUAL_WEIGHTS)}} for g in gates}})]


def _gate_threshold(a: AgentDeclaration) -> list[Loop]:
    gates = _gates(a)
    if not gates:
        return []
    fixed = {}
    for g in gates:
        threshold = a.built(g)[1].threshold  # type: ignore[attr-defined]
        fixed[g] = {"threshold_min": threshold, "threshold_max": threshold}
    return [Loop("gate_threshold", "the gate threshold fixed at its start", {"components": fixed})]


def component_loop(name: str, title: str, a: AgentDeclaration, component: str) -> Loop:
    """A loop that is one component: off, no state enables it; a filter's placebo is a coin in its place."""
    cls, _ = a.built(component)
    placebo: Placebo | None = "coin" if cls.stage in (Stage.GATE, Stage.MODEL_GATE) else None
    return Loop(name, title, a.without([component]), placebo, component)


def _ml_gate(a: AgentDeclaration) -> list[Loop]:
    gates = _gates(a)
    return [component_loop("ml_gate" if len(gates) == 1 else f"ml_gate:{g}", "signals only (no ML gate)", a, g)
            for g in gates]


def _kelly(a: AgentDeclaration) -> list[Loop]:
    loops = []
    sizers = a.of_kind(KellySizer)
    for k in sizers:
        base_risk = a.built(k)[1].base_risk  # type: ignore[attr-defined]
        fixed = {"_target_": f"{FixedRiskSizer.__module__}.{FixedRiskSizer.__qualname__}", "risk": base_risk}
        loops.append(Loop("kelly" if len(sizers) == 1 else f"kelly:{k}", f"fixed risk {base_risk:.2%} in Kelly's place",
                          a.replacing(k, f"{k}_off", fixed), "risk", k))
    return loops


def _exploration(a: AgentDeclaration) -> list[Loop]:
    exploring = a.tagged("exploring")
    epsilon = [n for n in a.used() if "epsilon" in a.built(n)[0].Config.model_fields]
    if not exploring and not epsilon:
        return []
    changes = merge(a.closed_into(exploring), {"components": {n: {"epsilon": 0.0} for n in epsilon}})
    return [Loop("exploration", "no exploration (no windows, epsilon 0)", changes)]


def _parameter_optimisation(a: AgentDeclaration) -> list[Loop]:
    optimise = a.agent.get("optimise")
    if not optimise or not optimise.get("enabled", True):
        return []
    return [Loop("parameter_optimisation", "no weekly parameter optimisation", {"optimise": {"enabled": False}})]


def _regime_gating(a: AgentDeclaration) -> list[Loop]:
    gates = a.of_kind(RegimeGate, lambda c: c.admit == "inside")  # type: ignore[attr-defined]
    return [component_loop("regime_gating" if len(gates) == 1 else f"regime_gating:{g}",
                           "no regime gate", a, g) for g in gates]


def _adaptive_stops(a: AgentDeclaration) -> list[Loop]:
    exits = a.of_kind(AtrExits)
    if not exits:
        return []
    fixed: dict[str, Any] = {}
    for e in exits:
        config = a.built(e)[1]
        stop, target = config.stop_atr, config.take_profit_atr  # type: ignore[attr-defined]
        fixed[e] = {"stop_atr": dict.fromkeys(("low", "normal", "high"), stop.normal)}
        if target is not None:
            fixed[e]["take_profit_atr"] = dict.fromkeys(("low", "normal", "high"), target.normal)
    return [Loop("adaptive_stops", "the normal regime's stop and target multiples in every regime",
                 {"components": fixed})]


def _breakers(a: AgentDeclaration) -> list[Loop]:
    breakers = a.tagged("breaker")
    if not breakers:
        return []
    return [Loop("breakers", "no circuit breaker", a.closed_into(breakers))]


CATALOG: tuple[Callable[[AgentDeclaration], list[Loop]], ...] = (
    _retraining, _ensemble_weighting, _gate_threshold, _ml_gate, _kelly, _exploration,
    _parameter_optimisation, _regime_gating, _adaptive_stops, _breakers,
)
LOOP_NAMES = ("retraining", "ensemble_weighting", "gate_threshold", "ml_gate", "kelly", "exploration",
              "parameter_optimisation", "regime_gating", "adaptive_stops", "breakers")


def declared_loops(agent: Mapping[str, Any]) -> list[Loop]:
    """The loops the composed ``agent`` node declares, in the catalogue's order."""
    a = AgentDeclaration(agent)
    return [loop for find in CATALOG for loop in find(a)]


def select(loops: list[Loop], names: Iterable[str] | None) -> list[Loop]:
    """The loops named (all when ``names`` is None); a name the agent does not declare is a ConfigError."""
    if names is None:
        return loops
    wanted = list(names)
    known = {loop.name for loop in loops}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(f"--loops: {', '.join(unknown)} not declared by this agent; it declares: "
                          f"{', '.join(loop.name for loop in loops) or 'none'}")
    return [loop for loop in loops if loop.name in wanted]


def off_arm(loop: Loop) -> Arm:
    return Arm(f"without_{slug(loop.name)}", "off", loop.name, loop.off, loop.title)


def slug(name: str) -> str:
    return name.replace(":", "_")
