"""A running agent's ledger can be queried: the agent publishes a snapshot at each commit, and
`ratchet-ledger` reads it while another process holds the ledger."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from core.errors import LedgerError
from ledger.cli import connect_sweep, main
from ledger.writer import Ledger, snapshot_path

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000
PUBLISHED = 1_800_000_000.0  # the running agent's wall clock: 2027-01-15 08:00:00 UTC

# An agent that holds its ledger: each "trade" line on stdin appends a closed trade, commits and,
# unless told "quiet", publishes a snapshot; then it answers "ready". "stop" closes the ledger.
RUNNING_AGENT = """
import sys
from ledger.writer import Ledger

path, publish = sys.argv[1], sys.argv[2] == "publish"
ledger = Ledger.open(path, "paper-run", wall_clock=lambda: float(sys.argv[3]))
trades = 0
for line in sys.stdin:
    if line.strip() == "stop":
        break
    ledger.append("trades", {"trade_id": f"t{trades}", "agent": "futures", "symbol": "BTCUSDT",
                             "side": "long", "pnl": 1.0 + trades})
    ledger.append("equity", {"ts": trades * 60_000, "agent": "futures", "equity": 100.0 + trades})
    trades += 1
    ledger.commit()
    if publish:
        ledger.publish_snapshot()
    print("ready", flush=True)
ledger.close()
"""


class RunningAgent:
    """A second process holding the ledger's write lock, driven line by line."""

    def __init__(self, path: Path, publish: bool) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", RUNNING_AGENT, str(path), "publish" if publish else "quiet",
             str(PUBLISHED)],
            cwd=REPO_ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def trade(self) -> None:
        """Close one trade and wait until it is committed (and published)."""
        self.process.stdin.write("trade\n")
        self.process.stdin.flush()
        assert self.process.stdout.readline() == "ready\n"

    def stop(self) -> None:
        """Close the ledger and exit cleanly."""
        self.process.communicate("stop\n", timeout=60)
        assert self.process.returncode == 0

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
            self.process.communicate(timeout=60)


@pytest.fixture
def start_agent() -> Iterator:
    agents: list[RunningAgent] = []

    def _start(path: Path, *, publish: bool = True) -> RunningAgent:
        agents.append(RunningAgent(path, publish))
        return agents[-1]

    yield _start
    for agent in agents:
        agent.kill()


def _stats(capsys, *run_dirs: Path) -> tuple[int, list[dict], str]:
    code = main([*map(str, run_dirs), "--view", "stats", "--format", "csv"])
    out, err = capsys.readouterr()
    return code, list(csv.DictReader(io.StringIO(out))), err


def _trades(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT count(*) FROM trades").fetchone()[0]


def test_a_snapshot_holds_the_committed_rows_and_not_the_pending_ones(open_ledger, ledger_path):
    ledger = open_ledger()
    ledger.append("trades", {"trade_id": "t1", "agent": "futures", "pnl": 1.0})
    ledger.commit()
    ledger.append("trades", {"trade_id": "t2", "agent": "futures", "pnl": 2.0})

    published = ledger.publish_snapshot()

    assert published == ledger_path.parent / "ledger.snapshot.duckdb" == snapshot_path(ledger_path)
    with duckdb.connect(str(published), read_only=True) as con:
        assert con.execute("SELECT trade_id FROM trades").fetchall() == [("t1",)]
    assert [p.name for p in ledger_path.parent.iterdir() if "snapshot" in p.name] == [
        "ledger.snapshot.duckdb"]  # no partial copy and no write-ahead log of one left behind


def test_publishing_again_replaces_the_snapshot_with_the_newer_rows(open_ledger):
    ledger = open_ledger()
    ledger.append("trades", {"trade_id": "t1", "agent": "futures", "pnl": 1.0})
    ledger.commit()
    first = ledger.publish_snapshot()
    ledger.append("trades", {"trade_id": "t2", "agent": "futures", "pnl": 2.0})
    ledger.commit()

    second = ledger.publish_snapshot()

    assert second == first
    assert _trades(second) == 2


def test_the_snapshot_is_stamped_with_the_wall_clock_at_publishing(open_ledger, wall_clock):
    ledger = open_ledger()
    ledger.append("trades", {"trade_id": "t1", "agent": "futures", "pnl": 1.0})
    ledger.commit()
    expected = wall_clock.now

    published = ledger.publish_snapshot()

    assert published.stat().st_mtime == expected


def test_a_reader_holding_the_snapshot_does_not_stop_the_agent_from_publishing(open_ledger, ledger_path):
    ledger = open_ledger()
    ledger.append("trades", {"trade_id": "t1", "agent": "futures", "pnl": 1.0})
    ledger.commit()
    reader = connect_sweep([ledger.publish_snapshot()])
    try:
        ledger.append("trades", {"trade_id": "t2", "agent": "futures", "pnl": 2.0})
        ledger.commit()
        ledger.publish_snapshot()

        assert reader.execute("SELECT count(*) FROM trades").fetchone() == (1,)  # still its own copy
    finally:
        reader.close()
    assert _trades(snapshot_path(ledger_path)) == 2


@pytest.mark.parametrize("read_only", [True, False])
def test_only_a_ledger_file_open_for_writing_publishes_a_snapshot(open_ledger, ledger_path, read_only):
    open_ledger().close()
    path = ledger_path if read_only else ":memory:"
    ledger = Ledger.open(path, None if read_only else "r1", read_only=read_only)
    try:
        with pytest.raises(LedgerError, match="only a ledger file open for writing publishes a snapshot"):
            ledger.publish_snapshot()
    finally:
        ledger.close()
    assert not snapshot_path(ledger_path).exists()


def test_publishing_a_snapshot_keeps_the_agents_hold_on_its_ledger(tmp_path, start_agent):
    path = tmp_path / "paper" / "ledger.duckdb"
    agent = start_agent(path)
    agent.trade()
    agent.trade()  # published twice: the lock survives each publication

    with pytest.raises(duckdb.IOException, match="Could not set lock"):
        duckdb.connect(str(path))
    agent.stop()


def test_a_running_agents_ledger_is_queried_through_its_snapshot(capsys, tmp_path, start_agent):
    run_dir = tmp_path / "paper"
    agent = start_agent(run_dir / "ledger.duckdb")
    agent.trade()
    agent.trade()

    code, rows, err = _stats(capsys, run_dir)

    assert code == 0
    assert [(r["run_id"], int(r["trades"]), float(r["net_pnl"])) for r in rows] == [("paper-run", 2, 3.0)]
    assert err == (f"ratchet-ledger: ledger {run_dir / 'ledger.duckdb'} is in use by a running agent; "
                   "reading its snapshot of 2027-01-15 08:00:00 UTC\n")

    agent.trade()  # the agent goes on committing and publishing while it is queried
    code, rows, _ = _stats(capsys, run_dir)

    assert code == 0
    assert [int(r["trades"]) for r in rows] == [3]
    agent.stop()


def test_a_sweep_reads_the_running_run_from_its_snapshot_beside_finished_runs(capsys, tmp_path, start_agent):
    finished, running = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    with Ledger.open(finished / "ledger.duckdb", "done-run") as ledger:
        ledger.append("trades", {"trade_id": "t0", "agent": "futures", "side": "long", "pnl": -1.0})
    agent = start_agent(running / "ledger.duckdb")
    agent.trade()

    code, rows, err = _stats(capsys, tmp_path / "sweep")

    assert code == 0
    assert [(r["run_id"], int(r["trades"])) for r in rows] == [("done-run", 1), ("paper-run", 1)]
    assert err.count("\n") == 1
    assert f"ledger {running / 'ledger.duckdb'} is in use by a running agent" in err
    agent.stop()


def test_the_ledger_itself_is_read_again_once_the_agent_has_stopped(capsys, tmp_path, start_agent):
    run_dir = tmp_path / "paper"
    agent = start_agent(run_dir / "ledger.duckdb")
    agent.trade()
    agent.stop()

    code, rows, err = _stats(capsys, run_dir)

    assert (code, err) == (0, "")
    assert [int(r["trades"]) for r in rows] == [1]


def test_a_running_agent_that_published_no_snapshot_is_reported_in_one_line(capsys, tmp_path, start_agent):
    run_dir = tmp_path / "replay"
    agent = start_agent(run_dir / "ledger.duckdb", publish=False)
    agent.trade()

    code, rows, err = _stats(capsys, run_dir)

    assert (code, rows) == (2, [])
    assert err == (f"ratchet-ledger: ledger {run_dir / 'ledger.duckdb'} is in use by a running agent and it "
                   "has published no snapshot (ledger.snapshot.duckdb); paper and live agents publish one "
                   "at each commit, a replay does not: query it when the replay has ended\n")
    agent.stop()


def test_the_console_script_reads_a_running_agents_snapshot_without_a_traceback(tmp_path, start_agent):
    run_dir = tmp_path / "paper"
    agent = start_agent(run_dir / "ledger.duckdb")
    agent.trade()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    result = subprocess.run([sys.executable, "-m", "ledger.cli", str(run_dir), "--view", "summary"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert result.returncode == 0
    assert result.stderr.startswith(f"ratchet-ledger: ledger {run_dir / 'ledger.duckdb'} is in use")
    assert "paper-run" in result.stdout
    agent.stop()


def test_a_snapshot_is_published_and_read_in_a_folder_whose_name_holds_a_quote(capsys, tmp_path):
    path = tmp_path / "trader's run" / "ledger.duckdb"
    with Ledger.open(path, "quoted") as ledger:
        ledger.append("trades", {"trade_id": "t1", "agent": "futures", "side": "long", "pnl": 1.0})
        ledger.commit()
        published = ledger.publish_snapshot()

    code, rows, _ = _stats(capsys, published)

    assert code == 0
    assert [(r["run_id"], int(r["trades"])) for r in rows] == [("quoted", 1)]
