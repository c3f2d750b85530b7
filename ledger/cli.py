"""`ratchet-ledger`: run a named view or SQL over one or many run ledgers (a sweep).

Each ledger is attached read-only; every base table becomes a TEMP view that unions it across
the ledgers by column name, with a `run_dir` column saying which run a row came from, and the
named views are built on top, grouped by `run_dir, run_id`.

It never writes: a query is one SELECT (DuckDB's parser says what a statement is), the ledgers
are attached READ_ONLY, and once they are, the connection may open no file at all (no COPY, file
readers, extensions or ATTACH) and its settings are locked. A ledger that a running agent
holds is read from the snapshot the agent publishes beside it (`Ledger.publish_snapshot`).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from core.errors import LedgerError
from ledger.overrides import Swept, sweep_overrides, swept
from ledger.schema import check_version, create_schema, implied_rows, schema_version
from ledger.views import VIEW_NAMES, VIEWS, create_views
from ledger.writer import snapshot_path, sql_string

LEDGER_FILE = "ledger.duckdb"
_SCHEMA_CATALOG = "ratchet_schema"
LOCKED = "Could not set lock on file"  # DuckDB's words when another process holds the file
# What DuckDB's error says -> what is wrong with the file, in a user's words.
_UNREADABLE = (
    ("Could not read enough bytes", "it is cut short"),
    ("not a valid DuckDB database file", "it is not a DuckDB database"),
    ("Corrupt database file", "it is corrupt"),
)


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Order run folders 0, 1, …, 10 rather than 0, 1, 10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in path.parts)


def _nested_ledgers(folder: Path) -> list[Path]:
    """Every ledger under a sweep folder; a folder it cannot read is an error, not skipped."""

    def refuse(error: OSError) -> None:
        raise LedgerError(f"cannot read {error.filename}: {error.strerror}")

    found = [Path(d) / LEDGER_FILE for d, _, files in os.walk(folder, onerror=refuse) if LEDGER_FILE in files]
    return sorted(found, key=_natural_key)


def find_ledgers(run_dirs: Sequence[str | Path]) -> list[Path]:
    """The ledger files of the given run folders; a sweep folder expands to every run under it."""
    try:
        return _find_ledgers(run_dirs)
    except PermissionError as exc:
        raise LedgerError(f"cannot read {exc.filename}: permission denied") from exc


def _find_ledgers(run_dirs: Sequence[str | Path]) -> list[Path]:
    found: list[Path] = []
    for run_dir in map(Path, run_dirs):
        if run_dir.is_file():
            found.append(run_dir)
        elif (run_dir / LEDGER_FILE).is_file():
            found.append(run_dir / LEDGER_FILE)
        elif run_dir.is_dir():
            nested = _nested_ledgers(run_dir)
            if not nested:
                raise LedgerError(f"no {LEDGER_FILE} in {run_dir} or any folder under it")
            found.extend(nested)
        else:
            raise LedgerError(f"run folder {run_dir} does not exist")
    seen: set[Path] = set()
    unique = []
    for path in found:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            unique.append(path)
    return unique


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'",
        [catalog],
    ).fetchall()
    return {name for (name,) in rows}


def _wall(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _unreadable(path: Path, exc: duckdb.Error) -> LedgerError:
    """The one-line error for a ledger file DuckDB cannot read."""
    if not os.access(path, os.R_OK):
        return LedgerError(f"cannot read ledger {path}: permission denied")
    text = str(exc)
    why = next((reason for words, reason in _UNREADABLE if words in text), _first_line(exc))
    return LedgerError(f"{path} is not a readable ledger: {why}")


def _attach(
    con: duckdb.DuckDBPyConnection, alias: str, path: Path, notice: Callable[[str], None] | None
) -> Path:
    """Attach a ledger read-only, or its snapshot while a running agent holds it; return which."""
    try:
        con.execute(f"ATTACH {sql_string(str(path))} AS {alias} (READ_ONLY)")
        return path
    except duckdb.Error as exc:
        if LOCKED not in str(exc):
            raise _unreadable(path, exc) from exc
    snapshot = snapshot_path(path)
    try:
        published = snapshot.stat().st_mtime
    except FileNotFoundError:
        raise LedgerError(
            f"ledger {path} is in use by a running agent and it has published no snapshot "
            f"({snapshot.name}); paper and live agents publish one at each commit, a replay does not: "
            "query it when the replay has ended"
        ) from None
    try:
        con.execute(f"ATTACH {sql_string(str(snapshot))} AS {alias} (READ_ONLY)")
    except duckdb.Error as exc:
        raise _unreadable(snapshot, exc) from exc
    if notice is not None:
        notice(f"ledger {path} is in use by a running agent; reading its snapshot of {_wall(published)}")
    return snapshot


def _rows_of(table: str, alias: str, tables: set[str]) -> str | None:
    """A ledger's rows of `table`: its own, or those an older ledger implies; None if neither."""
    if table in tables:
        return f"{alias}.main.{table}"
    implied = implied_rows(table, alias, tables)
    return None if implied is None else f"({implied})"


def connect_sweep(
    ledgers: Sequence[Path], *, notice: Callable[[str], None] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose base tables union the ledgers and whose views sit on them.

    It reads the ledgers and touches no other file. A ledger held by a running agent is read from
    its snapshot, and `notice` is told so in one line.
    """
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH ':memory:' AS {_SCHEMA_CATALOG}")
        con.execute(f"USE {_SCHEMA_CATALOG}")
        create_schema(con)  # the current columns and types, even when every ledger is older
        con.execute("USE memory")
        attached: list[tuple[str, str, set[str]]] = []
        for index, path in enumerate(ledgers):
            alias = f"ledger_{index}"
            source = _attach(con, alias, path, notice)
            try:
                version, tables = schema_version(con, alias), _tables(con, alias)
            except duckdb.Error as exc:
                raise _unreadable(source, exc) from exc
            # an older ledger reads fine: the union adds its missing columns as NULL, and the rows
            # a migration would add to its missing tables
            check_version(version, source, accept_older=True)
            attached.append((alias, str(path.parent), tables))
        for table in sorted(_tables(con, _SCHEMA_CATALOG)):
            parts = [f"SELECT NULL::VARCHAR AS run_dir, * FROM {_SCHEMA_CATALOG}.main.{table}"]
            for alias, run_dir, tables in attached:
                rows = _rows_of(table, alias, tables)
                if rows is not None:
                    parts.append(f"SELECT {sql_string(run_dir)} AS run_dir, * FROM {rows}")
            con.execute(f"CREATE TEMP VIEW {table} AS {' UNION ALL BY NAME '.join(parts)}")
        create_views(con, run_keys=("run_dir", "run_id"))
        # Only now, as attaching opens the files. DuckDB still lets a connection without external
        # access reopen the files it had attached (a DETACH, then an ATTACH for writing), so the
        # local file system goes too; the attached ledgers read on through their open handles.
        con.execute("SET enable_external_access = false")
        con.execute("SET disabled_filesystems = 'LocalFileSystem'")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _utc_text(value: datetime | date) -> str:
    """A time as ISO 8601 text in UTC (`2023-01-01T00:00:00Z`); a view's TIMESTAMP is UTC."""
    if not isinstance(value, datetime):
        return value.isoformat()
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds" if value.microsecond else "seconds") + "Z"


def json_value(value: Any) -> Any:
    """A value JSON can hold: NaN and infinities as null (CSV leaves them empty), times as UTC ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value) if value.is_finite() else None
    if isinstance(value, (datetime, date)):
        return _utc_text(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return value


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def format_table(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    """A plain aligned text table; numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    numeric = [
        all(isinstance(row[i], (int, float, Decimal)) or row[i] is None for row in rows)
        for i in range(len(columns))
    ]

    def line(values: Sequence[str]) -> str:
        cells = zip(values, widths, numeric, strict=True)
        padded = [v.rjust(w) if num else v.ljust(w) for v, w, num in cells]
        return "  ".join(padded).rstrip()

    out = [line(columns), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in cells]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out) + "\n"


def _csv_field(value: Any) -> Any:
    """What JSON holds as null (NULL, NaN, infinities) is an empty field; times as JSON writes them."""
    plain = json_value(value) if isinstance(value, (float, Decimal, datetime, date)) else value
    return "" if plain is None else plain


def format_csv(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_csv_field(v) for v in row] for row in rows])
    return buffer.getvalue()


def format_json(columns: Sequence[str], rows: Sequence[tuple], json_columns: set[str]) -> str:
    """A JSON array of objects; JSON columns are embedded as values, not strings."""
    records = [
        {
            c: json_value(json.loads(v)) if c in json_columns and v is not None else json_value(v)
            for c, v in zip(columns, row, strict=True)
        }
        for row in rows
    ]
    return json.dumps(records, indent=2, allow_nan=False) + "\n"


_EPILOG = """\
Times: the base tables hold simulated times as epoch milliseconds (UTC); the named views show them
as UTC timestamps (`epoch_ms(ts)` turns one back). Ratios are ratios (0.25 is a quarter).
No value (NULL, NaN, infinity) is null in JSON and an empty field in CSV.

Over several runs (a sweep folder), every row has a `run_dir`; a view adds a column per swept
override (a key whose value differs between the runs, from each run's .hydra/overrides.yaml),
and SQL can join the table `overrides (run_dir, key, value)`.

examples:
  ratchet-ledger runs/<run> --list-views
  ratchet-ledger runs/<run> --view kelly --format csv
  ratchet-ledger runs/multirun/<date>/<time> --view summary
  ratchet-ledger runs/<run> --sql "SELECT mode, count(*), avg(pnl) FROM trades GROUP BY mode"
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratchet-ledger", description="Query run ledgers by named view or SQL.", epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="a run folder holding ledger.duckdb, or a sweep folder above several")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--view", metavar="NAME", help="a named view (see --list-views)")
    action.add_argument("--sql", metavar="QUERY", help="SQL over base tables and views")
    action.add_argument("--list-views", action="store_true", help="list the named views")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def _statement(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.Statement:
    """The query as one SELECT statement; anything else is refused before it runs."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise LedgerError(f"SQL error: {_first_line(exc)}") from exc
    if not statements:
        raise LedgerError("the query is empty or only a comment; give one SELECT, e.g. --sql 'SELECT * FROM stats'")
    other = next((s.type for s in statements if s.type != duckdb.StatementType.SELECT), None)
    if other == duckdb.StatementType.MULTI:
        raise LedgerError("DuckDB runs this PIVOT as several statements; list its values (ON column IN (...))")
    if other is not None:
        raise LedgerError(f"the ledger is read-only: a query is one SELECT, not {other.name}")
    if len(statements) > 1:
        raise LedgerError(f"a query is one SELECT; this one holds {len(statements)} statements")
    return statements[0]


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[tuple], list[tuple]]:
    """The description and rows of one read-only query; its errors as one-line LedgerErrors."""
    statement = _statement(con, sql)
    try:
        result = con.execute(statement)
        return result.description, result.fetchall()
    except duckdb.PermissionException as exc:
        raise LedgerError("a query reads the ledgers and no other file") from exc
    except duckdb.Error as exc:
        damaged = _damaged_ledger(con, exc)
        if damaged is not None:
            raise _unreadable(damaged, exc) from exc
        raise LedgerError(f"SQL error: {_first_line(exc)}") from exc


def _damaged_ledger(con: duckdb.DuckDBPyConnection, exc: duckdb.Error) -> Path | None:
    """The ledger a query failed to read, when the error says so (by its path, or the only one)."""
    attached = [Path(p) for (p,) in con.execute(
        "SELECT path FROM duckdb_databases() WHERE path IS NOT NULL").fetchall()]
    text = str(exc)
    named = next((path for path in attached if str(path) in text), None)
    if named is None and len(attached) == 1 and any(words in text for words, _ in _UNREADABLE):
        return attached[0]
    return named


def _create_overrides(con: duckdb.DuckDBPyConnection, told: dict[str, dict[str, str]]) -> None:
    """The table `overrides (run_dir, key, value)`: each run's saved Hydra overrides, for SQL to join."""
    con.execute("CREATE TEMP TABLE overrides (run_dir VARCHAR, key VARCHAR, value VARCHAR)")
    rows = [(run_dir, key, value) for run_dir, pairs in told.items() for key, value in pairs.items()]
    if rows:
        con.executemany("INSERT INTO overrides VALUES (?, ?, ?)", rows)


def _with_swept(description: list[tuple], rows: list[tuple],
                told: dict[str, dict[str, str]]) -> tuple[list[tuple], list[tuple]]:
    """A view's rows with a column per swept override after `run_dir`, saying which value each run ran."""
    names = [d[0] for d in description]
    columns: list[Swept] = swept(list(told.values()), taken=names)
    if not columns:
        return description, rows
    at = names.index("run_dir") + 1
    added = [(c.column, "VARCHAR", None, None, None, None, None) for c in columns]
    widened = [(*row[:at], *(told.get(row[at - 1], {}).get(c.key) for c in columns), *row[at:]) for row in rows]
    return [*description[:at], *added, *description[at:]], widened


def _emit(text: str) -> int:
    """Write the result; a reader that closed the pipe early (`| head`) ends the run quietly."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        # nothing more can reach the reader: point stdout at /dev/null so that the flush at exit
        # does not fail again, and exit as a process killed by SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    return 0


def _notice(line: str) -> None:
    print(f"ratchet-ledger: {line}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0, 2 after printing one line to stderr, or 141 when the reader of its
    output went away (as a process killed by SIGPIPE)."""
    args = _parser().parse_args(argv)
    if args.list_views:
        width = max(map(len, VIEW_NAMES))
        return _emit("".join(f"{v.name.ljust(width)}  {v.doc}\n" for v in VIEWS))
    try:
        if not args.run_dirs:
            raise LedgerError("give at least one RUN_DIR")
        if args.view is not None and args.view not in VIEW_NAMES:
            raise LedgerError(f"unknown view {args.view!r}; known: {', '.join(VIEW_NAMES)}")
        ledgers = find_ledgers(args.run_dirs)
        told = sweep_overrides(path.parent for path in ledgers)
        con = connect_sweep(ledgers, notice=_notice)
        try:
            _create_overrides(con, told)
            sql = f"SELECT * FROM {args.view}" if args.view is not None else args.sql
            description, rows = _query(con, sql)
        finally:
            con.close()
    except LedgerError as exc:
        _notice(str(exc))
        return 2
    columns = [d[0] for d in description]
    if args.view is not None and "run_dir" in columns:
        description, rows = _with_swept(description, rows, told)
        columns = [d[0] for d in description]
    if args.format == "csv":
        return _emit(format_csv(columns, rows))
    if args.format == "json":
        json_columns = {d[0] for d in description if str(d[1]) == "JSON"}
        return _emit(format_json(columns, rows, json_columns))
    return _emit(format_table(columns, rows))


if __name__ == "__main__":
    sys.exit(main())
