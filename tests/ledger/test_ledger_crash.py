"""A process killed between commits keeps every committed row and none of the rest."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ledger.writer import Ledger

REPO_ROOT = Path(__file__).resolve().parents[2]

# Commits 100 equity marks and a trade, buffers 50 more marks and a trade, then dies.
CRASHING_RUN = """
import os, signal, sys
from ledger.writer import Ledger

path, death = sys.argv[1], sys.argv[2]
ledger = Ledger.open(path, "crash-run")
def mark(ts):
    ledger.append("equity", {"ts": ts, "agent": "futures", "equity": 100.0 + ts / 60_000})
for bar in range(100):
    mark(bar * 60_000)
ledger.append("trades", {"trade_id": "t1", "agent": "futures", "side": "long", "pnl": 1.0})
ledger.commit()
for bar in range(100, 150):
    mark(bar * 60_000)
ledger.append("trades", {"trade_id": "t2", "agent": "futures", "side": "short", "pnl": -1.0})
assert ledger.pending() == 51
if death == "exit":
    os._exit(1)
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("death", ["exit", "sigkill"])
def test_committed_rows_survive_a_crash_and_uncommitted_ones_vanish(tmp_path, death):
    path = tmp_path / "ledger.duckdb"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, str(path), death],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert crashed.returncode != 0, crashed.stderr
    assert "Traceback" not in crashed.stderr
    with Ledger.open(path, "crash-run") as resumed:
        assert resumed.query("SELECT count(*), max(ts) FROM equity") == [(100, 99 * 60_000)]
        assert resumed.query("SELECT trade_id FROM trades") == [("t1",)]
        assert resumed.last_ts("futures") == 99 * 60_000
