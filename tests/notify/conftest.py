"""Fixtures for notify tests: loopback Discord and Telegram servers, quick retry settings, outcomes."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator

import pytest

from components.notify import Dispatcher, Outcome, RetryConfig
from tests.support.notify_servers import DiscordWebhookServer, TelegramBotServer

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, on the agent's clock
MINUTE = 60_000
# Tiny waits so retry tests take a fraction of a second; the same code paths as the defaults.
QUICK = RetryConfig(attempts=4, backoff_s=0.05, backoff_max_s=0.4, retry_after_max_s=5.0)


@pytest.fixture
def discord() -> Iterator[DiscordWebhookServer]:
    with DiscordWebhookServer() as server:
        yield server


@pytest.fixture
def telegram() -> Iterator[TelegramBotServer]:
    with TelegramBotServer() as server:
        yield server


class Outcomes:
    """An ``on_outcome`` callback that lets a test wait for outcomes as workers settle them."""

    def __init__(self) -> None:
        self._queue: queue.Queue[Outcome] = queue.Queue()

    def __call__(self, outcome: Outcome) -> None:
        self._queue.put(outcome)

    def take(self, count: int, timeout: float = 10.0) -> list[Outcome]:
        return [self._queue.get(timeout=timeout) for _ in range(count)]

    def left(self) -> list[Outcome]:
        out = []
        while not self._queue.empty():
            out.append(self._queue.get_nowait())
        return out


@pytest.fixture
def outcomes() -> Outcomes:
    return Outcomes()


@pytest.fixture
def dispatchers() -> Iterator[Callable[..., Dispatcher]]:
    """Build dispatchers that are closed at teardown whatever the test did."""
    made: list[Dispatcher] = []

    def make(channels, **kwargs) -> Dispatcher:
        kwargs.setdefault("retry", QUICK)
        kwargs.setdefault("timeout_s", 2.0)
        dispatcher = Dispatcher(channels, **kwargs)
        made.append(dispatcher)
        return dispatcher

    yield make
    for dispatcher in made:
        dispatcher.close(timeout=0)
