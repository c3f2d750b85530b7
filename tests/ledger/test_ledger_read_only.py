"""`ratchet-ledger` never writes: every way a query could change a ledger, write a file, read another
file, load code or change a setting is refused, and afterwards every file is as it was."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import duckdb
import pytest

from ledger.cli import connect_sweep, main
from ledger.writer import Ledger

MIN = 60_000


@pytest.fixture(scope="module")
def written_run(tmp_path_factory) -> Path:
    """A run with trades, equity marks and a transition, and a CSV beside it holding a secret."""
    root = tmp_path_factory.mktemp("written")
    with Ledger.open(root / "runs" / "r1" / "ledger.duckdb", "r1") as ledger:
        for number, pnl in enumerate([2.0, -1.0, 3.0]):
            ledger.append("trades", {"trade_id": f"t{number}", "agent": "futures", "symbol": "BTCUSDT",
                                     "side": "long", "pnl": pnl})
        for minute in range(3):
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": 100.0 + minute})
        ledger.append("transitions", {"ts": MIN, "agent": "futures", "source": "warmup",
                                      "dest": "conservative", "trigger": "history_ready"})
    (root / "secret.csv").write_text("note\na line no query may read\n")
    return root


@pytest.fixture
def run_dir(tmp_path: Path, written_run: Path) -> Path:
    """This test's own copy of the written run, under tmp_path."""
    shutil.copytree(written_run, tmp_path, dirs_exist_ok=True)
    return tmp_path / "runs" / "r1"


def _files(root: Path) -> dict[str, str]:
    """Every file under root with the sha256 of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _row_counts(ledger: Path) -> dict[str, int]:
    with duckdb.connect(str(ledger), read_only=True) as con:
        tables = [name for (name,) in con.execute("SHOW TABLES").fetchall()]
        return {table: con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def _refused(capsys, tmp_path: Path, run_dir: Path, sql: str) -> str:
    """Run the query; assert it failed with one line, wrote nothing and changed no row; return the line."""
    ledger = run_dir / "ledger.duckdb"
    files, counts = _files(tmp_path), _row_counts(ledger)

    code = main([str(run_dir), "--sql", sql])
    out, err = capsys.readouterr()

    assert (code, out) == (2, "")
    assert err.count("\n") == 1
    assert _files(tmp_path) == files
    assert _row_counts(ledger) == counts
    assert counts["trades"] == 3
    return err.removeprefix("ratchet-ledger: ").rstrip("\n")


def test_the_reported_detach_attach_delete_chain_is_refused_and_every_trade_remains(capsys, tmp_path, run_dir):
    path = run_dir / "ledger.duckdb"

    message = _refused(capsys, tmp_path, run_dir,
                       f"DETACH ledger_0; ATTACH '{path}' AS w; DELETE FROM w.main.trades")

    assert message == "the ledger is read-only: a query is one SELECT, not DETACH"


def test_attaching_the_ledger_again_for_writing_is_refused(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, f"ATTACH '{run_dir / 'ledger.duckdb'}' AS w")

    assert message == "the ledger is read-only: a query is one SELECT, not ATTACH"


def test_attaching_a_new_database_file_is_refused_and_creates_none(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, f"ATTACH '{tmp_path / 'new.duckdb'}' AS w")

    assert message == "the ledger is read-only: a query is one SELECT, not ATTACH"
    assert not (tmp_path / "new.duckdb").exists()


def test_detaching_a_ledger_is_refused(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, "DETACH ledger_0")

    assert message == "the ledger is read-only: a query is one SELECT, not DETACH"


@pytest.mark.parametrize(("sql", "kind"), [
    ("DELETE FROM trades", "DELETE"),
    ("DELETE FROM ledger_0.main.trades", "DELETE"),
    ("INSERT INTO ledger_0.main.trades (trade_id) VALUES ('forged')", "INSERT"),
    ("UPDATE ledger_0.main.trades SET pnl = 100", "UPDATE"),
    ("CREATE TABLE ledger_0.main.forged AS SELECT * FROM trades", "CREATE"),
    ("DROP VIEW stats", "DROP"),
    ("WITH doomed AS (SELECT 1) DELETE FROM ledger_0.main.trades", "DELETE"),
])
def test_a_statement_that_writes_is_refused_as_read_only(capsys, tmp_path, run_dir, sql, kind):
    message = _refused(capsys, tmp_path, run_dir, sql)

    assert message == f"the ledger is read-only: a query is one SELECT, not {kind}"


def test_copy_to_a_file_is_refused_and_writes_no_file(capsys, tmp_path, run_dir):
    target = tmp_path / "trades.csv"

    message = _refused(capsys, tmp_path, run_dir, f"COPY trades TO '{target}'")

    assert message == "the ledger is read-only: a query is one SELECT, not COPY"
    assert not target.exists()


def test_export_database_is_refused_and_writes_no_folder(capsys, tmp_path, run_dir):
    target = tmp_path / "export"

    message = _refused(capsys, tmp_path, run_dir, f"EXPORT DATABASE '{target}'")

    assert message == "the ledger is read-only: a query is one SELECT, not EXPORT"
    assert not target.exists()


@pytest.mark.parametrize("sql", ["INSTALL httpfs", "LOAD httpfs", "FORCE INSTALL json"])
def test_installing_or_loading_an_extension_is_refused(capsys, tmp_path, run_dir, sql):
    message = _refused(capsys, tmp_path, run_dir, sql)

    assert message == "the ledger is read-only: a query is one SELECT, not LOAD"


@pytest.mark.parametrize("sql", [
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET threads",
    "PRAGMA threads = 1",
    "USE ledger_0",
])
def test_changing_a_setting_is_refused(capsys, tmp_path, run_dir, sql):
    message = _refused(capsys, tmp_path, run_dir, sql)

    assert message == "the ledger is read-only: a query is one SELECT, not SET"


@pytest.mark.parametrize("source", [
    "read_csv('{secret}')", "read_csv_auto('{secret}')", "read_text('{secret}')", "read_blob('{secret}')",
    "read_json('{secret}')", "read_parquet('{secret}')", "glob('{secret}')", "sniff_csv('{secret}')",
    "'{secret}'",  # a file named where a table goes
])
def test_a_select_cannot_read_another_file(capsys, tmp_path, run_dir, source):
    sql = f"SELECT * FROM {source.format(secret=tmp_path / 'secret.csv')}"

    message = _refused(capsys, tmp_path, run_dir, sql)

    assert message == "a query reads the ledgers and no other file"


def test_a_select_cannot_read_etc_passwd(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, "SELECT * FROM read_csv('/etc/passwd')")

    assert message == "a query reads the ledgers and no other file"


def test_two_selects_in_one_query_are_refused(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, "SELECT 1; SELECT 2")

    assert message == "a query is one SELECT; this one holds 2 statements"


def test_a_pivot_that_duckdb_runs_as_several_statements_is_refused(capsys, tmp_path, run_dir):
    message = _refused(capsys, tmp_path, run_dir, "CREATE TABLE forged AS PIVOT trades ON side USING sum(pnl)")

    assert message == "DuckDB runs this PIVOT as several statements; list its values (ON column IN (...))"


def test_a_pivot_with_its_values_listed_runs(capsys, run_dir):
    code = main([str(run_dir), "--format", "csv", "--sql",
                 "PIVOT trades ON side IN ('long', 'short') USING sum(pnl) GROUP BY agent"])
    out, _ = capsys.readouterr()

    assert code == 0
    assert out.splitlines() == ["agent,long,short", "futures,4.0,"]


def test_the_connection_itself_refuses_writes_files_and_settings_even_without_the_select_rule(tmp_path, run_dir):
    """Below the one-SELECT rule DuckDB's own safeguards hold, should a statement ever slip past it."""
    path = run_dir / "ledger.duckdb"
    files = _files(tmp_path)
    con = connect_sweep([path])
    try:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM ledger_0.main.trades")
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'")
        with pytest.raises(duckdb.PermissionException):
            con.execute(f"SELECT * FROM read_csv('{tmp_path / 'secret.csv'}')")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="locked"):
            con.execute("SET disabled_filesystems = ''")
        con.execute("DETACH ledger_0")
        with pytest.raises(duckdb.PermissionException):  # the file it had open is not reopened
            con.execute(f"ATTACH '{path}' AS w")
    finally:
        con.close()

    assert _files(tmp_path) == files
