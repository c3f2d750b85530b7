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
        ledger.append("state_tags", {"agent": "futures", "state": "circuit_broken", "tag": "breaker"})
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
    result = _console(multirun, "--view", "sharpe")

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("ratchet-ledger: unknown view 'sharpe'")


def test_an_empty_query_fails_with_one_line(capsys, multirun):
    code, out, err = _run(capsys, multirun, "--sql", "")

    assert (code, out) == (2, "")
    assert err == ("ratchet-ledger: the query is empty or only a comment; give one SELECT, "
                   "e.g. --sql 'SELECT * FROM stats'\n")


def test_a_query_that_is_only_a_comment_fails_with_one_line(capsys, multirun):
    code, out, err = _run(capsys, multirun, "--sql", "-- SELECT * FROM trades")

    assert (code, out) == (2, "")
    assert err.startswith("ratchet-ledger: the query is empty or only a comment")
    assert err.count("\n") == 1


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_ledger_cut_in_half_is_named_as_not_readable(capsys, multirun):
    cut = multirun / "2026-11-25" / "10-00-00" / "1" / "ledger.duckdb"
    _cut_in_half(cut)

    code, out, err = _run(capsys, multirun, "--view", "summary")

    assert (code, out) == (2, "")
    assert err == f"ratchet-ledger: {cut} is not a readable ledger: it is cut short\n"


@pytest.fixture(scope="module")
def two_session_ledger(tmp_path_factory) -> bytes:
    """A ledger written in two sessions: its catalog opens from the first half of the file, while
    most equity marks lie beyond it, so only a query that reads them meets the damage."""
    path = tmp_path_factory.mktemp("two_sessions") / "ledger.duckdb"
    with Ledger.open(path, "r2") as ledger:
        ledger.append("runs", {"agent": "futures"})
    with Ledger.open(path, "r2") as ledger:
        for minute in range(50_000):
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": 100.0 + minute})
    return path.read_bytes()


def _damaged_copy(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "damaged" / "ledger.duckdb"
    path.parent.mkdir()
    path.write_bytes(data)
    with duckdb.connect(str(path), read_only=True) as con:  # the premise: the ledger still opens
        assert con.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    return path


def test_a_ledger_cut_in_half_is_named_when_only_the_query_reaches_the_cut(capsys, tmp_path, two_session_ledger):
    path = _damaged_copy(tmp_path, two_session_ledger[: len(two_session_ledger) // 2])

    code, out, err = _run(capsys, path.parent, "--sql", "SELECT sum(equity) FROM equity")

    assert (code, out) == (2, "")
    assert err == f"ratchet-ledger: {path} is not a readable ledger: it is cut short\n"


def test_a_ledger_with_overwritten_bytes_is_named_as_corrupt(capsys, tmp_path, two_session_ledger):
    half = len(two_session_ledger) // 2
    path = _damaged_copy(tmp_path, two_session_ledger[:half] + b"\xff" * (len(two_session_ledger) - half))

    code, out, err = _run(capsys, path.parent, "--sql", "SELECT sum(equity) FROM equity")

    assert (code, out) == (2, "")
    assert err == f"ratchet-ledger: {path} is not a readable ledger: it is corrupt\n"


def test_a_file_that_is_not_a_ledger_is_named(capsys, tmp_path):
    path = tmp_path / "notes" / "ledger.duckdb"
    path.parent.mkdir()
    path.write_text("not a database\n" * 400)

    code, _, err = _run(capsys, path.parent, "--view", "stats")

    assert code == 2
    assert err == f"ratchet-ledger: {path} is not a readable ledger: it is not a DuckDB database\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_a_run_folder_without_read_permission_is_named(capsys, multirun):
    locked = multirun / "2026-11-25" / "10-00-00" / "1"
    locked.chmod(0)
    try:
        code, _, err = _run(capsys, multirun, "--view", "stats")
    finally:
        locked.chmod(0o755)

    assert code == 2
    assert err.count("\n") == 1
    assert str(locked) in err
    assert "ermission denied" in err


def _console(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "ledger.cli", *map(str, argv)], cwd=REPO_ROOT, env=env,
                          capture_output="stdout" not in kwargs, text=True, timeout=120, **kwargs)


def test_output_into_a_closed_pipe_ends_quietly(multirun):
    reader, writer = os.pipe()
    os.close(reader)  # like `| head` that has already exited: every write meets a closed pipe
    try:
        result = _console(multirun, "--view", "stats", stdout=writer, stderr=subprocess.PIPE)
    finally:
        os.close(writer)

    assert result.stderr == ""
    assert result.returncode == 141  # as if killed by SIGPIPE, like other tools in a pipeline


def test_piping_a_long_view_into_head_prints_its_first_line_and_no_traceback(tmp_path):
    run_dir = tmp_path / "long"
    with Ledger.open(run_dir / "ledger.duckdb", "long-run") as ledger:
        for minute in range(5_000):  # ~400 KB of table: far more than a pipe holds
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": 100.0 + minute})
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}

    result = subprocess.run(
        f"{sys.executable} -m ledger.cli {run_dir} --view drawdown | head -1", shell=True,
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )

    assert result.stdout.split() == ["run_dir", "run_id", "ts", "agent", "equity", "peak", "drawdown", "state"]
    assert result.stderr == ""
