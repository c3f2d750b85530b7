"""The futures agent's machine in a live run through the engine: refused keys halt it (its `halt`-tagged
state) and a resume lifts it; `ratchet-control RUN flatten` closes every position and pauses entries."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from machine import operator
from machine.compose import compose_run
from machine.engine import run_replay
from tests.live.conftest import HOUR, T0, lockstep, rows
from tests.live.test_live_mode import KEY, SECRET, overrides
from tests.support.binance import FakeBinance, FakeClock
from tests.support.binance.account_routes import Venue


@pytest.fixture
def keyed(monkeypatch) -> Iterator[tuple[FakeBinance, Venue]]:
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    with FakeBinance(FakeClock(T0)) as server:
        venue = Venue.install(server, api_key=KEY, secret=SECRET)
        lockstep(server, HOUR // 4)
        yield server, venue


def between_bars(plan: dict[int, Callable[[], None]], bars: int) -> Callable[[], bool]:
    """An engine ``stopping`` callback doing ``plan[n]`` after the n-th bar, and stopping after ``bars``."""
    seen = iter(range(1, 1 << 30))

    def stopping() -> bool:
        n = next(seen)
        if n in plan:
            plan[n]()
        return n >= bars

    return stopping


def test_keys_refused_mid_run_halt_the_machine_and_a_resume_lifts_it(keyed, tmp_path):
    server, venue = keyed
    run_dir = tmp_path / "live"
    plan = {4: lambda: venue.keys.revoke(KEY), 8: lambda: venue.keys.accepted.update({KEY: SECRET}),
            9: lambda: operator.send(run_dir, "resume", "keys replaced")}
    run_replay(compose_run(*overrides(server)), run_dir, stopping=between_bars(plan, 14))
    moves = [(s, d, t) for s, d, t in rows(run_dir, "SELECT source, dest, trigger FROM transitions ORDER BY ts")]
    assert ("conservative", "halted", "keys_refused") in moves and ("halted", "conservative", "lift_halt") in moves
    (halt_ts,) = rows(run_dir, "SELECT min(ts) FROM transitions WHERE dest = 'halted'")[0]
    (lift_ts,) = rows(run_dir, "SELECT min(ts) FROM transitions WHERE trigger = 'lift_halt'")[0]
    assert rows(run_dir, "SELECT count(*) FROM orders WHERE intent = 'entry' AND ts > ? AND ts < ?",
                [halt_ts, lift_ts]) == [(0,)]
    alerts = rows(run_dir, "SELECT kind, message FROM notifications WHERE kind IN ('halt', 'resume')")
    assert [k for k, _ in alerts] == ["halt", "resume"] and all(KEY not in m for _, m in alerts)


def open_positions(venue: Venue) -> int:
    return sum(1 for p in venue.futures.positions.values() if abs(p.amt) > 0)


def test_flatten_closes_every_position_at_market_and_pauses_entries_until_resume(keyed, tmp_path):
    server, venue = keyed
    run_dir = tmp_path / "live"
    state: dict[str, int] = {}

    def flatten_once_a_position_is_open() -> None:
        if "flattened" not in state and open_positions(venue):
            operator.send(run_dir, "flatten", "leaving for the weekend")
            state["flattened"] = 1

    plan: dict[int, Callable[[], None]] = {n: flatten_once_a_position_is_open for n in range(1, 120)}
    run_replay(compose_run(*overrides(server)), run_dir, stopping=between_bars(plan, 130))
    assert state, "no position opened in the stretch"
    (taken_ts,) = rows(run_dir, "SELECT ts FROM adjustments WHERE kind = 'operator_command'")[0]
    exits = rows(run_dir, "SELECT symbol, exit_reason FROM trades WHERE exit_reason = 'operator'")
    assert exits and open_positions(venue) == 0
    assert rows(run_dir, "SELECT count(*) FROM orders WHERE intent = 'entry' AND ts > ?", [taken_ts]) == [(0,)]

