"""kill -9 around a live order's send, for real: a driver process (tests/live/driver.py) trades on the
loopback Binance, is killed while its order request is held at the exchange, and is started again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from components.exchange.client_ids import client_order_id
from machine.engine import _run_id
from tests.live.conftest import lockstep, rows

STEP_MS = 120_000  # the exchange clock moves two minutes each time it is asked: it keeps pace with the driver
BARS = 5


def start(run_dir: Path, base_url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from tests.live.driver import main; main()", str(run_dir),
                             base_url, "enter_at_second_bar", str(BARS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def killed_while_held(loopback, run_dir: Path, *, carried_out: bool) -> None:
    """Start the driver, hold its order request at the exchange (carried out first, or not at all), kill -9."""
    release = loopback.venue.hold("/fapi/v1/order", carried_out=carried_out)
    proc = start(run_dir, loopback.base_url)
    try:
        loopback.server.wait_for(lambda r: r.path == "/fapi/v1/order" and r.method == "POST", timeout_s=60)
        if carried_out:
            while not loopback.venue.futures.orders:
                assert proc.poll() is None
    finally:
        proc.kill()
        proc.communicate()
    release.set()


def finish(loopback, run_dir: Path) -> None:
    proc = start(run_dir, loopback.base_url)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert f"done {BARS} bars" in out


def sent(loopback, run_dir: Path) -> list:
    cid = client_order_id(_run_id(run_dir), "futures-000001")
    return [o for o in loopback.venue.futures.orders.values() if o.client_id == cid]


def test_kill_9_between_send_and_record_then_a_restart_finds_the_order_and_sends_nothing_twice(loopback, tmp_path):
    lockstep(loopback.server, STEP_MS)
    run_dir = tmp_path / "run"
    killed_while_held(loopback, run_dir, carried_out=True)
    assert rows(run_dir, "SELECT count(*) FROM orders") == [(1,)]  # recorded before it was sent
    assert rows(run_dir, "SELECT count(*) FROM fills") == [(0,)] and len(sent(loopback, run_dir)) == 1
    finish(loopback, run_dir)
    (order,) = sent(loopback, run_dir)
    assert order.status == "FILLED"
    assert rows(run_dir, "SELECT order_id, qty, price FROM fills") == [("futures-000001", 0.05, order.avg_price)]
    assert rows(run_dir, "SELECT status FROM order_updates WHERE kind = 'entry' ORDER BY wall_ts") == [
        ("found",), ("filled",)]
    assert rows(run_dir, "SELECT count(*) FROM orders") == [(1,)]


def test_kill_9_between_record_and_send_then_a_restart_sends_the_order_once(loopback, tmp_path):
    lockstep(loopback.server, STEP_MS)
    run_dir = tmp_path / "run"
    killed_while_held(loopback, run_dir, carried_out=False)
    assert rows(run_dir, "SELECT count(*) FROM orders") == [(1,)] and sent(loopback, run_dir) == []
    finish(loopback, run_dir)
    (order,) = sent(loopback, run_dir)
    assert order.status == "FILLED"
    assert rows(run_dir, "SELECT order_id FROM fills") == [("futures-000001",)]
    assert rows(run_dir, "SELECT count(*) FROM orders") == [(1,)]
