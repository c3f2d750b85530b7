"""A token bucket per channel: ``burst`` posts at once, then ``per_minute`` posts a minute."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    """One consumer (a channel's worker) reserves a post and is told how long to wait for it."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic):
        if per_minute <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs per_minute > 0 and burst >= 1, got {per_minute}, {burst}")
        self._rate = per_minute / 60.0  # tokens a second
        self._burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._at = clock()

    def reserve(self) -> float:
        """Take the next post's token; the seconds to wait before posting (0 when one is free)."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._at) * self._rate)
        self._at = now
        self._tokens -= 1.0  # below zero: a reservation paid for by the wait
        return 0.0 if self._tokens >= 0 else -self._tokens / self._rate
