"""Fixtures for ledger tests: a deterministic wall clock and tmp-path ledgers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ledger.writer import Ledger

WALL_START = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class SteppingClock:
    """A wall clock that advances one second each time it is read."""

    def __init__(self, start: float = WALL_START) -> None:
        self.now = start

    def __call__(self) -> float:
        reading = self.now
        self.now += 1.0
        return reading


@pytest.fixture
def wall_clock() -> SteppingClock:
    return SteppingClock()


@pytest.fixture
def ledger_path(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "r1" / "ledger.duckdb"


@pytest.fixture
def open_ledger(
    ledger_path: Path, wall_clock: SteppingClock
) -> Iterator[Callable[..., Ledger]]:
    """Open ledgers on the test's path (run "r1" unless told); all are closed afterwards."""
    opened: list[Ledger] = []

    def _open(run_id: str | None = "r1", **kwargs: object) -> Ledger:
        ledger = Ledger.open(ledger_path, run_id, wall_clock=wall_clock, **kwargs)
        opened.append(ledger)
        return ledger

    yield _open
    for ledger in opened:
        ledger.close()
