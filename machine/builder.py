"""Build a ``transitions`` machine from a MachineSpec and evaluate its guards against facts.

The declared order is the priority: from the current state, the first transition whose guards all
pass fires. Guards are plain functions, so evaluating them every bar costs a few calls; the
``transitions`` machine is the authority for the state and re-checks the same guards when fired.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from transitions import Machine
from transitions.extensions import GraphMachine

from core.facts import AgentFacts
from machine.guards import READS_EQUITY, BoundGuard, Evidence
from machine.spec import MachineSpec, TransitionSpec

logging.getLogger("transitions").setLevel(logging.WARNING)  # the ledger records every transition


@dataclass(frozen=True)
class Fired:
    """A transition that happened, with the guard inputs that made it fire."""

    trigger: str
    source: str
    dest: str
    reason: str
    evidence: dict[str, Evidence]
    actions: tuple[str, ...] = ()


class _Condition:
    """Adapts a guard to ``transitions``: a bool-returning callable named by its label."""

    __slots__ = ("__name__", "guard")

    def __init__(self, guard: BoundGuard):
        self.guard = guard
        self.__name__ = guard.__name__

    def __call__(self, facts: AgentFacts) -> bool:
        return self.guard(facts)[0]


class _Model:
    state: str


def _declaration(spec: MachineSpec) -> tuple[dict[str, Any], dict[str, list[BoundGuard]]]:
    bound = {t.trigger: [BoundGuard(g) for g in t.when] for t in spec.transitions}
    transitions = [
        {
            "trigger": t.trigger,
            "source": list(t.source),
            "dest": t.dest,
            "conditions": [_Condition(g) for g in bound[t.trigger]],
        }
        for t in spec.transitions
    ]
    decl = {"states": list(spec.states), "initial": spec.initial, "transitions": transitions,
            "auto_transitions": False}
    return decl, bound


class AgentMachine:
    """The state machine of one agent."""

    def __init__(self, spec: MachineSpec):
        self.spec = spec
        decl, self._guards = _declaration(spec)
        self._model = _Model()
        Machine(model=self._model, **decl)
        self._outgoing: dict[str, list[TransitionSpec]] = {
            s: spec.transitions_from(s) for s in spec.states
        }

    @property
    def state(self) -> str:
        return self._model.state

    def evaluate(self, facts: AgentFacts) -> Fired | None:
        """Fire the first transition from the current state whose guards all pass."""
        for t in self._outgoing[self.state]:
            fired = self._fire_if_guards_pass(t, facts)
            if fired is not None:
                return fired
        return None

    def next_change(self, facts: AgentFacts) -> int | None:
        """The earliest time (ms) the clock alone may change a guard of a transition out of the current
        state; None when only the facts can (trades, equity, commands, failures)."""
        times = [t for tr in self._outgoing[self.state] for g in self._guards[tr.trigger]
                 if (t := g.next_change(facts)) is not None]
        return min(times, default=None)

    def watches_equity(self) -> bool:
        """Whether a transition out of the current state reads equity (drawdown, daily loss)."""
        return any(g.name in READS_EQUITY for tr in self._outgoing[self.state] for g in self._guards[tr.trigger])

    def force(self, trigger: str, facts: AgentFacts) -> Fired | None:
        """Fire a named trigger if it is declared from the current state and its guards pass."""
        for t in self._outgoing[self.state]:
            if t.trigger == trigger:
                return self._fire_if_guards_pass(t, facts)
        return None

    def _fire_if_guards_pass(self, t: TransitionSpec, facts: AgentFacts) -> Fired | None:
        """Evaluate the guards in order (stopping at the first that fails) and fire if all pass."""
        evidence: dict[str, Evidence] = {}
        for g in self._guards[t.trigger]:
            passed, ev = g(facts)
            evidence[g.__name__] = ev
            if not passed:
                return None
        source = self.state
        if not getattr(self._model, t.trigger)(facts):
            raise RuntimeError(f"transition {t.trigger!r} refused after its guards passed")
        return Fired(t.trigger, source, t.dest, " and ".join(evidence) or "unconditional", evidence, t.actions)


def mermaid(spec: MachineSpec, title: str = "") -> str:
    """The machine as mermaid text, guards on the edges, rendered from the same declaration."""
    decl, _ = _declaration(spec)
    model = _Model()
    GraphMachine(model=model, graph_engine="mermaid", show_conditions=True, title=title or None,
                 **decl)
    text = model.get_graph().draw(None)  # type: ignore[attr-defined]
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return "\n".join(lines) + "\n"
