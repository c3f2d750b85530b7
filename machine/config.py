"""The run configuration: Hydra's composed config validated once into frozen pydantic models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from components.exchange.connection import ConnectionConfig
from components.exchange.sim import SimExchangeConfig
from components.market.catalog import symbol_to_pair
from components.notify import NotifyConfig
from core.errors import ConfigError, DataError
from core.validation import InvalidKey, format_validation_error
from machine.optimise.space import OptimiseField
from machine.soundness import check_machine
from machine.spec import MachineSpec


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MarketConfig(_Frozen):
    """Which bars to replay: one market kind, one timeframe, ccxt unified symbols."""

    name: str
    kind: Literal["spot", "futures"]
    timeframe: str
    symbols: tuple[str, ...] = Field(min_length=1)
    start: str | None = None  # ISO date, UTC, inclusive
    end: str | None = None  # ISO date, UTC, exclusive
    on_gap: Literal["fail", "skip"] = "skip"  # gaps and duplicate timestamps: stop, or skip and record
    data_dir: str | None = None  # folder with files named like the bundled ones; None = bundled
    warmup_bars: int | None = Field(default=None, ge=0)  # history before start; None = what the agent needs

    @field_validator("start", "end")
    @classmethod
    def _iso_date(cls, v: str | None) -> str | None:
        if v is not None:
            datetime.fromisoformat(v)
        return v

    @model_validator(mode="after")
    def _symbols_match_kind(self) -> MarketConfig:
        for s in self.symbols:
            try:
                symbol_to_pair(self.kind, s)
            except DataError as exc:
                raise InvalidKey("symbols", str(exc)) from None
        return self

    @model_validator(mode="after")
    def _start_before_end(self) -> MarketConfig:
        start, end = self.window_ms()
        if start is not None and end is not None and start >= end:
            relation = "is after" if start > end else "equals"
            raise InvalidKey("start", f"{self.start} {relation} market.end {self.end}; the window [start, end) "
                                      "would hold no bars, so start must come first")
        return self

    def window_ms(self) -> tuple[int | None, int | None]:
        def ms(v: str | None) -> int | None:
            if v is None:
                return None
            dt = datetime.fromisoformat(v)
            dt = dt if dt.tzinfo else dt.replace(tzinfo=UTC)
            return int(dt.timestamp() * 1000)

        return ms(self.start), ms(self.end)


class AgentConfig(_Frozen):
    """One agent: its machine, its components, and the limits no component may exceed."""

    name: str
    market_kind: Literal["spot", "futures"]
    max_open_positions: int = Field(ge=1, le=20)
    max_leverage: float = Field(default=1.0, ge=1.0, le=5.0)  # the futures agent never exceeds 5x
    margin_per_position: float = Field(default=1.0, gt=0.0, le=1.0)  # isolated margin budget / equity
    machine: MachineSpec
    components: dict[str, dict[str, Any]]
    optimise: OptimiseField = None  # the weekly parameter optimiser (machine/optimise); None: off

    @model_validator(mode="after")
    def _machine_can_trade(self) -> AgentConfig:
        check_machine(self.machine, self.components, "agent")  # raises ConfigError naming the state
        return self


class ExchangeConfig(SimExchangeConfig, ConnectionConfig):
    """The ``exchange`` group: how to reach Binance, and what simulated fills cost."""


class RunConfig(_Frozen):
    seed: int = 0
    starting_cash: float = Field(default=10_000.0, gt=0)
    commit_every_bars: int = Field(default=100_000, ge=1)  # replay: at least this often (paper, live: every bar)
    commit_every_seconds: float = Field(default=5.0, gt=0)  # replay: and at least this often, wall clock
    report: bool = True  # write report.html when the run ends (about a second and 5 MB)
    skip_quiet_bars: bool = True  # replay: step over bars where nothing can happen (false: look at every bar)
    resume: bool = True  # continue the run a folder holds (same config and data); false: refuse a used folder
    mode: dict[str, Any] = Field(default_factory=lambda: {"_target_": "machine.modes.ReplayMode"})
    notify: NotifyConfig = NotifyConfig()
    agent: AgentConfig
    market: MarketConfig
    exchange: ExchangeConfig

    @model_validator(mode="after")
    def _agent_fits_market(self) -> RunConfig:
        if self.agent.market_kind != self.market.kind:
            raise ValueError(
                f"agent {self.agent.name!r} trades {self.agent.market_kind} but market "
                f"{self.market.name!r} is {self.market.kind}; pick a {self.agent.market_kind} market"
            )
        return self


def load_agent_config(data: dict[str, Any]) -> AgentConfig:
    """Validate the ``agent`` node of a plain config dict alone (as ``ratchet-diagram`` does) or raise ConfigError."""
    try:
        return AgentConfig.model_validate(data.get("agent"))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "agent")) from None


def load_run_config(data: dict[str, Any]) -> RunConfig:
    """Validate a plain dict (``OmegaConf.to_container(cfg, resolve=True)``) or raise ConfigError."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
