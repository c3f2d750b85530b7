"""Bad market data stops a run with a message naming the file or bar, or is skipped and recorded."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from core.errors import DataError
from machine.compose import compose_run
from machine.engine import run_replay
from tests.support.cli import ratchet

HALT_WINDOW = ("agent=hybrid", "market=spot_1h", "market.start=2023-03-01", "market.end=2023-04-15",
               "market.symbols=[BTC/USDT,ETH/USDT]")


def test_the_real_2023_exchange_halt_gap_fails_a_strict_run_naming_the_bar(tmp_path):
    with pytest.raises(DataError, match="2023-03-24T13:00"):
        run_replay(compose_run(*HALT_WINDOW, "market.on_gap=fail"), tmp_path / "run")
    assert not (tmp_path / "run" / "ledger.duckdb").exists()


def test_a_lenient_run_skips_the_gap_and_records_it_in_the_ledger(replay):
    result = replay(*HALT_WINDOW, "market.on_gap=skip")
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    issues = con.execute("SELECT symbol, kind, ts FROM data_issues ORDER BY symbol").fetchall()
    con.close()
    assert [(s, k) for s, k, _ in issues] == [("BTC/USDT", "gap"), ("ETH/USDT", "gap")]


def test_a_corrupt_data_file_is_named_and_nothing_is_written(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(BUNDLED_DATA_DIR, data, ignore=shutil.ignore_patterns("*_1m*", "*_5m*", "*spot*"))
    (data / "binance_futures_ETH-USDT-USDT_1h.parquet").write_bytes(b"PAR1 not really parquet")
    run_dir = tmp_path / "run"
    out = ratchet("agent=futures", f"market.data_dir={data}", f"hydra.run.dir={run_dir}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "binance_futures_ETH-USDT-USDT_1h.parquet" in out.stderr
    assert not (run_dir / "ledger.duckdb").exists()


def test_a_missing_data_file_is_named(tmp_path):
    data = tmp_path / "data"
    shutil.copytree(BUNDLED_DATA_DIR, data, ignore=shutil.ignore_patterns("*ETH-USDT-USDT_funding*"))
    with pytest.raises(DataError, match="ETH"):
        run_replay(compose_run("agent=futures", f"market.data_dir={data}"), tmp_path / "run")
    assert not (tmp_path / "run" / "ledger.duckdb").exists()
