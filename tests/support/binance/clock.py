"""The loopback exchange's clock: set by the test, or running at a multiple of wall time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class FakeClock:
    """Exchange time in ms UTC. Frozen unless ``speed`` is set: then it runs at ``speed`` x wall time.

    ``set``/``advance`` move it; ``run(speed)`` starts it running from where it stands
    (``speed=3600`` turns an hour of exchange time into a second); ``freeze()`` stops it.
    """

    def __init__(self, start_ms: int, *, speed: float = 0.0, wall: Callable[[], float] = time.monotonic):
        self._wall = wall
        self._lock = threading.Lock()
        self._anchor_ms = float(start_ms)
        self._anchor_wall = wall()
        self._speed = float(speed)

    def now(self) -> int:
        with self._lock:
            return int(self._anchor_ms + self._speed * (self._wall() - self._anchor_wall) * 1000)

    @property
    def speed(self) -> float:
        return self._speed

    def set(self, ts_ms: int) -> None:
        """Jump to ``ts_ms``, keeping the speed."""
        with self._lock:
            self._anchor_ms, self._anchor_wall = float(ts_ms), self._wall()

    def advance(self, ms: int) -> None:
        self.set(self.now() + ms)

    def run(self, speed: float) -> None:
        """From now on, exchange time moves ``speed`` ms per wall ms (0 freezes it)."""
        if speed < 0:
            raise ValueError(f"speed must be >= 0, got {speed}")
        now = self.now()
        with self._lock:
            self._anchor_ms, self._anchor_wall, self._speed = float(now), self._wall(), float(speed)

    def freeze(self) -> None:
        self.run(0.0)
