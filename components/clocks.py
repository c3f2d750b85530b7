"""Clocks: the replay's clock is its data's; paper and live read the exchange's server time."""

from __future__ import annotations

import time
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


class ExchangeClock:
    """The exchange's server time (paper, live): a bar is closed when the exchange says so,
    whatever the local clock says, so a loopback exchange with a fast clock drives a fast run."""

    def __init__(self, server_time: Callable[[], int], poll_seconds: float,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._server_time, self._poll, self._sleep = server_time, poll_seconds, sleep

    def now(self) -> int:
        return self._server_time()

    def wait_until(self, ts: int, stopping: Callable[[], bool]) -> bool:
        while not stopping():
            now = self._server_time()
            if now >= ts:
                return True
            self._sleep(min(self._poll, (ts - now) / 1000))
        return False
