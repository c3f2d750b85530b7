"""Real components that fail on purpose, to prove an agent falls back and the run goes on."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.component import AgentContext, Component, Decision, Stage


class FailingSizerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fail_on_nth_entry: int = 1
    produce: str = "exception"  # exception | not_a_number


class FailingSizer(Component):
    """Sizes like a fixed-risk sizer but fails on its n-th entry: raises, or returns NaN risk."""

    stage = Stage.SIZING
    Config = FailingSizerConfig
    config: FailingSizerConfig

    def __init__(self, name: str, config: BaseModel):
        super().__init__(name, config)
        self.entries = 0

    def on_bar(self, d: Decision, ctx: AgentContext) -> None:
        if not d.entry or d.position is not None:
            return
        self.entries += 1
        if self.entries == self.config.fail_on_nth_entry:
            if self.config.produce == "not_a_number":
                d.risk_fraction = float("nan")
                return
            raise ZeroDivisionError("sizing blew up")
        d.risk_fraction = 0.003
