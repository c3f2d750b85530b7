"""SIGINT and SIGTERM ask a run to stop: the current bar finishes, is committed, and the run ends.

A second signal stops at once (KeyboardInterrupt): uncommitted rows are dropped as in a crash,
and the run resumes from its last commit.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType, TracebackType
from typing import Self


class StopRequest:
    """A flag set by the first SIGINT/SIGTERM; ``requested()`` is what the engine polls."""

    def __init__(self) -> None:
        self._flag = threading.Event()
        self._previous: dict[int, object] = {}

    def requested(self) -> bool:
        return self._flag.is_set()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._flag.is_set():
            raise KeyboardInterrupt
        self._flag.set()

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
