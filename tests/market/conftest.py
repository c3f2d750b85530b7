"""User data dirs built from the real bundled files, optionally edited to carry one defect."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.market.catalog import BUNDLED_DATA_DIR

Edit = Callable[[pa.Table], pa.Table]


@pytest.fixture
def user_dir(tmp_path: Path) -> Callable[..., Path]:
    """``user_dir(name, drop=rows, values={(column, row): value}, edit=fn)`` -> edited copy.

    Copies a bundled file into ``tmp_path`` under the same name: rows listed in ``drop`` are
    removed, then ``values`` are written, then ``edit`` is applied to the whole table.
    """

    def copy(
        name: str,
        *,
        drop: Iterable[int] = (),
        values: Mapping[tuple[str, int], object] | None = None,
        edit: Edit | None = None,
    ) -> Path:
        table = pq.read_table(BUNDLED_DATA_DIR / name)
        dropped = {i % table.num_rows for i in drop}
        if dropped:
            table = table.take([i for i in range(table.num_rows) if i not in dropped])
        for (column, row), value in (values or {}).items():
            cells = table.column(column).to_pylist()
            cells[row] = value
            field = table.schema.get_field_index(column)
            table = table.set_column(field, column, pa.array(cells, table.schema.field(column).type))
        if edit is not None:
            table = edit(table)
        pq.write_table(table, tmp_path / name)
        return tmp_path / name

    return copy
