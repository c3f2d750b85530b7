"""`ratchet-control RUN status` says the agent's state, the queue and whether the run goes on; a command
for a finished run is refused, one for a stopped run waits for it, one for a running run is taken."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ledger.writer import snapshot_path
from machine.operator import control_dir, main, status

WINDOW = ("agent=ema_cross", "market=spot_1h", "market.start=2023-03-01", "market.end=2023-03-22",
          "market.symbols=[BTC/USDT]")


def _control(capsys, run_dir: Path, *args: str) -> tuple[int, str, str]:
    code = main([str(run_dir), *args])
    out, err = capsys.readouterr()
    return code, out, err


def _ledger(run_dir: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(run_dir / "ledger.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _lines(text: str) -> dict[str, str]:
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in text.splitlines()}


def test_a_finished_replay_says_its_state_and_that_it_is_over(replay, capsys):
    run_dir = replay(*WINDOW).run_dir
    [(state, last)] = _ledger(run_dir, "SELECT arg_max(state, ts), max(ts) FROM equity")

    code, out, _ = _control(capsys, run_dir, "status")

    said = _lines(out)
    assert code == 0
    assert said["state"].startswith(f"{state} since ")
    assert said["running"].startswith("no: finished")
    assert said["commands"] == "0 queued; 0 taken before"
    assert status(run_dir).finished and status(run_dir).last_bar == last


def test_a_command_for_a_finished_run_is_refused_in_one_line_and_nothing_is_queued(replay, capsys):
    run_dir = replay(*WINDOW).run_dir

    code, out, err = _control(capsys, run_dir, "resume")

    assert (code, out) == (2, "")
    assert err.count("\n") == 1 and err.startswith(f"ratchet-control: refused: {run_dir} has finished")
    assert not control_dir(run_dir).exists()


def test_a_stopped_replay_queues_a_command_that_its_restart_takes(replay, capsys):
    stopped = replay(*WINDOW, stop_after_bars=100)
    run_dir = stopped.run_dir

    before = _lines(_control(capsys, run_dir, "status")[1])
    code, out, _ = _control(capsys, run_dir, "resume", "--reason", "checked the exchange")
    queued = _lines(_control(capsys, run_dir, "status")[1])
    replay(*WINDOW, run_dir=run_dir)  # started again: it goes on to its last bar
    after = _lines(_control(capsys, run_dir, "status")[1])

    assert before["running"].startswith("no: stopped before its end")
    assert code == 0 and "it applies when the run is started again" in out
    assert queued["commands"].startswith("1 queued: resume (checked the exchange, sent ")
    assert after["running"].startswith("no: finished") and after["commands"] == "0 queued; 1 taken before"
    assert _ledger(run_dir, "SELECT after ->> '$.reason' FROM adjustments WHERE kind = 'operator_command'") == [
        ("checked the exchange",)]


HOLD = """
import sys
from ledger.writer import Ledger
with Ledger.open(sys.argv[1], sys.argv[2]) as ledger:
    if sys.argv[3] == "publish":
        ledger.publish_snapshot()
    print("holding", flush=True)
    sys.stdin.read()
"""


@pytest.fixture
def held(replay):
    """A stopped run whose ledger a process holds as a running agent does (paper and live publish a
    snapshot at every commit; a replay publishes none)."""
    processes = []

    def hold(publish: bool) -> Path:
        run_dir = replay(*WINDOW, stop_after_bars=100).run_dir
        [(run_id,)] = _ledger(run_dir, "SELECT run_id FROM runs")
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir / "ledger.duckdb"), run_id,
                                 "publish" if publish else "quiet"],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        processes.append(proc)
        assert proc.stdout is not None and proc.stdout.readline() == "holding\n"
        return run_dir

    yield hold
    for proc in processes:
        proc.communicate("")


def test_a_run_whose_ledger_is_held_is_running_and_its_state_is_read_from_its_snapshot(held, capsys):
    run_dir = held(publish=True)
    with duckdb.connect(str(snapshot_path(run_dir / "ledger.duckdb")), read_only=True) as con:
        [(state,)] = con.execute("SELECT arg_max(state, ts) FROM equity").fetchall()

    code, out, _ = _control(capsys, run_dir, "status")
    queued_code, queued, _ = _control(capsys, run_dir, "resume")

    said = _lines(out)
    assert code == 0 and said["running"].startswith("yes: a process holds its ledger")
    assert said["state"].startswith(f"{state} since ")
    assert queued_code == 0 and "it applies at the run's next bar" in queued


def test_a_running_replay_without_a_snapshot_says_its_state_cannot_be_read_yet(held, capsys):
    run_dir = held(publish=False)

    code, out, _ = _control(capsys, run_dir, "status")

    said = _lines(out)
    assert code == 0
    assert said["running"].startswith("yes")
    assert said["state"].startswith("unknown (") and "published no snapshot" in said["state"]
