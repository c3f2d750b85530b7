"""Read a market parquet file into numpy columns, with errors that name the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core.errors import DataError


def read_columns(path: Path, symbol: str, columns: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``ts`` as int64 and every other column as float64; nulls in a value column become NaN.

    Raises DataError naming ``path`` when the file is missing, unreadable, lacks a column,
    has a column of the wrong type, or has a null ``ts``.
    """
    if not path.is_file():
        raise DataError(f"market data file not found: {path} ({symbol})")
    try:
        parquet = pq.ParquetFile(path)
        schema = parquet.schema_arrow
        missing = [name for name in columns if name not in schema.names]
        if missing:
            raise DataError(
                f"{path} ({symbol}) lacks column(s) {', '.join(missing)}; "
                f"it has {', '.join(schema.names)}"
            )
        table = parquet.read(columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read parquet file {path} ({symbol}): {exc}") from exc
    out = {}
    for name in columns:
        column = table.column(name)
        out[name] = _ts_column(path, symbol, column) if name == "ts" else _value_column(
            path, symbol, name, column
        )
    return out


def _ts_column(path: Path, symbol: str, column: pa.ChunkedArray) -> np.ndarray:
    if not pa.types.is_integer(column.type):
        raise DataError(
            f"column 'ts' of {path} ({symbol}) has type {column.type}; "
            "expected int64 ms since the Unix epoch (UTC)"
        )
    if column.null_count:
        raise DataError(f"column 'ts' of {path} ({symbol}) has {column.null_count} null(s)")
    return np.ascontiguousarray(column.to_numpy(), dtype=np.int64)


def _value_column(path: Path, symbol: str, name: str, column: pa.ChunkedArray) -> np.ndarray:
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise DataError(
            f"column {name!r} of {path} ({symbol}) has type {column.type}; expected float64"
        )
    if column.null_count:
        column = column.cast(pa.float64()).fill_null(float("nan"))
    return np.ascontiguousarray(column.to_numpy(), dtype=np.float64)


def read_only(values: np.ndarray) -> np.ndarray:
    """A contiguous, read-only view or copy: bar arrays are shared by many components."""
    values = np.ascontiguousarray(values)
    values.setflags(write=False)
    return values
