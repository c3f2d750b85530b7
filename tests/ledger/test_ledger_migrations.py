"""Schema migrations: applied in order, recorded, and refused when the ledger is newer."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from core.errors import LedgerError
from ledger.schema import MIGRATIONS, Migration, migrate, schema_version
from ledger.writer import Ledger

BASE_TABLES = {
    "runs", "orders", "fills", "trades", "funding", "equity", "transitions", "adjustments",
    "models", "decisions", "data_issues", "notifications", "predictions", "state_tags",
    "order_updates", "reconciliation", "exchange_replies",
}
LATEST = MIGRATIONS[-1].version


def _tables(path) -> set[str]:
    with duckdb.connect(str(path), read_only=True) as con:
        return {name for (name,) in con.execute("SHOW TABLES").fetchall()}


def _versions(path) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()


def test_a_fresh_ledger_gets_every_table_and_records_each_migration(open_ledger, ledger_path):
    open_ledger().close()

    assert _tables(ledger_path) == BASE_TABLES | {"schema_migrations"}
    walls = [datetime.fromtimestamp(1_800_000_000 + i, UTC).replace(tzinfo=None) for i in range(LATEST)]
    assert _versions(ledger_path) == list(zip(range(1, LATEST + 1), walls, strict=True))


def test_every_table_carries_run_id_and_wall_ts(open_ledger, ledger_path):
    open_ledger().close()

    with duckdb.connect(str(ledger_path), read_only=True) as con:
        rows = con.execute(
            "SELECT table_name, list(column_name ORDER BY column_index) FROM duckdb_columns() "
            "WHERE NOT internal AND table_name <> 'schema_migrations' GROUP BY table_name"
        ).fetchall()
    assert {table for table, _ in rows} == BASE_TABLES
    for _, columns in rows:
        assert columns[:2] == ["run_id", "wall_ts"]


def test_reopening_applies_nothing_and_keeps_rows(open_ledger, ledger_path):
    with open_ledger() as ledger:
        ledger.append("equity", {"ts": 0, "agent": "futures", "equity": 100.0})

    with open_ledger() as ledger:
        assert ledger.query("SELECT count(*) FROM equity") == [(1,)]
    assert [version for version, _ in _versions(ledger_path)] == list(range(1, LATEST + 1))


def test_an_empty_duckdb_file_is_migrated_from_scratch(ledger_path, wall_clock):
    ledger_path.parent.mkdir(parents=True)
    duckdb.connect(str(ledger_path)).close()

    Ledger.open(ledger_path, "r1", wall_clock=wall_clock).close()

    assert [version for version, _ in _versions(ledger_path)] == list(range(1, LATEST + 1))


def test_an_older_ledger_gets_only_the_missing_migrations(open_ledger, ledger_path, wall_clock):
    open_ledger().close()
    venue = Migration(LATEST + 1, "trade venue", "ALTER TABLE trades ADD COLUMN venue VARCHAR")

    with duckdb.connect(str(ledger_path)) as con:
        applied = migrate(con, ledger_path, wall_clock, (*MIGRATIONS, venue))
        columns = [row[0] for row in con.execute("DESCRIBE trades").fetchall()]
        version = schema_version(con)

    assert applied == [LATEST + 1]
    assert version == LATEST + 1
    assert columns[-1] == "venue"


def test_a_failing_migration_leaves_the_ledger_as_it_was(open_ledger, ledger_path, wall_clock):
    open_ledger().close()
    broken = Migration(
        LATEST + 1, "broken", "ALTER TABLE trades ADD COLUMN venue VARCHAR; SELECT * FROM nowhere"
    )

    with duckdb.connect(str(ledger_path)) as con:
        with pytest.raises(LedgerError, match=rf"migration {LATEST + 1} failed"):
            migrate(con, ledger_path, wall_clock, (*MIGRATIONS, broken))
        columns = [row[0] for row in con.execute("DESCRIBE trades").fetchall()]

    assert "venue" not in columns
    assert [version for version, _ in _versions(ledger_path)] == list(range(1, LATEST + 1))


@pytest.mark.parametrize("read_only", [False, True])
def test_a_ledger_from_a_newer_ratchet_is_refused_naming_file_and_versions(
    open_ledger, ledger_path, wall_clock, read_only
):
    open_ledger().close()
    with duckdb.connect(str(ledger_path)) as con:
        con.execute("INSERT INTO schema_migrations VALUES (?, now()::TIMESTAMP)", [LATEST + 6])

    with pytest.raises(LedgerError) as refused:
        Ledger.open(ledger_path, "r1", read_only=read_only, wall_clock=wall_clock)

    message = str(refused.value)
    assert str(ledger_path) in message
    assert f"version {LATEST + 6}" in message
    assert f"latest {LATEST}" in message


def test_read_only_refuses_a_ledger_it_cannot_migrate(ledger_path):
    ledger_path.parent.mkdir(parents=True)
    duckdb.connect(str(ledger_path)).close()

    with pytest.raises(LedgerError, match="older than .* open it for writing once"):
        Ledger.open(ledger_path, read_only=True)
