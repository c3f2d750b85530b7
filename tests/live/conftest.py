"""Live trading against the loopback Binance: its signed endpoints, its matching engine, the real ccxt client."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from tests.live.driver import API_KEY, API_SECRET, LiveDriver
from tests.support.binance import FakeBinance, FakeClock, Reply, Request
from tests.support.binance.account_routes import Venue

HOUR = 3_600_000
T0 = 1_691_280_000_000 + HOUR // 2  # 2023-08-06 00:30 UTC, as the paper tests


@dataclass
class Loopback:
    server: FakeBinance
    venue: Venue

    @property
    def base_url(self) -> str:
        return self.server.base_url


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    with FakeBinance(FakeClock(T0)) as server:
        yield Loopback(server, Venue.install(server, api_key=API_KEY, secret=API_SECRET))


@pytest.fixture
def drive(loopback: Loopback, tmp_path: Path) -> Iterator[Callable[..., LiveDriver]]:
    """Open a driver on ``tmp_path/run`` (again, to restart it); every driver is shut at the end."""
    opened: list[LiveDriver] = []

    def open_driver(run_dir: Path | None = None, **kwargs) -> LiveDriver:
        driver = LiveDriver(run_dir or tmp_path / "run", loopback.base_url, set_clock=loopback.server.clock.set,
                            **kwargs)
        opened.append(driver)
        return driver

    yield open_driver
    for driver in opened:
        driver.shut()


def lockstep(server: FakeBinance, step_ms: int, path: str = "/fapi/v1/time") -> None:
    """The exchange clock moves ``step_ms`` each time it is asked, stopping one second past every bar close
    on the way: it keeps pace with whoever asks, and bars close one at a time."""

    @server.route("GET", path)
    def server_time(server: FakeBinance, request: Request) -> Reply:
        now = server.clock.now()
        server.clock.set(min(now + step_ms, (now // HOUR + 1) * HOUR + 1_000))
        return Reply({"serverTime": now})


def rows(run_dir: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(run_dir / "ledger.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()
