"""What an agent tells its people: alerts from the rows it records, heartbeats on its clock.

Alerts follow from the ledger, not from code paths: a transition into a state tagged ``breaker``
or ``halt``, a ``fallback``, a retrain's verdict... (components/notify/messages.py). Every message
becomes a ``notifications`` row once its delivery is settled; a muted fast-forward sends nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from components.notify import (
    Dispatcher,
    Heartbeat,
    HeartbeatSchedule,
    LearningAdjustment,
    NotifyConfig,
    OpenPosition,
    alert_for_adjustment,
    alert_for_transition,
)
from core.component import NEVER
from machine.spec import MachineSpec


class Notices:
    """Submits alerts and heartbeats to the dispatcher; hands back settled outcomes as rows."""

    def __init__(self, config: NotifyConfig, *, mode: str, agent: str, market: str, machine: MachineSpec) -> None:
        self.dispatcher = Dispatcher.from_config(config, mode=mode)  # type: ignore[arg-type]
        self._schedule = HeartbeatSchedule(config.heartbeat_ms)
        # a replay's alerts are a record of what happened; its heartbeats only say it ran, so they
        # come when asked for (notify.in_replay), as they would be sent
        self._heartbeats = mode != "replay" or config.in_replay
        self._tags = {name: spec.tags for name, spec in machine.states.items()}
        self._mode, self._agent, self._market = mode, agent, market
        self._last_adjustment: LearningAdjustment | None = None
        self._last_equity: float | None = None

    def transition(self, row: Mapping[str, Any], *, muted: bool) -> None:
        alert = alert_for_transition(row, self._tags)
        if alert is not None and not muted:
            self.dispatcher.submit(alert)

    def adjustment(self, row: Mapping[str, Any], *, muted: bool) -> None:
        """A learning adjustment: remembered for the next heartbeat (also while fast-forwarding)."""
        self._last_adjustment = LearningAdjustment.from_row(row)
        alert = alert_for_adjustment(row)
        if alert is not None and not muted:
            self.dispatcher.submit(alert)

    def after_bar(self, now: int, *, muted: bool, status: Callable[[], Mapping[str, Any]]) -> list[dict[str, Any]]:
        """A heartbeat when one is due (on a UTC grid, so a resumed run keeps them), then the
        ``notifications`` rows of every message settled since the last bar. ``status()`` gives
        the agent's state, state_since, equity, exchange, prices and model, read only when due."""
        if self._heartbeats and self._schedule.due(now):
            s = status()
            state, state_since, equity = s["state"], s["state_since"], s["equity"]
            exchange, prices, model = s["exchange"], s["prices"], s["model"]
            if not muted:
                positions = tuple(
                    OpenPosition(p.symbol, "long" if p.side > 0 else "short", p.qty, p.entry_price,
                                 p.side * p.qty * (prices[p.symbol] - p.entry_price))
                    for p in exchange.positions.values())
                self.dispatcher.submit(Heartbeat(
                    self._agent, self._mode, self._market, now, state, state_since, equity, self._last_equity,
                    positions, self._last_adjustment, model.get("model_version"), model.get("model_hit_rate")))
            self._last_equity = equity
        self.dispatcher.tick(now)
        return [o.row() for o in self.dispatcher.drain()]

    def next_due(self) -> int | None:
        """When the next heartbeat is due on the agent's clock (None: at the first bar)."""
        return self._schedule.next_due() if self._heartbeats else NEVER

    def close(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        return [o.row() for o in self.dispatcher.close(timeout=timeout)]
