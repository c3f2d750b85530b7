"""Where learning jobs run: inline in replay, on a worker thread in paper and live (DESIGN §3.7)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class InlineLearning:
    """Replay: a job runs to completion inside the bar that starts it, so results are deterministic."""

    inline = True

    def submit(self, job: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()
        try:
            future.set_result(job())
        except BaseException as exc:  # noqa: BLE001 - the caller sees it through the future
            future.set_exception(exc)
        return future

    def close(self) -> None:
        """Nothing runs beside the loop."""


class BackgroundLearning:
    """Paper and live: one worker thread, so a retrain never delays a bar's orders."""

    inline = False

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ratchet-learning")

    def submit(self, job: Callable[[], T]) -> Future[T]:
        return self._pool.submit(job)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
