"""When heartbeats are due: every N hours of the agent's clock, on a grid aligned to the epoch.

A grid (00:00, 06:00, 12:00, 18:00 UTC for 6 h) rather than "N hours after start" keeps heartbeats
where they were when a killed run resumes, so a resumed replay writes the same rows.
"""

from __future__ import annotations


class HeartbeatSchedule:
    """``due(now)`` is true at the first step at or after each grid point; call it every step."""

    def __init__(self, every_ms: int):
        if every_ms <= 0:
            raise ValueError(f"heartbeat period must be positive, got {every_ms} ms")
        self.every_ms = every_ms
        self._last: int | None = None  # the agent clock at the previous call

    def next_due(self) -> int | None:
        """The earliest agent-clock time at which ``due`` can next be true (None: at the first call)."""
        return None if self._last is None else (self._last // self.every_ms + 1) * self.every_ms

    def due(self, now: int) -> bool:
        last, self._last = self._last, now
        if last is None:
            return now % self.every_ms == 0
        return now // self.every_ms > last // self.every_ms
