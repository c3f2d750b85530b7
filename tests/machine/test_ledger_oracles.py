"""Refactors and speed-ups change no result: a short replay per agent writes the stored ledger.

A change of results that is intended regenerates the oracles (tests/support/oracles.py) in the
same commit, which says why.
"""

from __future__ import annotations

import pytest

from tests.support.oracles import ORACLES, replay_export, stored


@pytest.mark.parametrize("name", sorted(p.stem for p in ORACLES.glob("*.json")))
def test_a_short_replay_writes_exactly_the_stored_ledger(name, tmp_path):
    expected, got = stored(name), replay_export(name, tmp_path / "run")
    assert set(got) == set(expected)
    for table, rows in expected.items():
        assert len(got[table]) == len(rows), table
        first = next((k for k, (a, b) in enumerate(zip(got[table], rows, strict=True)) if a != b), None)
        assert first is None, f"{table} row {first}: {got[table][first]} != stored {rows[first]}"
