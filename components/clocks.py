"""Clocks: the replay's clock is its data's; paper and live read the exchange's server time."""

from __future__ import annotations

from collections.abc import Callable


class ReplayClock:
    """Simulated time: whatever bar close the replay has reached. Waiting is instant."""

    def __init__(self) -> None:
        self._now = 0

    def now(self) -> int:
        return self._now

    def wait_until(self, ts: int, stopping: Callable[[], bool]) -> bool:
        self._now = max(self._now, ts)
        return not stopping()
