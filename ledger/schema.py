"""The ledger's tables, as numbered migrations applied in order.

Every table is append-only. `run_id` and `wall_ts` (wall clock when written, naive UTC) are
filled by the writer; every other `ts` column is BIGINT milliseconds UTC of *simulated* time.
A migration's SQL is frozen once released: change the schema by adding a migration.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from core.errors import LedgerError
from core.records import ORDER_KINDS, ORDER_STATUSES, RECONCILE_ACTIONS, RECONCILE_ITEMS


@dataclass(frozen=True)
class Migration:
    """One schema step: its version, what it does, and the SQL that does it."""

    version: int
    summary: str
    sql: str


_V1_BASE_TABLES = """
CREATE TABLE runs (
    run_id VARCHAR, wall_ts TIMESTAMP, agent VARCHAR, market VARCHAR, exchange VARCHAR,
    seed BIGINT, config JSON, data_fingerprint VARCHAR);
CREATE TABLE orders (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, order_id VARCHAR,
    symbol VARCHAR, side VARCHAR, qty DOUBLE, order_type VARCHAR, intent VARCHAR,
    leverage DOUBLE, mode VARCHAR, state VARCHAR, reason VARCHAR);
CREATE TABLE fills (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, order_id VARCHAR,
    trade_id VARCHAR, symbol VARCHAR, side VARCHAR, qty DOUBLE, price DOUBLE, fee DOUBLE,
    reason VARCHAR);
CREATE TABLE trades (
    run_id VARCHAR, wall_ts TIMESTAMP, trade_id VARCHAR, agent VARCHAR, symbol VARCHAR,
    side VARCHAR, entry_ts BIGINT, exit_ts BIGINT, entry_price DOUBLE, exit_price DOUBLE,
    qty DOUBLE, leverage DOUBLE, fees DOUBLE, funding DOUBLE, pnl DOUBLE, mode VARCHAR,
    state VARCHAR, exit_reason VARCHAR, risk_fraction DOUBLE);
CREATE TABLE funding (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, trade_id VARCHAR,
    symbol VARCHAR, rate DOUBLE, mark_price DOUBLE, position_qty DOUBLE, amount DOUBLE);
CREATE TABLE equity (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, equity DOUBLE, cash DOUBLE,
    unrealized DOUBLE, open_positions INTEGER, state VARCHAR);
CREATE TABLE transitions (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, source VARCHAR, dest VARCHAR,
    trigger VARCHAR, reason VARCHAR, evidence JSON);
CREATE TABLE adjustments (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, kind VARCHAR, before JSON,
    after JSON, reason VARCHAR, evidence JSON);
CREATE TABLE models (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, version VARCHAR, path VARCHAR,
    sha256 VARCHAR, train_start BIGINT, train_end BIGINT, metrics JSON, status VARCHAR);
CREATE TABLE decisions (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, symbol VARCHAR,
    model_version VARCHAR, probability DOUBLE, threshold DOUBLE, passed BOOLEAN, mode VARCHAR);
CREATE TABLE data_issues (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, symbol VARCHAR, kind VARCHAR, detail VARCHAR);
CREATE TABLE notifications (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, channel VARCHAR, kind VARCHAR,
    message VARCHAR, delivered BOOLEAN, error VARCHAR);
"""

# Every resolved prediction of the live model version, one row per symbol and bar: the ensemble's
# probability, each member's, and the outcome once the label's horizon has closed. ``ts`` is the
# close of the bar the prediction was made at; models and decisions join on version and ts.
_V2_PREDICTIONS = """
CREATE TABLE predictions (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, symbol VARCHAR,
    model_version VARCHAR, probability DOUBLE, p_attention_mlp DOUBLE, p_lstm DOUBLE, p_cnn DOUBLE,
    p_transformer DOUBLE, outcome DOUBLE);
"""

# The roles the machine's YAML gives its states (`tags`), one row per (state, tag), written at run
# start; views read roles from here instead of naming states. `runs.mode` is replay, paper or live.
# A ledger written before this migration recorded no roles: its machines gave them to the states
# named in _V2_STATE_ROLES, so the migration infers its rows from the states its transitions name.
# Both texts are frozen with migration 3.
_V3_STATE_TAGS_AND_MODE = """
CREATE TABLE state_tags (
    run_id VARCHAR, wall_ts TIMESTAMP, agent VARCHAR, state VARCHAR, tag VARCHAR);
ALTER TABLE runs ADD COLUMN mode VARCHAR;
INSERT INTO state_tags {implied};
"""
_V2_STATE_ROLES = """
SELECT run_id, min(wall_ts) AS wall_ts, agent, state, tag
FROM (SELECT run_id, wall_ts, agent, source AS state FROM {transitions}
      UNION ALL SELECT run_id, wall_ts, agent, dest AS state FROM {transitions})
JOIN (VALUES ('circuit_broken', 'breaker'), ('halted', 'breaker'), ('halted', 'halt'),
             ('exploring', 'exploring')) AS roles(state, tag) USING (state)
GROUP BY run_id, agent, state, tag
"""

# Live trading (mode=live). `order_updates`: what became of each order on the exchange, one row per
# change (sent, partially_filled, filled, canceled, expired, rejected, not_sent, found after a restart,
# unknown while unanswered); `kind` is entry, exit or a protective stop_loss / take_profit order, whose
# `order_id` is the trade it guards. `reconciliation`: each difference between the agent's view and the
# exchange's, both sides as JSON, and what was done (the exchange is the truth). `exchange_replies`:
# each answer of a live exchange with its account state, which a restarted run's fast-forward replays.
_V4_LIVE = """
CREATE TABLE order_updates (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, order_id VARCHAR, client_order_id VARCHAR,
    exchange_order_id VARCHAR, symbol VARCHAR, kind VARCHAR, status VARCHAR, side VARCHAR, qty DOUBLE,
    filled_qty DOUBLE, price DOUBLE, reason VARCHAR);
CREATE TABLE reconciliation (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, symbol VARCHAR, item VARCHAR,
    agent_view JSON, exchange_view JSON, action VARCHAR, reason VARCHAR);
CREATE TABLE exchange_replies (
    run_id VARCHAR, wall_ts TIMESTAMP, ts BIGINT, agent VARCHAR, bar_ts BIGINT, call VARCHAR, reply JSON);
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "base tables", _V1_BASE_TABLES),
    Migration(2, "resolved model predictions", _V2_PREDICTIONS),
    Migration(3, "state roles (state_tags) and the run's mode",
              _V3_STATE_TAGS_AND_MODE.format(implied=_V2_STATE_ROLES.format(transitions="transitions"))),
    Migration(4, "live trading: order lifecycle, reconciliation, exchange replies", _V4_LIVE),
)

#: Closed vocabularies, checked when a row is appended (open ones, like adjustment kinds, are not).
ALLOWED_VALUES: dict[tuple[str, str], frozenset[str]] = {
    ("orders", "side"): frozenset({"buy", "sell"}),
    ("orders", "order_type"): frozenset({"market", "stop_loss", "take_profit", "liquidation"}),
    ("orders", "intent"): frozenset({"entry", "exit"}),
    ("fills", "side"): frozenset({"buy", "sell"}),
    ("trades", "side"): frozenset({"long", "short"}),
    ("trades", "mode"): frozenset({"normal", "window", "epsilon", "explore"}),
    ("models", "status"): frozenset({"champion", "rejected", "retired"}),
    ("runs", "mode"): frozenset({"replay", "paper", "live"}),
    ("order_updates", "kind"): frozenset(ORDER_KINDS),
    ("order_updates", "status"): frozenset(ORDER_STATUSES),
    ("order_updates", "side"): frozenset({"buy", "sell"}),
    ("reconciliation", "item"): frozenset(RECONCILE_ITEMS),
    ("reconciliation", "action"): frozenset(RECONCILE_ACTIONS),
    ("exchange_replies", "call"): frozenset({"bar", "dispatch"}),
}

_VERSIONS_TABLE = "schema_migrations"


def schema_version(con: duckdb.DuckDBPyConnection, catalog: str | None = None) -> int:
    """The highest migration recorded in a ledger (0 for an empty file)."""
    catalog = catalog or con.execute("SELECT current_database()").fetchone()[0]
    found = con.execute(
        "SELECT count(*) FROM duckdb_tables() "
        "WHERE database_name = ? AND schema_name = 'main' AND table_name = ?",
        [catalog, _VERSIONS_TABLE],
    ).fetchone()[0]
    if not found:
        return 0
    version = con.execute(f'SELECT max(version) FROM "{catalog}".main.{_VERSIONS_TABLE}')
    return version.fetchone()[0] or 0


def check_version(
    version: int,
    path: str | Path,
    *,
    accept_older: bool,
    migrations: Sequence[Migration] = MIGRATIONS,
) -> None:
    """Refuse a ledger from a newer Ratchet, and an older one where it cannot be migrated."""
    latest = migrations[-1].version
    if version > latest:
        raise LedgerError(
            f"ledger {path} is at schema version {version}, newer than this Ratchet knows "
            f"(latest {latest}); upgrade Ratchet to open it"
        )
    if version < latest and not accept_older:
        raise LedgerError(
            f"ledger {path} is at schema version {version}, older than {latest}; "
            "open it for writing once to migrate it"
        )


def migrate(
    con: duckdb.DuckDBPyConnection,
    path: str | Path,
    wall_clock: Callable[[], float],
    migrations: Sequence[Migration] = MIGRATIONS,
) -> list[int]:
    """Apply the migrations a ledger lacks, each in its own transaction; return their versions."""
    current = schema_version(con)
    check_version(current, path, accept_older=True, migrations=migrations)
    if current == 0:
        con.execute(
            f"CREATE TABLE IF NOT EXISTS {_VERSIONS_TABLE} "
            "(version INTEGER, applied_wall TIMESTAMP)"
        )
    pending = [step for step in migrations if step.version > current]
    # an existing ledger moves one migration per transaction; a new one is made in one (a replay's
    # ledger is new, and every transaction is a sync to disk)
    batches = [pending] if current == 0 else [[step] for step in pending]
    for batch in batches:
        con.begin()
        try:
            for step in batch:
                con.execute(step.sql)
                con.execute(
                    f"INSERT INTO {_VERSIONS_TABLE} VALUES (?, ?)",
                    [step.version, datetime.fromtimestamp(wall_clock(), UTC).replace(tzinfo=None)],
                )
            con.commit()
        except duckdb.Error as exc:
            con.rollback()
            raise LedgerError(f"ledger {path}: migration {step.version} failed: {exc}") from exc
    return [step.version for step in pending]


def implied_rows(table: str, catalog: str, tables: Collection[str]) -> str | None:
    """A SELECT of the rows `table` holds once an older ledger is migrated, or None if it holds none.

    For reading a ledger without migrating it: `catalog` is where it is attached, `tables` what it has.
    """
    if table == "state_tags" and "transitions" in tables:
        return _V2_STATE_ROLES.format(transitions=f"{catalog}.main.transitions")
    return None


def create_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the latest empty tables in the connection's current catalog (no version table)."""
    for step in MIGRATIONS:
        con.execute(step.sql)
