"""Stepping over quiet bars is an optimisation only: every agent writes the same ledger as when
the engine looks at every bar (``skip_quiet_bars=false``, the reference loop)."""

from __future__ import annotations

import pytest

from tests.support.oracles import RUNS, comparable, replay_export


@pytest.mark.parametrize("name", sorted(RUNS))
def test_stepping_over_quiet_bars_writes_the_ledger_of_the_bar_by_bar_loop(name, tmp_path):
    skipped = replay_export(name, tmp_path / "skip")
    stepped = replay_export(name, tmp_path / "step", "skip_quiet_bars=false")
    for table in stepped:
        assert skipped[table] == stepped[table], table


def test_quiet_bars_are_stepped_over_at_all(tmp_path):
    """The fast path is taken: the EMA baseline is flat or holds a position without stops on most bars."""
    from machine import engine

    stepped = []
    original = engine._Loop._step
    engine._Loop._step = lambda self, i: (stepped.append(i), original(self, i))[1]
    try:
        replay_export("ema_cross", tmp_path / "run")
    finally:
        engine._Loop._step = original
    assert len(stepped) < len(comparable(tmp_path / "run" / "ledger.duckdb")["equity"]) / 5
