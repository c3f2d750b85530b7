"""`ratchet-ledger` over one or many run ledgers: views, SQL, formats and clean failures."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ledger.cli import main
from ledger.schema import MIGRATIONS
from ledger.views import VIEW_NAMES
from ledger.writer import Ledger

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN = 60_000


def _write_run(run_dir: Path, run_id: str, pnls: list[float]) -> None:
    with Ledger.open(run_dir / "ledger.duckdb", run_id) as ledger:
        for number, pnl in enumerate(pnls):
            ledger.append("trades", {"trade_id": f"{run_id}-{number}", "agent": "futures",
                                     "symbol": "BTCUSDT", "side": "long", "pnl": pnl,
                                     "fees": 0.1, "funding": 0.0})
        for minute, equity in enumerate([100.0, 90.0, 100.0 + sum(pnls)]):
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": equity,
                                     "state": "conservative"})
        ledger.append("transitions", {"ts": MIN, "agent": "futures", "source": "conservative",
                                      "dest": "circuit_broken", "trigger": "drawdown_breached",
                                      "evidence": {"drawdown": 0.1}})


@pytest.fixture
def multirun(tmp_path: Path) -> Path:
    """A Hydra multirun folder with two runs, and a stray folder with no ledger."""
    sweep = tmp_path / "multirun" / "2026-11-25" / "10-00-00"
    _write_run(sweep / "0", "sweep-0", [2.0, 2.0, -1.0])
    _write_run(sweep / "1", "sweep-1", [1.0, -1.0])
    (sweep / ".hydra").mkdir()
    return tmp_path / "multirun"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_view_over_a_multirun_folder_has_one_row_per_run(capsys, multirun):
    code, out, _ = _run(capsys, multirun, "--view", "stats", "--format", "csv")

    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [Path(r["run_dir"]).name for r in rows] == ["0", "1"]
    assert [r["run_id"] for r in rows] == ["sweep-0", "sweep-1"]
    assert [int(r["trades"]) for r in rows] == [3, 2]
    assert [float(r["net_pnl"]) for r in rows] == [3.0, 0.0]
    assert float(rows[0]["kelly_edge"]) == pytest.approx(2 / 3 - (1 / 3) / 2)
    assert rows[0]["run_dir"] == str(multirun / "2026-11-25" / "10-00-00" / "0")


def test_sql_reads_base_tables_across_runs(capsys, multirun):
    code, out, _ = _run(capsys, multirun, "--format", "json", "--sql",
                        "SELECT run_id, count(*) AS trades, sum(pnl) AS pnl "
                        "FROM trades GROUP BY run_id ORDER BY run_id")

    assert code == 0
    assert json.loads(out) == [{"run_id": "sweep-0", "trades": 3, "pnl": 3.0},
                               {"run_id": "sweep-1", "trades": 2, "pnl": 0.0}]


def test_sql_can_build_on_the_named_views(capsys, multirun):
    code, out, _ = _run(capsys, multirun, "--format", "csv", "--sql",
                        "SELECT sum(trades) AS trades, max(max_drawdown) AS worst FROM summary")

    assert code == 0
    [row] = csv.DictReader(io.StringIO(out))
    assert int(row["trades"]) == 5
    assert float(row["worst"]) == pytest.approx(0.1)


def test_run_folders_can_be_given_one_by_one(capsys, multirun):
    sweep = multirun / "2026-11-25" / "10-00-00"

    code, out, _ = _run(capsys, sweep / "1", sweep / "0", "--view", "summary", "--format", "csv")

    assert code == 0
    assert [r["run_id"] for r in csv.DictReader(io.StringIO(out))] == ["sweep-0", "sweep-1"]


def test_json_format_embeds_evidence_as_objects(capsys, multirun):
    code, out, _ = _run(capsys, multirun, "--view", "breaker", "--format", "json")

    assert code == 0
    rows = json.loads(out)
    assert [(r["run_id"], r["dest"], r["evidence"]) for r in rows] == [
        ("sweep-0", "circuit_broken", {"drawdown": 0.1}),
        ("sweep-1", "circuit_broken", {"drawdown": 0.1}),
    ]


def test_table_format_aligns_columns_under_their_headers(capsys, multirun):
    code, out, _ = _run(capsys, multirun, "--sql",
                        "SELECT run_id, trades, net_pnl FROM stats ORDER BY run_id")

    assert code == 0
    header, rule, first, second, footer = out.splitlines()
    assert header.split() == ["run_id", "trades", "net_pnl"]
    assert set(rule) == {"-", " "}
    assert len(first) == len(second) == len(rule)  # numbers are right-aligned to the rule
    assert first.split() == ["sweep-0", "3", "3"]
    assert second.split() == ["sweep-1", "2", "0"]
    assert footer == "(2 rows)"


def test_list_views_names_every_view(capsys):
    code, out, _ = _run(capsys, "--list-views")

    assert code == 0
    assert [line.split()[0] for line in out.splitlines()] == list(VIEW_NAMES)


def test_a_folder_without_ledgers_fails_with_one_line(capsys, tmp_path):
    code, out, err = _run(capsys, tmp_path, "--view", "stats")

    assert code == 2
    assert out == ""
    assert err.count("\n") == 1
    assert f"no ledger.duckdb in {tmp_path}" in err


def test_an_unknown_view_fails_listing_the_known_ones(capsys, multirun):
    code, _, err = _run(capsys, multirun, "--view", "sharpe")

    assert code == 2
    assert err.count("\n") == 1
    assert "unknown view 'sharpe'" in err
    assert all(name in err for name in VIEW_NAMES)


def test_an_sql_error_fails_with_one_line(capsys, multirun):
    code, _, err = _run(capsys, multirun, "--sql", "SELECT nope FROM trades")

    assert code == 2
    assert err.count("\n") == 1
    assert err.startswith("ratchet-ledger: SQL error: ")
    assert "nope" in err


def test_sql_cannot_write_to_a_run_ledger(capsys, multirun):
    code, _, err = _run(capsys, multirun, "--sql", "DELETE FROM ledger_0.main.trades")

    assert code == 2
    assert "SQL error" in err


def test_a_ledger_from_a_newer_ratchet_fails_naming_it(capsys, multirun):
    newer = multirun / "2026-11-25" / "10-00-00" / "1" / "ledger.duckdb"
    with duckdb.connect(str(newer)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (?, now()::TIMESTAMP)",
                    [MIGRATIONS[-1].version + 1])

    code, _, err = _run(capsys, multirun, "--view", "stats")

    assert code == 2
    assert str(newer) in err
    assert "newer than this Ratchet knows" in err


def test_the_console_script_fails_without_a_traceback(multirun):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    result = subprocess.run(
        [sys.executable, "-m", "ledger.cli", str(multirun), "--view", "sharpe"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ratchet-ledger: unknown view 'sharpe'")


def test_a_ledger_held_by_a_running_agent_is_reported_not_crashed_on(tmp_path):
    run_dir = tmp_path / "live"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    with Ledger.open(run_dir / "ledger.duckdb", "live-run"):  # this process holds the lock
        result = subprocess.run(
            [sys.executable, "-m", "ledger.cli", str(run_dir), "--view", "stats"],
            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
        )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"cannot open ledger {run_dir / 'ledger.duckdb'}" in result.stderr
