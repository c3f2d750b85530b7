"""Real run folders to report on: replays of the bundled Binance data, made once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from machine.compose import compose_run
from machine.engine import RunResult, run_replay
from tests.support.quick_hybrid import QUICK_HYBRID

# The futures agent over one quarter: trades, Kelly steps, a breaker trip, regime changes.
FUTURES = ("experiment=futures", "market.start=2023-01-01", "market.end=2023-04-01")
# The hybrid agent's learning timeline on 5m bars, made small and quick: two retrains, weight updates,
# a gate threshold change, trades.
HYBRID = (*QUICK_HYBRID, "market.start=2024-01-01", "market.end=2024-02-10")


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """A runs folder as `make run` leaves one: run folders under it."""
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def futures_run(runs_root: Path) -> RunResult:
    return run_replay(compose_run(*FUTURES), runs_root / "futures")


@pytest.fixture(scope="session")
def hybrid_run(tmp_path_factory) -> RunResult:
    return run_replay(compose_run(*HYBRID), tmp_path_factory.mktemp("hybrid") / "run")
