"""A run folder holds exactly one run: every way of splicing a second one in is refused before the
folder is touched (ledger, saved Hydra config, everything)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from tests.support.cli import ratchet
from tests.support.ledger_export import export

WINDOW = ("market.start=2023-01-01", "market.end=2023-01-22")


def _snapshot(folder: Path) -> dict[str, str]:
    """Every file under the folder with the hash of its bytes and its modification time."""
    return {str(p.relative_to(folder)): f"{hashlib.sha256(p.read_bytes()).hexdigest()}:{p.stat().st_mtime_ns}"
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def futures_run(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("futures") / "run"
    done = ratchet("agent=futures", "market=perp_1h", *WINDOW, f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr
    return run_dir


@pytest.fixture
def used_folder(futures_run, tmp_path) -> Path:
    folder = tmp_path / "run"
    shutil.copytree(futures_run, folder)
    return folder


def _refused(folder: Path, *overrides: str) -> str:
    before = _snapshot(folder)
    done = ratchet(*overrides, f"hydra.run.dir={folder}")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert _snapshot(folder) == before, "a refused run touched the folder"
    return done.stderr


def test_a_run_folder_saves_its_own_hydra_config(futures_run):
    overrides = (futures_run / ".hydra" / "overrides.yaml").read_text()
    assert "market.start=2023-01-01" in overrides
    assert (futures_run / ".hydra" / "config.yaml").is_file()


def test_resume_false_into_a_folder_holding_a_run_is_refused_untouched(used_folder):
    err = _refused(used_folder, "agent=futures", "market=perp_1h", *WINDOW, "resume=false")
    assert "already holds a run of agent 'futures'" in err and "new hydra.run.dir" in err


def test_another_agent_into_a_futures_run_folder_is_refused_untouched(used_folder):
    err = _refused(used_folder, "agent=hybrid", "market=spot_1h", *WINDOW)
    assert "holds a run of agent 'futures', not 'hybrid'" in err


def test_resuming_under_another_config_is_refused_naming_the_key_and_leaves_hydra_files(used_folder):
    err = _refused(used_folder, "agent=futures", "market=perp_1h", *WINDOW,
                   "agent.components.fixed_risk.risk=0.002")
    assert "agent.components.fixed_risk.risk: 0.003 in the ledger, 0.002 now" in err


def test_a_complete_run_resumed_with_its_own_overrides_changes_no_row(used_folder):
    before = export(used_folder / "ledger.duckdb")
    done = ratchet("agent=futures", "market=perp_1h", *WINDOW, f"hydra.run.dir={used_folder}")
    assert done.returncode == 0, done.stderr
    assert export(used_folder / "ledger.duckdb") == before


def test_resuming_after_the_market_data_changed_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for path in BUNDLED_DATA_DIR.glob("binance_futures_*.parquet"):
        shutil.copy(path, data)
    folder = tmp_path / "run"
    args = ("agent=futures", "market=perp_1h", *WINDOW, f"market.data_dir={data}")
    done = ratchet(*args, f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr
    for path in data.glob("binance_futures_*_1h.parquet"):  # every candle file, mark prices too
        table = pq.read_table(path)
        scaled = {name: pc.multiply(table[name], 1.1) if name in ("open", "high", "low", "close")
                  else table[name] for name in table.column_names}
        pq.write_table(pa.table(scaled), path)
    err = _refused(folder, *args)
    assert "market data changed since the run started" in err


def test_a_second_process_on_a_running_folder_is_refused_untouched(used_folder):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True);"
         " time.sleep(60)", str(used_folder / "ledger.duckdb")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        err = _refused(used_folder, "agent=futures", "market=perp_1h", *WINDOW)
        assert "in use by another Ratchet process" in err
    finally:
        holder.kill()
        holder.communicate()


LONG = ("agent=futures", "market=perp_1h", "commit_every_seconds=0.1")  # many commits: a kill lands between two


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, list[tuple]]:
    folder = tmp_path_factory.mktemp("whole") / "run"
    done = ratchet(*LONG, f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr
    return export(folder / "ledger.duckdb")


def _start(folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from machine.cli import main; main()", *LONG,
                             f"hydra.run.dir={folder}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_commits(folder: Path, wal_bytes: int) -> None:
    """Until the ledger's write-ahead log has grown past ``wal_bytes`` and then stood still for 50 ms: a
    batch has been committed whole (a commit writes its rows in one burst; the next comes 0.1 s later)."""
    wal = folder / "ledger.duckdb.wal"
    deadline = time.monotonic() + 120
    size, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now_size = wal.stat().st_size if wal.exists() else -1
        if now_size != size:
            size, since = now_size, time.monotonic()
        elif size > wal_bytes and time.monotonic() - since >= 0.05:
            return
        time.sleep(0.005)


def test_ctrl_c_finishes_the_bar_commits_and_the_run_resumes_to_the_uninterrupted_ledger(uninterrupted, tmp_path):
    folder = tmp_path / "run"
    proc = _start(folder)
    _wait_for_commits(folder, 200_000)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped on request" in out
    assert export(folder / "ledger.duckdb")["equity"], "nothing was committed before the stop"
    done = ratchet(*LONG, f"hydra.run.dir={folder}")
    assert done.returncode == 0 and "resumed after bar" in done.stdout, done.stderr
    assert export(folder / "ledger.duckdb") == uninterrupted


@pytest.mark.parametrize("wal_bytes", [100_000, 1_000_000])
def test_kill_9_between_batched_commits_resumes_to_the_uninterrupted_ledger(uninterrupted, tmp_path, wal_bytes):
    folder = tmp_path / "run"
    proc = _start(folder)
    _wait_for_commits(folder, wal_bytes)
    proc.kill()
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    partial = export(folder / "ledger.duckdb")["equity"]
    assert 0 < len(partial) < len(uninterrupted["equity"]), "the kill did not land mid-run"
    done = ratchet(*LONG, f"hydra.run.dir={folder}")
    assert done.returncode == 0, done.stderr
    assert export(folder / "ledger.duckdb") == uninterrupted


def test_a_window_after_the_data_names_the_warm_up_bars_it_asked_for_too(tmp_path):
    done = ratchet("agent=futures", "market=perp_1h", "market.start=2030-01-01", f"hydra.run.dir={tmp_path / 'run'}")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "the window includes the 734 warm-up bars before market.start 2030-01-01" in done.stderr
    assert "BTC/USDT:USDT [2022-01-01T00:00:00Z, 2026-05-16T18:00:00Z)" in done.stderr
    assert not (tmp_path / "run" / "ledger.duckdb").exists()
