"""A live run that stops and starts again: its fast-forward is answered from its journal and sends nothing;
operator commands for a live run."""

from __future__ import annotations

import subprocess
import sys

import pytest

from machine import operator
from tests.live.driver import PERP, entry

MID = "BTCUSDT"


def trailing(d, i):
    """An entry, then its stop moved up twice, as the agent trails it."""
    k = i - d.market.trade_from
    if k == 1:
        return [entry(d, stop_pct=0.01, target_pct=None)]
    if k in (3, 4):
        pos = d.exchange.positions[PERP]
        d.exchange.amend_protection(PERP, stop_price=pos.stop_price + 20.0)
    return []


def test_a_restarted_run_fast_forwards_from_its_journal_sending_nothing_and_holds_the_view_it_had(drive, loopback):
    first = drive()
    first_answers = [first.step(trailing) for _ in range(7)]
    run_dir, view, cash = first.run_dir, first.exchange.positions[PERP], first.exchange.cash
    first.shut()
    requests = len(loopback.server.requests())
    restarted = drive(run_dir)
    replayed = [restarted.step(trailing) for _ in range(7)]
    sent = [r for r in loopback.server.requests()[requests:] if r.method in ("POST", "DELETE")]
    assert sent == []  # the fast-forward sends nothing
    for (bar, dispatched), (bar_again, dispatched_again) in zip(first_answers, replayed, strict=True):
        assert (bar.fills, bar.closed, bar.funding) == (bar_again.fills, bar_again.closed, bar_again.funding)
        assert dispatched.fills == dispatched_again.fills
    assert restarted.exchange.positions[PERP] == view and restarted.exchange.cash == cash
    assert restarted.rows("SELECT count(*) FROM fills")[0][0] == 1  # nothing written twice
    restarted.step(trailing)  # the first live bar: reconciled with Binance, nothing to correct
    assert restarted.rows("SELECT count(*) FROM reconciliation")[0][0] == 0
    (stop,) = [o for o in loopback.venue.futures.open_algo_orders(MID)]
    assert stop.trigger_price == pytest.approx(view.stop_price) and stop.client_id.endswith(".s3")


def control(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from machine.operator import main; raise SystemExit(main())",
                           *args], capture_output=True, text=True)


def test_ratchet_control_queues_flatten_for_a_running_live_run_and_resume_after_it(drive):
    driver = drive()
    driver.run(1)
    flatten = control(str(driver.run_dir), "flatten", "--reason", "leaving for the weekend")
    assert flatten.returncode == 0, flatten.stderr
    assert "queued flatten" in flatten.stdout and "next bar" in flatten.stdout
    assert control(str(driver.run_dir), "resume").returncode == 0
    taken = operator.take(driver.run_dir)
    assert [(c["command"], c["reason"]) for c in taken] == [("flatten", "leaving for the weekend"),
                                                           ("resume", "operator request")]
