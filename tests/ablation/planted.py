"""Planted loops for the ablation's own tests: one that knows the future, one that does nothing.

The futures agent gains a ``peek`` gate (``tests.support.peeking.NextBarPeekingGate``: it lets an
entry through only when the next bar closes in its favour) and a ``no_op`` gate beside its regime
gate. Switched off, each leaves every state; the ablation must call the first "helps" and the
second "no evidence".
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.component import NEVER, AgentContext, Component, Decision, Stage
from core.records import Position
from machine.ablation.loops import AgentDeclaration, Loop, component_loop

GATED = ("conservative", "kelly_active")  # the futures states that run the regime gate


class DoesNothingConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DoesNothing(Component):
    """A gate that lets every entry through: a loop with no effect at all."""

    stage = Stage.GATE
    Config = DoesNothingConfig

    def next_event(self, symbol: str, i: int, position: Position | None) -> int:
        return NEVER

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        """Nothing: every entry passes as it came."""


def planted_overrides(agent: dict | None = None) -> list[str]:
    """Overrides that add both planted gates to the futures agent's gated states."""
    lists = {"conservative": "features,regime,signal,regime_gate,peek,no_op,fixed_risk,atr_exits",
             "kelly_active": "features,regime,signal,regime_gate,peek,no_op,kelly,atr_exits"}
    return ["+agent.components.peek={_target_: tests.support.peeking.NextBarPeekingGate}",
            "+agent.components.no_op={_target_: tests.ablation.planted.DoesNothing}",
            *(f"agent.machine.states.{state}.components=[{components}]" for state, components in lists.items())]


def planted_loops(a: AgentDeclaration) -> list[Loop]:
    return [component_loop("peeking", "no next-bar peek (test only)", a, "peek"),
            component_loop("no_op", "no gate that does nothing (test only)", a, "no_op")]
