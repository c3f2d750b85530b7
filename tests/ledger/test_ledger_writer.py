"""The ledger writer: validated appends, one-transaction commits, JSON, reads and resume."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from core.errors import LedgerError
from ledger.schema import MIGRATIONS
from ledger.writer import Ledger


def _equity(ts: int, agent: str = "futures", equity: float = 100.0) -> dict:
    return {"ts": ts, "agent": agent, "equity": equity, "cash": equity, "unrealized": 0.0,
            "open_positions": 0, "state": "conservative"}


def test_an_unknown_table_is_refused_by_name(open_ledger):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=r"unknown ledger table 'trade'; known: .*trades"):
        ledger.append("trade", {"pnl": 1.0})


def test_an_unknown_column_is_refused_naming_table_and_column(open_ledger):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=r"table 'trades' has no column 'pnl_usd'"):
        ledger.append("trades", {"trade_id": "t1", "pnl_usd": 1.0})
    assert ledger.pending() == 0


@pytest.mark.parametrize("column", ["run_id", "wall_ts"])
def test_run_id_and_wall_time_are_filled_by_the_ledger_only(open_ledger, column):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=rf"equity\.{column} is filled by the ledger"):
        ledger.append("equity", {**_equity(0), column: "x"})


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("trades", "qty", "1.5"),
        ("trades", "pnl", True),
        ("equity", "open_positions", 1.5),
        ("decisions", "passed", 1),
        ("orders", "symbol", 7),
        ("equity", "ts", 2**63),
        ("equity", "open_positions", 2**31),
    ],
)
def test_a_value_of_the_wrong_type_or_range_is_refused_naming_the_column(
    open_ledger, table, column, value
):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=rf"ledger column {table}\.{column} "):
        ledger.append(table, {column: value})


@pytest.mark.parametrize(
    ("table", "column", "value"),
    [
        ("orders", "side", "long"),
        ("orders", "order_type", "limit"),
        ("orders", "intent", "hedge"),
        ("fills", "side", "short"),
        ("trades", "side", "buy"),
        ("trades", "mode", "greedy"),
        ("models", "status", "candidate"),
    ],
)
def test_a_value_outside_a_closed_vocabulary_is_refused_listing_the_allowed(
    open_ledger, table, column, value
):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=rf"{table}\.{column} got '{value}'; allowed: \["):
        ledger.append(table, {column: value})


def test_numpy_scalars_are_stored_as_plain_numbers(open_ledger):
    ledger = open_ledger()

    ledger.append("equity", {"ts": np.int64(60_000), "agent": "futures",
                             "equity": np.float32(101.5), "open_positions": np.int32(2)})
    ledger.append("decisions", {"ts": 0, "probability": np.float64(0.75), "passed": np.bool_(True)})
    ledger.commit()

    assert ledger.query("SELECT ts, equity, open_positions FROM equity") == [(60_000, 101.5, 2)]
    assert ledger.query("SELECT probability, passed FROM decisions") == [(0.75, True)]


def test_commit_writes_every_table_with_run_id_and_wall_time(open_ledger, wall_clock):
    ledger = open_ledger()
    ledger.append("equity", _equity(0))
    ledger.append("equity", _equity(60_000, equity=101.0))
    ledger.append("trades", {"trade_id": "t1", "agent": "futures", "symbol": "BTCUSDT",
                             "side": "long", "pnl": 1.0})
    ledger.append("data_issues", {"ts": 0, "symbol": "BTCUSDT", "kind": "gap", "detail": "2 bars"})
    assert ledger.pending() == 4

    ledger.commit()

    assert ledger.pending() == 0
    first = 1_800_000_000 + len(MIGRATIONS)  # each migration read the clock once
    walls = [datetime.fromtimestamp(first + i, UTC).replace(tzinfo=None) for i in range(4)]
    assert ledger.query("SELECT run_id, wall_ts, ts, equity FROM equity ORDER BY ts") == [
        ("r1", walls[0], 0, 100.0),
        ("r1", walls[1], 60_000, 101.0),
    ]
    assert ledger.query("SELECT run_id, wall_ts, pnl, entry_ts FROM trades") == [
        ("r1", walls[2], 1.0, None)
    ]
    assert ledger.query("SELECT run_id, kind FROM data_issues") == [("r1", "gap")]


def test_committing_nothing_is_a_no_op(open_ledger):
    ledger = open_ledger()

    ledger.commit()

    assert ledger.query("SELECT count(*) FROM equity") == [(0,)]


def test_json_columns_round_trip_with_sorted_keys(open_ledger):
    ledger = open_ledger()
    evidence = {"win_rate": np.float64(0.6), "closed_trades": np.int64(10),
                "window": [1, 2.5, None], "nested": {"b": 1, "a": True}}
    ledger.append("transitions", {"ts": 0, "agent": "futures", "source": "conservative",
                                  "dest": "kelly_active", "evidence": evidence})
    ledger.append("adjustments", {"ts": 0, "agent": "futures", "kind": "risk_fraction",
                                  "before": 0.01, "after": [0.02], "evidence": {"f": float("nan")}})
    ledger.commit()

    [(text,)] = ledger.query("SELECT evidence FROM transitions")
    assert text == ('{"closed_trades": 10, "nested": {"a": true, "b": 1}, '
                    '"win_rate": 0.6, "window": [1, 2.5, null]}')
    assert json.loads(text) == {"closed_trades": 10, "nested": {"a": True, "b": 1},
                                "window": [1, 2.5, None], "win_rate": 0.6}
    assert ledger.query(
        "SELECT evidence ->> '$.win_rate', json_extract(evidence, '$.window[1]') FROM transitions"
    ) == [("0.6", "2.5")]
    assert ledger.query("SELECT before, after, evidence FROM adjustments") == [
        ("0.01", "[0.02]", '{"f": null}')
    ]


def test_a_json_value_that_cannot_be_serialized_is_refused_naming_the_column(open_ledger):
    ledger = open_ledger()

    with pytest.raises(LedgerError, match=r"adjustments\.evidence holds JSON"):
        ledger.append("adjustments", {"kind": "fallback", "evidence": {"error": object()}})


def test_query_arrow_returns_the_result_as_an_arrow_table(open_ledger):
    ledger = open_ledger()
    ledger.append("equity", _equity(0))
    ledger.commit()

    table = ledger.query_arrow("SELECT ts, equity FROM equity WHERE agent = ?", ["futures"])

    assert isinstance(table, pa.Table)
    assert table.to_pylist() == [{"ts": 0, "equity": 100.0}]


def test_a_bad_query_raises_a_ledger_error(open_ledger):
    with pytest.raises(LedgerError, match="query failed"):
        open_ledger().query("SELECT * FROM positions")


def test_last_ts_is_the_last_committed_equity_mark_of_this_run_and_agent(open_ledger):
    with open_ledger("r1") as first:
        first.append("equity", _equity(60_000))
        first.append("equity", _equity(120_000))
        first.append("equity", _equity(900_000, agent="hybrid"))
    resumed = open_ledger("r1")
    other_run = open_ledger("r2")

    resumed.append("equity", _equity(180_000))  # not committed: not a resume point yet

    assert resumed.last_ts("futures") == 120_000
    assert resumed.last_ts("hybrid") == 900_000
    assert resumed.last_ts("spot") is None
    assert other_run.last_ts("futures") is None


def test_leaving_the_context_cleanly_commits_pending_rows(open_ledger, ledger_path):
    with open_ledger() as ledger:
        ledger.append("equity", _equity(0))

    with Ledger.open(ledger_path, read_only=True) as reader:
        assert reader.query("SELECT count(*) FROM equity") == [(1,)]


def test_leaving_the_context_on_an_error_drops_uncommitted_rows_like_a_crash(
    open_ledger, ledger_path
):
    with pytest.raises(RuntimeError), open_ledger() as ledger:
        ledger.append("equity", _equity(0))
        ledger.commit()
        ledger.append("equity", _equity(60_000))
        raise RuntimeError("component failed mid-bar")

    with Ledger.open(ledger_path, read_only=True) as reader:
        assert reader.query("SELECT ts FROM equity") == [(0,)]


def test_close_commits_what_is_pending_once_and_a_second_close_changes_nothing(open_ledger, ledger_path):
    ledger = open_ledger()
    ledger.append("equity", _equity(0))
    ledger.close()
    ledger.close()
    assert ledger.pending() == 0
    with Ledger.open(ledger_path, read_only=True) as reader:  # the file was released
        assert reader.query("SELECT ts FROM equity") == [(0,)]


def test_rows_given_column_by_column_commit_beside_rows_given_one_by_one(open_ledger, ledger_path):
    import numpy as np

    with open_ledger() as ledger:
        ledger.append("equity", _equity(0))
        ledger.append_columns("equity", {"ts": np.array([1, 2], dtype=np.int64), "agent": "futures",
                                         "equity": np.array([10.0, 11.0]), "cash": 10.0,
                                         "unrealized": np.array([0.0, 1.0]), "open_positions": 1,
                                         "state": "conservative"}, 2)
        assert ledger.pending() == 3
    with Ledger.open(ledger_path, read_only=True) as reader:
        assert reader.query("SELECT ts, equity, cash, open_positions, state FROM equity WHERE ts > 0 ORDER BY ts") == [
            (1, 10.0, 10.0, 1, "conservative"), (2, 11.0, 10.0, 1, "conservative")]


def test_columns_of_the_wrong_length_or_kind_are_refused_by_name(open_ledger):
    import numpy as np

    with open_ledger() as ledger:
        with pytest.raises(LedgerError, match="equity.equity is DOUBLE; got 1 values"):
            ledger.append_columns("equity", {"ts": np.array([1, 2]), "equity": np.array([1.0])}, 2)
        with pytest.raises(LedgerError, match="has no column 'equty'"):
            ledger.append_columns("equity", {"equty": 1.0}, 2)


def test_a_read_only_ledger_reads_but_refuses_appends(open_ledger, ledger_path):
    with open_ledger() as writer:
        writer.append("equity", _equity(0))

    with Ledger.open(ledger_path, read_only=True) as reader:
        assert reader.query("SELECT count(*) FROM stats") == [(0,)]
        with pytest.raises(LedgerError, match="read-only"):
            reader.append("equity", _equity(60_000))


def test_read_only_needs_an_existing_file(tmp_path):
    with pytest.raises(LedgerError, match="does not exist"):
        Ledger.open(tmp_path / "missing.duckdb", read_only=True)


def test_writing_needs_a_run_id(ledger_path):
    with pytest.raises(LedgerError, match="run_id is needed"):
        Ledger.open(ledger_path)


def test_an_in_memory_ledger_works_for_tests_of_other_components():
    with Ledger.open(":memory:", "r1") as ledger:
        ledger.append("equity", _equity(0))
        ledger.commit()
        assert ledger.last_ts("futures") == 0
