"""The placebo arms: a loop replaced by a seeded stand-in that does as much, at random.

A filter becomes a coin that takes the share of entry signals the filter took in the full agent's
runs (``shares.py`` measures it); Kelly becomes a sizer that draws each entry's risk from the risks
Kelly chose there. The stand-ins are components (``components/placebo.py``) declared beside the
agent's own and put in the loop's place in every state, config only, as the arms that switch a loop off.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from components.placebo import CoinGate, CoinModelGate, RandomRiskSizer
from core.component import Stage
from machine.ablation.loops import AgentDeclaration, Arm, Loop, slug


def _target(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def coin_arm(loop: Loop, agent: Mapping[str, Any], take: float) -> Arm:
    """The loop's filter replaced by a seeded coin that takes ``take`` of the entry signals reaching it."""
    a = AgentDeclaration(agent)
    assert loop.component is not None
    cls = CoinModelGate if a.built(loop.component)[0].stage == Stage.MODEL_GATE else CoinGate
    coin = {"_target_": _target(cls), "take": round(take, 6)}
    return Arm(f"placebo_{slug(loop.name)}", "placebo", loop.name,
               a.replacing(loop.component, f"{loop.component}_placebo", coin), f"a coin taking {take:.1%} of signals")


def risk_arm(loop: Loop, agent: Mapping[str, Any], risks: list[float]) -> Arm:
    """Kelly replaced by a sizer that draws each entry's risk from the risks Kelly chose."""
    a = AgentDeclaration(agent)
    assert loop.component is not None
    sizer = {"_target_": _target(RandomRiskSizer), "risks": [round(r, 8) for r in risks]}
    mean = sum(risks) / len(risks)
    return Arm(f"placebo_{slug(loop.name)}", "placebo", loop.name,
               a.replacing(loop.component, f"{loop.component}_placebo", sizer),
               f"risk drawn from Kelly's {len(risks)} risks (mean {mean:.3%})")
