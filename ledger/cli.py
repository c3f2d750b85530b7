"""`ratchet-ledger`: run a named view or SQL over one or many run ledgers (a sweep).

Each ledger is attached read-only; every base table becomes a TEMP view that unions it across
the ledgers by column name, with a `run_dir` column saying which run a row came from, and the
named views are built on top, grouped by `run_dir, run_id`.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from core.errors import LedgerError
from ledger.schema import check_version, create_schema, schema_version
from ledger.views import VIEW_NAMES, VIEWS, create_views

LEDGER_FILE = "ledger.duckdb"
_SCHEMA_CATALOG = "ratchet_schema"


def _natural_key(path: Path) -> tuple[tuple[int, int | str], ...]:
    """Order run folders 0, 1, …, 10 rather than 0, 1, 10."""
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in path.parts)


def find_ledgers(run_dirs: Sequence[str | Path]) -> list[Path]:
    """The ledger files of the given run folders; a sweep folder expands to every run under it."""
    found: list[Path] = []
    for run_dir in map(Path, run_dirs):
        if run_dir.is_file():
            found.append(run_dir)
        elif (run_dir / LEDGER_FILE).is_file():
            found.append(run_dir / LEDGER_FILE)
        elif run_dir.is_dir():
            nested = sorted(run_dir.rglob(LEDGER_FILE), key=_natural_key)
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


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _tables(con: duckdb.DuckDBPyConnection, catalog: str) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'",
        [catalog],
    ).fetchall()
    return {name for (name,) in rows}


def connect_sweep(ledgers: Sequence[Path]) -> duckdb.DuckDBPyConnection:
    """An in-memory connection whose base tables union the ledgers and whose views sit on them."""
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH ':memory:' AS {_SCHEMA_CATALOG}")
        con.execute(f"USE {_SCHEMA_CATALOG}")
        create_schema(con)  # the current columns and types, even when every ledger is older
        con.execute("USE memory")
        attached: list[tuple[str, str, set[str]]] = []
        for index, path in enumerate(ledgers):
            alias = f"ledger_{index}"
            try:
                con.execute(f"ATTACH {_quote(str(path))} AS {alias} (READ_ONLY)")
            except duckdb.Error as exc:
                raise LedgerError(f"cannot open ledger {path}: {_first_line(exc)}") from exc
            # an older ledger reads fine: the union adds its missing columns as NULL
            check_version(schema_version(con, alias), path, accept_older=True)
            attached.append((alias, str(path.parent), _tables(con, alias)))
        for table in sorted(_tables(con, _SCHEMA_CATALOG)):
            parts = [f"SELECT NULL::VARCHAR AS run_dir, * FROM {_SCHEMA_CATALOG}.main.{table}"]
            parts += [
                f"SELECT {_quote(run_dir)} AS run_dir, * FROM {alias}.main.{table}"
                for alias, run_dir, tables in attached
                if table in tables
            ]
            con.execute(f"CREATE TEMP VIEW {table} AS {' UNION ALL BY NAME '.join(parts)}")
        create_views(con, run_keys=("run_dir", "run_id"))
    except BaseException:
        con.close()
        raise
    return con


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """A value JSON can hold: non-finite floats as null, times as ISO text."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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


def format_csv(columns: Sequence[str], rows: Sequence[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return buffer.getvalue()


def format_json(columns: Sequence[str], rows: Sequence[tuple], json_columns: set[str]) -> str:
    """A JSON array of objects; JSON columns are embedded as values, not strings."""
    records = [
        {
            c: json.loads(v) if c in json_columns and v is not None else _plain(v)
            for c, v in zip(columns, row, strict=True)
        }
        for row in rows
    ]
    return json.dumps(records, indent=2) + "\n"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ratchet-ledger", description="Query run ledgers by named view or SQL."
    )
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="a run folder holding ledger.duckdb, or a sweep folder above several")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--view", metavar="NAME", help="a named view (see --list-views)")
    action.add_argument("--sql", metavar="QUERY", help="SQL over base tables and views")
    action.add_argument("--list-views", action="store_true", help="list the named views")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns 0, or 2 after printing one line to stderr."""
    args = _parser().parse_args(argv)
    if args.list_views:
        width = max(map(len, VIEW_NAMES))
        sys.stdout.write("".join(f"{v.name.ljust(width)}  {v.doc}\n" for v in VIEWS))
        return 0
    try:
        if not args.run_dirs:
            raise LedgerError("give at least one RUN_DIR")
        if args.view is not None and args.view not in VIEW_NAMES:
            raise LedgerError(f"unknown view {args.view!r}; known: {', '.join(VIEW_NAMES)}")
        con = connect_sweep(find_ledgers(args.run_dirs))
        try:
            sql = f"SELECT * FROM {args.view}" if args.view is not None else args.sql
            try:
                result = con.execute(sql)
                description = result.description
                rows = result.fetchall() if description is not None else []
            except duckdb.Error as exc:
                raise LedgerError(f"SQL error: {_first_line(exc)}") from exc
        finally:
            con.close()
    except LedgerError as exc:
        print(f"ratchet-ledger: {exc}", file=sys.stderr)
        return 2
    if description is None:
        return 0
    columns = [d[0] for d in description]
    if args.format == "csv":
        sys.stdout.write(format_csv(columns, rows))
    elif args.format == "json":
        json_columns = {d[0] for d in description if str(d[1]) == "JSON"}
        sys.stdout.write(format_json(columns, rows, json_columns))
    else:
        sys.stdout.write(format_table(columns, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
