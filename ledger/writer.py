"""The run's ledger: buffered, validated appends flushed in one transaction per commit.

DuckDB lets one process hold the file; a second can neither write nor read it meanwhile, so a
running agent answers its own queries through `Ledger.query`, and publishes a read-only copy of
its committed rows for other processes with `publish_snapshot()`. Rows become durable at
`commit()`; a process killed between commits loses only its uncommitted rows, and resumes from
`last_ts`.
"""

from __future__ import annotations

import contextlib
import json
import math
import numbers
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import duckdb
import numpy as np
import numpy.ma  # noqa: F401 - pyarrow imports it at its first numpy conversion: pay at import, not mid-run
import pyarrow as pa

from core.errors import LedgerError
from ledger.schema import ALLOWED_VALUES, check_version, migrate, schema_version
from ledger.views import create_views

_MANAGED = frozenset({"run_id", "wall_ts"})
_ARROW_TYPES = {
    "VARCHAR": pa.string(),
    "JSON": pa.string(),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us"),
}
# Python types accepted as-is per column type; anything else goes through `_normalize`.
_EXACT: dict[str, tuple[type, ...]] = {
    "VARCHAR": (str,),
    "DOUBLE": (float, int),
    "BIGINT": (int,),
    "INTEGER": (int,),
    "BOOLEAN": (bool,),
    "TIMESTAMP": (datetime,),
}

_COPY_CHUNK = 1 << 20  # bytes a snapshot copy reads at a time
_FEW_ROWS = 16  # up to this many rows per table a VALUES insert beats an Arrow insert (~3x)
_INT_BOUNDS = {"BIGINT": (-(2**63), 2**63 - 1), "INTEGER": (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class _TableSpec:
    """What a caller may write to one table, read from the migrated file itself."""

    name: str
    types: dict[str, str]  # writable column -> DuckDB type
    arrow_schema: pa.Schema
    insert_sql: str
    values_head: str  # INSERT ... VALUES for a few rows: cheaper than registering an Arrow table
    values_row: str


def sql_string(text: str) -> str:
    """An SQL string literal holding `text` (for what cannot be a parameter, like ATTACH's path)."""
    return "'" + text.replace("'", "''") + "'"


def snapshot_path(ledger_path: str | Path) -> Path:
    """Where a ledger's published snapshot lives: `ledger.snapshot.duckdb` beside `ledger.duckdb`."""
    path = Path(ledger_path)
    return path.with_name(f"{path.stem}.snapshot{path.suffix}")


def _table_specs(con: duckdb.DuckDBPyConnection) -> dict[str, _TableSpec]:
    rows = con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name <> 'schema_migrations' ORDER BY table_name, column_index"
    ).fetchall()
    columns: dict[str, dict[str, str]] = {}
    for table, column, data_type in rows:
        columns.setdefault(table, {})[column] = data_type
    specs = {}
    for table, types in columns.items():
        writable = {c: t for c, t in types.items() if c not in _MANAGED}
        arrow_schema = pa.schema(
            [(c, _ARROW_TYPES[t]) for c, t in writable.items()] + [("wall_ts", pa.float64())]
        )
        names = ", ".join(f'"{c}"' for c in writable)
        insert_sql = (
            f'INSERT INTO "{table}" (run_id, wall_ts, {names}) '
            f"SELECT $run_id, make_timestamp(CAST(round(wall_ts * 1e6) AS BIGINT)), {names} "
            "FROM _ledger_buffer"
        )
        values_head = f'INSERT INTO "{table}" (run_id, wall_ts, {names}) VALUES '
        values_row = "(?, make_timestamp(CAST(round(? * 1e6) AS BIGINT)), " + ", ".join(
            "?" for _ in writable) + ")"
        specs[table] = _TableSpec(table, writable, arrow_schema, insert_sql, values_head, values_row)
    return specs


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity: write them as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    """Serialize numpy scalars and arrays, and other numbers, as plain JSON numbers."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(value: Any) -> str:
    """The canonical JSON text the ledger stores: sorted keys, non-finite floats as null."""
    try:
        return json.dumps(value, sort_keys=True, default=_json_default, allow_nan=False)
    except ValueError:
        plain = json.loads(json.dumps(value, default=_json_default))
        return json.dumps(_finite(plain), sort_keys=True)


def _json_cell(table: str, column: str, value: Any) -> str:
    try:
        return to_json(value)
    except TypeError as exc:
        raise LedgerError(f"ledger column {table}.{column} holds JSON; {exc}") from exc


def _normalize(table: str, column: str, db_type: str, value: Any) -> Any:
    """Accept numpy scalars and other numbers where safe; reject everything else by name."""
    is_bool = isinstance(value, (bool, np.bool_))
    if db_type == "DOUBLE" and isinstance(value, numbers.Real) and not is_bool:
        return float(value)
    if db_type in ("BIGINT", "INTEGER") and isinstance(value, numbers.Integral) and not is_bool:
        return int(value)
    if db_type == "BOOLEAN" and is_bool:
        return bool(value)
    raise LedgerError(
        f"ledger column {table}.{column} is {db_type}; got {type(value).__name__} {value!r}"
    )


def _check_domain(table: str, column: str, db_type: str, value: Any) -> None:
    """Integers must fit their column; closed vocabularies must hold the value."""
    bounds = _INT_BOUNDS.get(db_type)
    if bounds is not None and not bounds[0] <= value <= bounds[1]:
        raise LedgerError(f"ledger column {table}.{column} is {db_type}; {value} is out of range")
    allowed = ALLOWED_VALUES.get((table, column))
    if allowed is not None and value not in allowed:
        raise LedgerError(
            f"ledger column {table}.{column} got {value!r}; allowed: {sorted(allowed)}"
        )


def _joined(spec: _TableSpec, batches: list[dict[str, Any]]) -> pa.Table:
    """Column batches (numpy arrays, or lists of one repeated value) as one Arrow table."""
    arrays = []
    for field in spec.arrow_schema:
        parts = [b[field.name] for b in batches]
        if all(isinstance(p, np.ndarray) for p in parts):
            arrays.append(pa.array(np.concatenate(parts), type=field.type))
        else:
            arrays.append(pa.array([v for p in parts for v in p], type=field.type))
    return pa.Table.from_arrays(arrays, schema=spec.arrow_schema)


class Ledger:
    """One run's DuckDB ledger: `append` rows, `commit` them atomically, `query` facts back."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        path: str,
        run_id: str | None,
        wall_clock: Callable[[], float],
        read_only: bool,
    ) -> None:
        self._con = con
        self.path = path
        self.run_id = run_id
        self.read_only = read_only
        self._wall_clock = wall_clock
        self._specs = _table_specs(con)
        self._buffers: dict[str, list[dict[str, Any]]] = {}
        self._views = False
        self._batches: dict[str, list[dict[str, Any]]] = {}  # rows given column by column (append_columns)
        self._pending = 0
        self._closed = False
        self._file: int | None = None  # the ledger file, read by publish_snapshot

    @classmethod
    def open(
        cls,
        path: str | Path,
        run_id: str | None = None,
        *,
        read_only: bool = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> Ledger:
        """Open (creating and migrating) a ledger file; `":memory:"` gives a throwaway one.

        Writing needs a `run_id`. `read_only` never migrates, so it refuses an older ledger too.
        """
        path = str(path)
        if not read_only and run_id is None:
            raise LedgerError(f"ledger {path}: a run_id is needed to write")
        if read_only and not Path(path).is_file():
            raise LedgerError(f"ledger {path} does not exist")
        if not read_only and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(path, read_only=read_only)
        except duckdb.Error as exc:
            raise LedgerError(f"cannot open ledger {path}: {exc}") from exc
        try:
            if read_only:
                check_version(schema_version(con), path, accept_older=False)
            else:
                migrate(con, path, wall_clock)
        except BaseException:
            con.close()
            raise
        return cls(con, path, run_id, wall_clock, read_only)

    # -- writing -------------------------------------------------------------------------

    def append(self, table: str, row: Mapping[str, Any]) -> None:
        """Buffer one row for `table`; missing columns are NULL. Durable after `commit()`."""
        spec = self._specs.get(table)
        if spec is None:
            known = ", ".join(sorted(self._specs))
            raise LedgerError(f"unknown ledger table {table!r}; known: {known}")
        if self.read_only:
            raise LedgerError(f"ledger {self.path} is open read-only")
        types = spec.types
        record = {}
        for column, value in row.items():
            db_type = types.get(column)
            if db_type is None:
                raise LedgerError(self._bad_column(spec, column))
            if value is not None:
                if db_type == "JSON":
                    value = _json_cell(table, column, value)
                elif type(value) not in _EXACT[db_type]:
                    value = _normalize(table, column, db_type, value)
                if db_type in _INT_BOUNDS or (table, column) in ALLOWED_VALUES:
                    _check_domain(table, column, db_type, value)
            record[column] = value
        record["wall_ts"] = self._wall_clock()
        self._buffers.setdefault(table, []).append(record)
        self._pending += 1

    def append_columns(self, table: str, columns: Mapping[str, Any], rows: int) -> None:
        """Buffer ``rows`` rows given column by column: a numpy array of ``rows`` numbers, a list of
        ``rows`` texts, or one value every row shares. Numeric and text columns only; missing
        columns are NULL."""
        spec = self._specs.get(table)
        if spec is None or self.read_only:
            self.append(table, {})  # the same refusal, by the same words
            return
        unknown = set(columns) - set(spec.types)
        if unknown:
            raise LedgerError(self._bad_column(spec, sorted(unknown)[0]))
        batch: dict[str, np.ndarray | list[Any]] = {}
        for column, db_type in spec.types.items():
            value = columns.get(column)
            if isinstance(value, np.ndarray):
                if db_type not in ("DOUBLE", "BIGINT", "INTEGER") or len(value) != rows:
                    raise LedgerError(f"ledger column {table}.{column} is {db_type}; got {len(value)} values "
                                      f"of {value.dtype} for {rows} rows")
                batch[column] = value
                continue
            if isinstance(value, list):
                if db_type != "VARCHAR" or len(value) != rows or not all(isinstance(v, str) for v in value):
                    raise LedgerError(f"ledger column {table}.{column} is {db_type}; got a list of {len(value)} "
                                      f"for {rows} rows")
                if (table, column) in ALLOWED_VALUES:
                    for v in set(value):
                        _check_domain(table, column, db_type, v)
                batch[column] = value
                continue
            if value is not None:
                if type(value) not in _EXACT.get(db_type, ()):
                    value = _normalize(table, column, db_type, value)
                _check_domain(table, column, db_type, value)
            batch[column] = [value] * rows
        batch["wall_ts"] = np.full(rows, self._wall_clock())
        self._batches.setdefault(table, []).append(batch)
        self._pending += rows

    def _with_views(self) -> None:
        """The named views, made at the first query: a replay that only writes never needs them."""
        if not self._views:
            create_views(self._con)
            self._views = True

    def _bad_column(self, spec: _TableSpec, column: str) -> str:
        if column in _MANAGED:
            return f"ledger column {spec.name}.{column} is filled by the ledger, not the caller"
        known = ", ".join(spec.types)
        return f"ledger table {spec.name!r} has no column {column!r}; columns: {known}"

    def pending(self) -> int:
        """Rows appended since the last commit."""
        return self._pending

    def commit(self) -> None:
        """Write every buffered row of every table in one transaction, then clear the buffers.

        On failure nothing is written and the buffers are kept, so the commit can be retried.
        """
        if not self._pending:
            return
        con = self._con
        try:
            con.begin()
            for table, rows in self._buffers.items():
                spec = self._specs[table]
                if len(rows) <= _FEW_ROWS:
                    self._insert_values(spec, rows)
                else:
                    self._insert_arrow(spec, pa.Table.from_pylist(rows, schema=spec.arrow_schema))
            for table, batches in self._batches.items():
                self._insert_arrow(self._specs[table], _joined(self._specs[table], batches))
            con.commit()
        except (duckdb.Error, pa.ArrowException, OverflowError) as exc:
            self._rollback()
            raise LedgerError(
                f"ledger {self.path}: commit of {self._pending} rows failed: {exc}"
            ) from exc
        self._buffers.clear()
        self._batches.clear()
        self._pending = 0

    def _insert_arrow(self, spec: _TableSpec, buffer: pa.Table) -> None:
        self._con.register("_ledger_buffer", buffer)
        try:
            self._con.execute(spec.insert_sql, {"run_id": self.run_id})
        finally:
            self._con.unregister("_ledger_buffer")

    def _insert_values(self, spec: _TableSpec, rows: list[dict[str, Any]]) -> None:
        params: list[Any] = []
        for row in rows:
            params += [self.run_id, row["wall_ts"], *(row.get(c) for c in spec.types)]
        sql = spec.values_head + ", ".join(spec.values_row for _ in rows)
        self._con.execute(sql, params)

    def _rollback(self) -> None:
        with contextlib.suppress(duckdb.Error):  # no transaction is open when begin() failed
            self._con.rollback()

    def publish_snapshot(self) -> Path:
        """Copy the committed rows to `snapshot_path(self.path)`, for readers while this process
        holds the ledger; return that path. Rows appended but not committed are not in it.

        CHECKPOINT folds the write-ahead log into the file; the file is copied to a hidden name in
        the same folder and renamed over the previous snapshot, so a reader opens the old snapshot
        or the new one, never half of one. Its modification time is the wall clock at publishing,
        which readers report. Call it from the thread that commits, between commits.
        """
        if self.read_only or self.path == ":memory:":
            raise LedgerError(f"ledger {self.path}: only a ledger file open for writing publishes a snapshot")
        target = snapshot_path(self.path)
        partial = target.with_name(f".{target.name}.partial")
        try:
            self._con.execute("CHECKPOINT")
            if self._file is None:
                # Kept open until close(): closing any descriptor of a file drops every POSIX lock
                # this process holds on it, DuckDB's write lock included.
                self._file = os.open(self.path, os.O_RDONLY)
            with open(partial, "wb") as copy:
                size, offset = os.fstat(self._file).st_size, 0
                while offset < size:
                    chunk = os.pread(self._file, min(_COPY_CHUNK, size - offset), offset)
                    if not chunk:
                        break
                    copy.write(chunk)
                    offset += len(chunk)
            published = self._wall_clock()
            os.utime(partial, (published, published))
            os.replace(partial, target)
        except (duckdb.Error, OSError) as exc:
            with contextlib.suppress(OSError):
                partial.unlink()
            raise LedgerError(f"ledger {self.path}: publishing the snapshot {target} failed: {exc}") from exc
        return target

    # -- reading -------------------------------------------------------------------------

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> list[tuple]:
        """Rows of a query over committed rows (tables and views)."""
        self._with_views()
        try:
            return self._con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            raise LedgerError(f"ledger {self.path}: query failed: {exc}") from exc

    def query_arrow(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pa.Table:
        """A query's whole result as an Arrow table."""
        self._with_views()
        try:
            return self._con.sql(sql, params=params).to_arrow_table()
        except duckdb.Error as exc:
            raise LedgerError(f"ledger {self.path}: query failed: {exc}") from exc

    def last_ts(self, agent: str) -> int | None:
        """Simulated ms of this run's last committed equity mark for `agent`: resume after it."""
        rows = self.query(
            "SELECT max(ts) FROM equity WHERE run_id = ? AND agent = ?", [self.run_id, agent]
        )
        return rows[0][0]

    # -- lifetime ------------------------------------------------------------------------

    def close(self) -> None:
        """Commit what is pending, then release the file. Safe to call twice."""
        if self._closed:
            return
        try:
            if not self.read_only:
                self.commit()
        finally:
            self._closed = True
            self._con.close()
            if self._file is not None:  # after DuckDB has let go of the file, never before
                os.close(self._file)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Commit on a clean exit; on an exception drop the uncommitted rows, as a crash would."""
        if exc_type is not None:
            self._buffers.clear()
            self._batches.clear()
            self._pending = 0
        self.close()
