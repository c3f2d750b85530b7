"""State roles live in the ledger (`state_tags`), so views follow a machine whose states are renamed,
and ledgers written before roles were recorded (schema 2) keep their breaker rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from core.errors import LedgerError
from ledger.cli import main
from ledger.schema import MIGRATIONS, migrate, schema_version
from ledger.views import VIEW_NAMES
from ledger.writer import Ledger

MIN = 60_000
# (minute, source, dest, trigger) of a run that trips, recovers, trips again and is halted
MOVES = [
    (1, "warmup", "conservative", "history_ready"),
    (2, "conservative", "exploring", "explore_window"),
    (3, "exploring", "conservative", "window_closed"),
    (4, "conservative", "circuit_broken", "drawdown_breached"),
    (6, "circuit_broken", "conservative", "cooldown_elapsed"),
    (7, "conservative", "circuit_broken", "losing_streak"),
    (8, "circuit_broken", "halted", "repeated_trips"),
]
TAGS = {"circuit_broken": ["breaker"], "halted": ["breaker", "halt"], "exploring": ["exploring"]}
RENAMED = {"circuit_broken": "tripped", "halted": "stopped"}


def _write_run(path: Path, run_id: str, moves=MOVES, tags=TAGS) -> None:
    with Ledger.open(path, run_id) as ledger:
        ledger.append("runs", {"agent": "futures", "market": "perp_1h", "exchange": "sim", "mode": "replay"})
        for state, state_tags in tags.items():
            for tag in state_tags:
                ledger.append("state_tags", {"agent": "futures", "state": state, "tag": tag})
        for minute, source, dest, trigger in moves:
            ledger.append("transitions", {"ts": minute * MIN, "agent": "futures", "source": source,
                                          "dest": dest, "trigger": trigger, "evidence": {"minute": minute}})
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": 100.0 - minute,
                                     "state": dest})


def _renamed(moves):
    return [(minute, RENAMED.get(s, s), RENAMED.get(d, d), trigger) for minute, s, d, trigger in moves]


def _view(capsys, view: str, *run_dirs: Path) -> list[dict]:
    code = main([*map(str, run_dirs), "--view", view, "--format", "csv"])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    return list(csv.DictReader(io.StringIO(out)))


def _ms(text: str) -> int:
    """A view's time as CSV writes it (ISO 8601, UTC) back in the base tables' epoch ms."""
    return int(datetime.fromisoformat(text).astimezone(UTC).timestamp() * 1000)


def _moves(rows: list[dict]) -> list[tuple]:
    return [(r["run_id"], _ms(r["ts"]), r["source"], r["dest"], r["trigger"]) for r in rows]


BREAKER_MOVES = [(m * MIN, s, d, t) for m, s, d, t in MOVES[3:]]  # into or out of a breaker state


def test_the_breaker_view_lists_moves_into_or_out_of_states_tagged_breaker(capsys, tmp_path):
    _write_run(tmp_path / "run" / "ledger.duckdb", "r1")

    rows = _view(capsys, "breaker", tmp_path / "run")

    assert _moves(rows) == [("r1", *move) for move in BREAKER_MOVES]


def test_renamed_breaker_states_give_the_same_breaker_rows(capsys, tmp_path):
    _write_run(tmp_path / "named" / "ledger.duckdb", "r1")
    _write_run(tmp_path / "renamed" / "ledger.duckdb", "r1", _renamed(MOVES),
               {"tripped": ["breaker"], "stopped": ["breaker", "halt"], "exploring": ["exploring"]})

    named = _view(capsys, "breaker", tmp_path / "named")
    renamed = _view(capsys, "breaker", tmp_path / "renamed")

    assert _moves(renamed) == [("r1", ts, RENAMED.get(s, s), RENAMED.get(d, d), t)
                               for (_, ts, s, d, t) in _moves(named)]
    assert [r["evidence"] for r in renamed] == [r["evidence"] for r in named]


def test_a_state_named_circuit_broken_but_not_tagged_breaker_is_no_breaker(capsys, tmp_path):
    _write_run(tmp_path / "run" / "ledger.duckdb", "r1", tags={"halted": ["breaker"]})

    rows = _view(capsys, "breaker", tmp_path / "run")

    assert [(r["source"], r["dest"]) for r in rows] == [("circuit_broken", "halted")]


def test_over_a_sweep_each_run_is_read_with_its_own_tags(capsys, tmp_path):
    sweep = tmp_path / "sweep"
    _write_run(sweep / "0" / "ledger.duckdb", "same-id")
    _write_run(sweep / "1" / "ledger.duckdb", "same-id", _renamed(MOVES),
               {"tripped": ["breaker"], "stopped": ["breaker"]})

    rows = _view(capsys, "breaker", sweep)

    assert [(Path(r["run_dir"]).name, r["dest"]) for r in rows] == [
        ("0", "circuit_broken"), ("0", "conservative"), ("0", "circuit_broken"), ("0", "halted"),
        ("1", "tripped"), ("1", "conservative"), ("1", "tripped"), ("1", "stopped"),
    ]


def test_the_run_mode_is_a_closed_vocabulary(open_ledger):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=r"runs.mode got 'backtest'; allowed: \['live', 'paper', 'replay'\]"):
        ledger.append("runs", {"agent": "futures", "mode": "backtest"})


# -- ledgers from before migration 3 --------------------------------------------------------------


def _write_old_ledger(path: Path, version: int, run_id: str = "old-run") -> None:
    """A ledger at an older schema version, with rows as the Ratchet of that version wrote them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as con:
        migrate(con, path, lambda: 1_700_000_000.0, MIGRATIONS[:version])
        con.execute("INSERT INTO runs (run_id, wall_ts, agent, market, exchange) "
                    "VALUES (?, '2023-11-14 22:13:20', 'futures', 'perp_1h', 'sim')", [run_id])
        for minute, source, dest, trigger in MOVES:
            con.execute("INSERT INTO transitions (run_id, wall_ts, ts, agent, source, dest, trigger, evidence) "
                        "VALUES (?, '2023-11-14 22:13:20', ?, 'futures', ?, ?, ?, ?)",
                        [run_id, minute * MIN, source, dest, trigger, f'{{"minute": {minute}}}'])
            con.execute("INSERT INTO equity (run_id, wall_ts, ts, agent, equity, state) "
                        "VALUES (?, '2023-11-14 22:13:20', ?, 'futures', ?, ?)",
                        [run_id, minute * MIN, 100.0 - minute, dest])
            con.execute("INSERT INTO trades (run_id, wall_ts, trade_id, agent, side, pnl, mode, state) "
                        "VALUES (?, '2023-11-14 22:13:20', ?, 'futures', 'long', ?, 'normal', ?)",
                        [run_id, f"t{minute}", minute - 4.0, source])


def _version(path: Path) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return schema_version(con)


def test_a_v2_ledger_migrates_to_inferred_state_tags_and_a_null_mode(tmp_path):
    path = tmp_path / "old" / "ledger.duckdb"
    _write_old_ledger(path, 2)

    with Ledger.open(path, "old-run") as ledger:
        runs = ledger.query("SELECT run_id, mode FROM runs")
        tags = ledger.query("SELECT run_id, agent, state, tag FROM state_tags ORDER BY state, tag")
        breaker = ledger.query("SELECT epoch_ms(ts), source, dest, trigger FROM breaker")

    assert _version(path) == MIGRATIONS[-1].version
    assert runs == [("old-run", None)]
    assert tags == [("old-run", "futures", "circuit_broken", "breaker"),
                    ("old-run", "futures", "exploring", "exploring"),
                    ("old-run", "futures", "halted", "breaker"),
                    ("old-run", "futures", "halted", "halt")]
    assert breaker == BREAKER_MOVES


def test_a_v2_ledger_read_without_migrating_gives_the_same_breaker_rows(capsys, tmp_path):
    old, migrated = tmp_path / "old" / "ledger.duckdb", tmp_path / "migrated" / "ledger.duckdb"
    _write_old_ledger(old, 2)
    _write_old_ledger(migrated, 2)
    Ledger.open(migrated, "old-run").close()

    as_old = _view(capsys, "breaker", old.parent)
    as_migrated = _view(capsys, "breaker", migrated.parent)

    assert _version(old) == 2  # reading never migrates
    assert [(_ms(r["ts"]), r["source"], r["dest"], r["trigger"]) for r in as_old] == BREAKER_MOVES
    assert [{**r, "run_dir": None} for r in as_old] == [{**r, "run_dir": None} for r in as_migrated]


def test_a_v2_ledger_reads_its_mode_as_null(capsys, tmp_path):
    path = tmp_path / "old" / "ledger.duckdb"
    _write_old_ledger(path, 2)

    code = main([str(path.parent), "--format", "csv", "--sql", "SELECT run_id, mode FROM runs"])
    out, _ = capsys.readouterr()

    assert code == 0
    assert out.splitlines() == ["run_id,mode", "old-run,"]


@pytest.fixture(scope="module")
def mixed_sweep(tmp_path_factory) -> Path:
    """A sweep of a v1, a v2 and a current ledger, each with trades, marks and transitions."""
    sweep = tmp_path_factory.mktemp("mixed") / "sweep"
    _write_old_ledger(sweep / "0" / "ledger.duckdb", 1, "v1-run")
    _write_old_ledger(sweep / "1" / "ledger.duckdb", 2, "v2-run")
    _write_run(sweep / "2" / "ledger.duckdb", "v3-run")
    with Ledger.open(sweep / "2" / "ledger.duckdb", "v3-run") as ledger:
        ledger.append("trades", {"trade_id": "t1", "agent": "futures", "side": "long", "pnl": 1.0,
                                 "mode": "normal", "state": "conservative"})
    return sweep


# views over trades, equity marks or transitions: every run has rows there
EVERY_RUN = {"stats", "stats_by_symbol", "state_performance", "mode_performance", "drawdown",
             "max_drawdown", "time_in_state", "breaker", "summary"}


@pytest.mark.parametrize("view", VIEW_NAMES)
def test_every_view_reads_a_sweep_of_v1_v2_and_current_ledgers(capsys, mixed_sweep, view):
    rows = _view(capsys, view, mixed_sweep)

    expected = {"v1-run", "v2-run", "v3-run"} if view in EVERY_RUN else set()
    assert {r["run_id"] for r in rows} == expected
