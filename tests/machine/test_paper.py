"""Paper trading against the loopback Binance server: the real ccxt client, the exchange's clock
running hours of market time per second of test time, bundled real candles."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from components.market.timeframes import iso_utc
from core.errors import ConfigError
from machine.compose import compose_run
from machine.engine import run_replay
from tests.support.binance import FakeBinance, FakeClock
from tests.support.ledger_export import committed_bars, export

HOUR = 3_600_000
T0 = 1_691_280_000_000 + HOUR // 2  # 2023-08-06 00:30 UTC: a busy stretch for the futures agent
SPEED = 200 * 3600  # 200 hours of exchange time per second
DECIDED = ("orders", "fills", "trades", "funding", "equity", "transitions", "adjustments", "decisions",
           "models", "predictions")


def paper_overrides(exchange: FakeBinance, *extra: str) -> tuple[str, ...]:
    return ("agent=futures", "market=perp_1h", "mode=paper", f"exchange.base_url={exchange.base_url}",
            "mode.poll_seconds=0.02", "exchange.rate_limit_ms=1", *extra)


def start_clock_once_polled(exchange: FakeBinance, speed: float = SPEED) -> None:
    """The clock stands at T0 until the agent has asked the time, so every run starts at the same bar."""
    exchange.wait_for(lambda r: r.path.endswith("/time"), timeout_s=60)
    exchange.clock.run(speed)


def wait_for_bars(run_dir: Path, bars: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while committed_bars(run_dir) < bars:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"fewer than {bars} bars committed in 120 s"
        time.sleep(0.05)


def start_paper(exchange: FakeBinance, run_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from machine.cli import main; main()",
                             *paper_overrides(exchange), f"hydra.run.dir={run_dir}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def replay_of_stored_bars(paper_dir: Path, replay_dir: Path, last_close: int) -> Path:
    """The same agent replayed over the bars the paper run stored, from its first live bar."""
    first_live = json.loads((paper_dir / "market" / "feed.json").read_text())["first_live_bar"]
    cfg = compose_run("agent=futures", "market=perp_1h", f"market.data_dir={paper_dir / 'market'}",
                      f"market.start={iso_utc(first_live)[:-1]}", f"market.end={iso_utc(last_close)[:-1]}")
    run_replay(cfg, replay_dir)
    return replay_dir / "ledger.duckdb"


def last_equity_ts(ledger: Path) -> int:
    con = duckdb.connect(str(ledger), read_only=True)
    try:
        return con.execute("SELECT max(ts) FROM equity").fetchone()[0]
    finally:
        con.close()


def test_a_paper_ledger_equals_a_replay_of_the_same_stretch_from_the_bars_it_stored(tmp_path):
    paper = tmp_path / "paper"
    with FakeBinance(FakeClock(T0)) as exchange:
        clock = threading.Thread(target=start_clock_once_polled, args=(exchange,), daemon=True)
        clock.start()  # the run starts at T0's bar however long its start takes, so it trades the same stretch
        run_replay(compose_run(*paper_overrides(exchange)), paper, stop_after_bars=200)
        clock.join()
    until = last_equity_ts(paper / "ledger.duckdb") - HOUR  # the replay closes what is open at its last bar
    replayed = replay_of_stored_bars(paper, tmp_path / "replay", until + HOUR)
    ours, theirs = export(paper / "ledger.duckdb", until_ts=until), export(replayed, until_ts=until)
    assert len(ours["trades"]) >= 5 and len(ours["equity"]) >= 190
    for table in DECIDED:
        assert ours[table] == theirs[table], table
    mode, venue = export(paper / "ledger.duckdb", tables=("runs",))["runs"][0][1:3]
    assert "simulated fills" in f"{mode} {venue}" and "127.0.0.1" in venue


@dataclass(frozen=True)
class PaperRun:
    run_dir: Path
    returncode: int
    stdout: str
    stderr: str
    query: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def stopped_by_sigterm(tmp_path_factory) -> Iterator[PaperRun]:
    """A paper agent left running, queried while it runs, then stopped with SIGTERM."""
    run_dir = tmp_path_factory.mktemp("paper") / "run"
    with FakeBinance(FakeClock(T0)) as exchange:
        proc = start_paper(exchange, run_dir)
        start_clock_once_polled(exchange)
        wait_for_bars(run_dir, 40, proc)
        query = subprocess.run([sys.executable, "-c", "from ledger.cli import main; raise SystemExit(main())",
                                str(run_dir), "--view", "summary", "--format", "json"],
                               capture_output=True, text=True)
        wait_for_bars(run_dir, 80, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    yield PaperRun(run_dir, proc.returncode, out, err, query)


def test_sigterm_finishes_the_bar_commits_and_exits_0(stopped_by_sigterm):
    run = stopped_by_sigterm
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr and "stopped on request" in run.stdout
    assert committed_bars(run.run_dir) >= 80
    assert last_equity_ts(run.run_dir / "ledger.duckdb") == last_equity_ts(run.run_dir / "ledger.snapshot.duckdb")


def test_the_ledger_of_a_running_paper_agent_can_be_queried(stopped_by_sigterm):
    query = stopped_by_sigterm.query
    assert query.returncode == 0, query.stderr
    assert "in use by a running agent; reading its snapshot" in query.stderr
    (row,) = json.loads(query.stdout)
    assert row["agent"] == "futures" and row["last_equity"] > 0


def test_kill_9_mid_run_and_a_restart_give_the_ledger_of_an_uninterrupted_paper_run(stopped_by_sigterm, tmp_path):
    run_dir = tmp_path / "run"
    with FakeBinance(FakeClock(T0)) as exchange:
        proc = start_paper(exchange, run_dir)
        start_clock_once_polled(exchange)
        wait_for_bars(run_dir, 25, proc)
        proc.kill()
        proc.communicate()
        restarted = start_paper(exchange, run_dir)  # the exchange's clock ran on: missed bars are caught up
        wait_for_bars(run_dir, 90, restarted)
        restarted.send_signal(signal.SIGTERM)
        _, err = restarted.communicate(timeout=60)
        assert restarted.returncode == 0, err
    until = min(last_equity_ts(run_dir / "ledger.duckdb"), last_equity_ts(stopped_by_sigterm.run_dir / "ledger.duckdb"))
    ours = export(run_dir / "ledger.duckdb", until_ts=until, tables=DECIDED)
    theirs = export(stopped_by_sigterm.run_dir / "ledger.duckdb", until_ts=until, tables=DECIDED)
    assert len(ours["equity"]) >= 80 and ours == theirs


def test_a_paper_run_refuses_an_unknown_symbol_before_the_folder_is_made(tmp_path):
    with FakeBinance(FakeClock(T0)) as exchange:
        cfg = compose_run(*paper_overrides(exchange, "market.symbols=[DOGE/USDT:USDT]"))
        with pytest.raises(ConfigError, match="'DOGE/USDT:USDT' is not listed on Binance futures"):
            run_replay(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_retrain_runs_beside_the_paper_loop_and_its_champion_is_swapped_in_when_ready(tmp_path):
    run_dir = tmp_path / "hybrid"
    with FakeBinance(FakeClock(T0)) as exchange:
        # 6 hours a second: bars close while the first model trains (about 2 s on an idle core), and 80 bars
        # leave it some 13 s to finish on a busy machine
        exchange.clock.run(6 * 3600)
        cfg = compose_run("agent=hybrid", "market=spot_1h", "market.symbols=[BTC/USDT,ETH/USDT]", "mode=paper",
                          f"exchange.base_url={exchange.base_url}", "mode.poll_seconds=0.02",
                          "exchange.rate_limit_ms=1")
        run_replay(cfg, run_dir, stop_after_bars=80)
    con = duckdb.connect(str(run_dir / "ledger.duckdb"), read_only=True)
    try:
        (evidence,) = con.execute("SELECT evidence FROM adjustments WHERE kind = 'model_retrain'").fetchone()
        retrain = json.loads(evidence)
        bars_while_training = con.execute("SELECT count(*) FROM equity WHERE ts >= ? AND ts < ?",
                                          [retrain["requested_at"], retrain["live_from"]]).fetchone()[0]
        models = con.execute("SELECT ts, status FROM models").fetchall()
        unscored = con.execute("SELECT count(*) FROM decisions WHERE ts < ? AND model_version IS NOT NULL",
                               [retrain["live_from"]]).fetchone()[0]
    finally:
        con.close()
    assert retrain["live_from"] > retrain["requested_at"] and bars_while_training >= 1
    assert retrain["wall_seconds"] > 0
    assert models == [(retrain["live_from"], "champion")]
    assert unscored == 0  # before the swap no model scored a decision
