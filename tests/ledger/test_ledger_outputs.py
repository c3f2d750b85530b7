"""What `ratchet-ledger` writes: times as UTC timestamps, no value the same way in CSV and JSON, and a
sweep's rows saying which overrides they ran."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from ledger.cli import main
from ledger.overrides import Swept, swept, told
from ledger.writer import Ledger

MIN = 60_000


def _write_run(run_dir: Path, run_id: str, pnls: list[float], overrides: list[str] | None = None) -> Path:
    with Ledger.open(run_dir / "ledger.duckdb", run_id) as ledger:
        for number, pnl in enumerate(pnls):
            ledger.append("trades", {"trade_id": f"{run_id}-{number}", "agent": "futures", "symbol": "BTCUSDT",
                                     "side": "long", "pnl": pnl, "fees": 0.1, "funding": 0.0})
        for minute, equity in enumerate([100.0, 90.0, 100.0]):
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": equity, "state": "conservative"})
        ledger.append("state_tags", {"agent": "futures", "state": "circuit_broken", "tag": "breaker"})
        ledger.append("transitions", {"ts": MIN, "agent": "futures", "source": "conservative",
                                      "dest": "circuit_broken", "trigger": "drawdown_breached",
                                      "evidence": {"drawdown": 0.1}})
    if overrides is not None:  # as `ratchet` saves them when it claims the folder
        (run_dir / ".hydra").mkdir(parents=True)
        (run_dir / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    return run_dir


def _run(capsys, *argv: object) -> tuple[int, str, str]:
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _csv(out: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(out)))


def _strict_json(out: str) -> list[dict]:
    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(out, parse_constant=refuse)


def test_csv_and_json_agree_that_nan_infinity_and_null_are_no_value(capsys, tmp_path):
    run = _write_run(tmp_path / "run", "r", [1.0])
    sql = "SELECT 1.5 AS given, 'nan'::DOUBLE AS nan, NULL::DOUBLE AS missing, 'inf'::DOUBLE AS inf, " \
          "'-inf'::DOUBLE AS minus_inf"

    _, as_json, _ = _run(capsys, run, "--format", "json", "--sql", sql)
    _, as_csv, _ = _run(capsys, run, "--format", "csv", "--sql", sql)

    assert _strict_json(as_json) == [{"given": 1.5, "nan": None, "missing": None, "inf": None, "minus_inf": None}]
    assert _csv(as_csv) == [{"given": "1.5", "nan": "", "missing": "", "inf": "", "minus_inf": ""}]


def test_a_view_over_a_nan_pnl_is_null_in_json_and_empty_in_csv(capsys, tmp_path):
    run = _write_run(tmp_path / "run", "r", [1.0, float("nan")])

    _, as_json, _ = _run(capsys, run, "--format", "json", "--view", "stats")
    _, as_csv, _ = _run(capsys, run, "--format", "csv", "--view", "stats")

    [row] = _strict_json(as_json)
    [line] = _csv(as_csv)
    assert row["trades"] == 2 and row["net_pnl"] is None
    assert line["trades"] == "2" and line["net_pnl"] == ""
    assert {k for k, v in row.items() if v is None} == {k for k, v in line.items() if v == ""}


def test_views_write_times_as_utc_timestamps_the_same_in_csv_and_json(capsys, tmp_path):
    run = _write_run(tmp_path / "run", "r", [1.0])

    _, as_json, _ = _run(capsys, run, "--format", "json", "--view", "breaker")
    _, as_csv, _ = _run(capsys, run, "--format", "csv", "--view", "breaker")
    _, as_table, _ = _run(capsys, run, "--view", "breaker")
    _, base, _ = _run(capsys, run, "--format", "json", "--sql", "SELECT ts FROM transitions")

    assert [r["ts"] for r in _strict_json(as_json)] == ["1970-01-01T00:01:00Z"]
    assert [r["ts"] for r in _csv(as_csv)] == ["1970-01-01T00:01:00Z"]
    assert "1970-01-01 00:01:00" in as_table.splitlines()[2]
    assert _strict_json(base) == [{"ts": MIN}]  # the base tables keep epoch ms


def test_the_help_says_how_times_and_missing_values_are_written(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])

    text = capsys.readouterr().out
    assert done.value.code == 0
    assert "epoch milliseconds" in text and "UTC timestamps" in text
    assert "null in JSON and an empty field in CSV" in text
    assert "overrides (run_dir, key, value)" in text


@pytest.fixture
def kelly_sweep(tmp_path: Path) -> Path:
    """Two runs of a sweep over the Kelly fraction; the seed was given to both."""
    sweep = tmp_path / "multirun" / "2026-11-25" / "10-00-00"
    _write_run(sweep / "0_futures", "s0", [2.0, -1.0],
               ["agent=futures", "agent.components.kelly.kelly_fraction=0.25", "seed=3"])
    _write_run(sweep / "1_futures", "s1", [1.0],
               ["agent=futures", "agent.components.kelly.kelly_fraction=0.5", "seed=3"])
    return sweep


def test_a_sweeps_summary_has_a_column_per_swept_override_saying_which_value_each_row_ran(capsys, kelly_sweep):
    code, out, _ = _run(capsys, kelly_sweep, "--view", "summary", "--format", "csv")

    rows = _csv(out)
    assert code == 0
    assert list(rows[0])[:3] == ["run_dir", "kelly_fraction", "run_id"]
    assert [(Path(r["run_dir"]).name, r["kelly_fraction"], r["trades"]) for r in rows] == [
        ("0_futures", "0.25", "2"), ("1_futures", "0.5", "1")]
    assert "seed" not in rows[0] and "agent" in rows[0]  # the same in every run: not swept


def test_every_view_of_a_sweep_names_the_swept_value_and_the_table_shows_it(capsys, kelly_sweep):
    _, out, _ = _run(capsys, kelly_sweep, "--view", "stats")

    header, _, first, second, _ = out.splitlines()
    assert header.split()[:3] == ["run_dir", "kelly_fraction", "run_id"]
    assert first.split()[1:3] == ["0.25", "s0"] and second.split()[1:3] == ["0.5", "s1"]


def test_one_run_has_no_swept_columns_and_sql_can_join_its_overrides(capsys, kelly_sweep):
    _, out, _ = _run(capsys, kelly_sweep / "0_futures", "--view", "summary", "--format", "json")
    _, joined, _ = _run(capsys, kelly_sweep, "--format", "json", "--sql",
                        "SELECT value, trades FROM summary JOIN overrides USING (run_dir) "
                        "WHERE key = 'agent.components.kelly.kelly_fraction' ORDER BY value")

    assert "kelly_fraction" not in _strict_json(out)[0]
    assert _strict_json(joined) == [{"value": "0.25", "trades": 2}, {"value": "0.5", "trades": 1}]


def test_a_swept_group_named_like_a_views_column_gets_a_column_of_its_own(capsys, tmp_path):
    sweep = tmp_path / "sweep"
    _write_run(sweep / "0", "s0", [1.0], ["agent=futures", "+notify.discord.rate=1"])
    _write_run(sweep / "1", "s1", [1.0], ["agent=hybrid", "+notify.telegram.rate=2"])

    _, out, _ = _run(capsys, sweep, "--view", "summary", "--format", "json")

    rows = _strict_json(out)
    assert [(r["override.agent"], r["agent"]) for r in rows] == [("futures", "futures"), ("hybrid", "futures")]
    assert [(r["notify.discord.rate"], r["notify.telegram.rate"]) for r in rows] == [("1", None), (None, "2")]


@pytest.mark.parametrize(("runs", "columns"), [
    ([["a.b.lr=1", "seed=1"], ["a.b.lr=2", "seed=1"]], [("a.b.lr", "lr")]),
    ([["x.rate=1", "y.rate=1"], ["x.rate=2", "y.rate=3"]], [("x.rate", "x.rate"), ("y.rate", "y.rate")]),
    ([["hydra/launcher=joblib", "k=1"], ["k=2"]], [("hydra/launcher", "launcher"), ("k", "k")]),
    ([["~agent.components.kelly"], []], [("agent.components.kelly", "kelly")]),
    ([["trades=1"], ["trades=2"]], [("trades", "override.trades")]),
])
def test_swept_keys_get_short_unambiguous_column_names(runs, columns):
    found = swept([told(run) for run in runs], taken=["run_dir", "trades"])

    assert found == [Swept(key, column) for key, column in columns]
