"""load_bars and load_funding on the real bundled files and on copies carrying one defect."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pyarrow as pa
import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from components.market.loader import load_bars, load_funding
from components.market.timeframes import iso_utc, timeframe_ms
from core.errors import DataError
from core.market import per_bar

SPOT = "binance_spot_BTC-USDT_1h.parquet"
PERP = "binance_futures_BTC-USDT-USDT_1h.parquet"
FUNDING = "binance_futures_BTC-USDT-USDT_funding_8h.parquet"
HALT = 1679662800000  # 2023-03-24 13:00 UTC, Binance spot trading halt: no candle
HOUR = 3_600_000


def test_perp_candles_load_whole_and_clean() -> None:
    bars, issues = load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail")

    assert len(bars) == 38322
    assert issues == []
    assert bars.timeframe_ms == HOUR
    assert iso_utc(bars.ts[0]) == "2022-01-01T00:00:00Z"
    assert np.all(np.diff(bars.ts) == HOUR)
    assert bars.close.dtype == np.float64 and bars.ts.dtype == np.int64
    assert not bars.close.flags.writeable


def test_the_spot_trading_halt_fails_by_default_naming_file_symbol_and_time() -> None:
    with pytest.raises(DataError) as err:
        load_bars(BUNDLED_DATA_DIR / SPOT, "BTC/USDT", "1h", on_gap="fail")
    message = str(err.value)
    assert SPOT in message and "BTC/USDT" in message and "2023-03-24T13:00:00Z" in message


def test_skipping_the_halt_leaves_the_hole_and_records_one_gap() -> None:
    bars, issues = load_bars(BUNDLED_DATA_DIR / SPOT, "BTC/USDT", "1h", on_gap="skip")

    assert len(bars) == 38321
    assert HALT not in bars.ts
    assert [(i.symbol, i.ts, i.kind) for i in issues] == [("BTC/USDT", HALT, "gap")]
    assert SPOT in issues[0].detail


def test_a_window_keeps_open_times_from_start_up_to_but_excluding_end() -> None:
    start, end = 1_700_000_000_000 // HOUR * HOUR, 1_700_000_000_000 // HOUR * HOUR + 48 * HOUR
    bars, _ = load_bars(
        BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail", start_ms=start, end_ms=end
    )
    assert len(bars) == 48
    assert bars.ts[0] == start and bars.ts[-1] == end - HOUR


def test_a_window_around_the_halt_loads_spot_without_issue() -> None:
    bars, issues = load_bars(
        BUNDLED_DATA_DIR / SPOT, "BTC/USDT", "1h", on_gap="fail", start_ms=HALT + HOUR
    )
    assert issues == [] and bars.ts[0] == HALT + HOUR


def test_an_empty_window_is_an_error_naming_the_file_and_the_range_it_holds() -> None:
    whole, _ = load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail")

    with pytest.raises(DataError) as err:
        load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail", end_ms=0)

    message = str(err.value)
    assert PERP in message and "no 1h candles in the window [the beginning, 1970-01-01T00:00:00Z)" in message
    assert f"it holds [{iso_utc(whole.ts[0])}, {iso_utc(whole.ts[-1] + HOUR)})" in message


def test_a_missing_file_is_named(tmp_path) -> None:
    with pytest.raises(DataError, match="not found.*nothere.parquet"):
        load_bars(tmp_path / "nothere.parquet", "BTC/USDT", "1h", on_gap="fail")


def test_a_truncated_file_is_reported_as_unreadable(tmp_path) -> None:
    broken = tmp_path / PERP
    broken.write_bytes((BUNDLED_DATA_DIR / PERP).read_bytes()[:50_000])
    with pytest.raises(DataError, match=f"cannot read parquet file .*{PERP}"):
        load_bars(broken, "BTC/USDT:USDT", "1h", on_gap="fail")


def test_a_missing_column_is_named(user_dir) -> None:
    path = user_dir(PERP, edit=lambda t: t.drop_columns(["close"]))
    with pytest.raises(DataError, match="lacks column.*close"):
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="fail")


def test_timestamps_stored_as_text_are_refused(user_dir) -> None:
    path = user_dir(PERP, edit=lambda t: t.set_column(0, "ts", t.column("ts").cast(pa.string())))
    with pytest.raises(DataError, match="'ts'.*string"):
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="fail")


def test_unsorted_rows_fail_whatever_the_policy(user_dir) -> None:
    path = user_dir(PERP, edit=lambda t: t.take([0, 2, 1, *range(3, t.num_rows)]))
    with pytest.raises(DataError, match="not sorted.*2022-01-01T01:00:00Z follows"):
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="skip")


def test_duplicates_fail_naming_file_symbol_and_first_duplicate(user_dir) -> None:
    path = user_dir(PERP, edit=_repeat_row(100))
    with pytest.raises(DataError) as err:
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="fail")
    assert PERP in str(err.value) and "BTC/USDT:USDT" in str(err.value)
    assert "2022-01-05T04:00:00Z" in str(err.value)


def test_skipped_duplicates_keep_the_first_row(user_dir) -> None:
    original, _ = load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail")
    path = user_dir(PERP, edit=_repeat_row(100, close=1.0))

    bars, issues = load_bars(path, "BTC/USDT:USDT", "1h", on_gap="skip")

    np.testing.assert_array_equal(bars.close, original.close)
    assert [(i.ts, i.kind) for i in issues] == [(int(original.ts[100]), "duplicate")]


def test_each_skipped_gap_is_one_issue_at_its_first_missing_bar(user_dir) -> None:
    path = user_dir(PERP, drop=[10, 11, 12, 500])

    bars, issues = load_bars(path, "BTC/USDT:USDT", "1h", on_gap="skip")

    start = 1640995200000  # 2022-01-01 00:00 UTC
    assert len(bars) == 38322 - 4
    assert [(i.ts, i.kind) for i in issues] == [(start + 10 * HOUR, "gap"), (start + 500 * HOUR, "gap")]
    assert "3 missing 1h candle(s)" in issues[0].detail


def test_bars_off_the_timeframe_grid_fail(user_dir) -> None:
    path = user_dir(PERP, values={("ts", 5): 1640995200000 + 5 * HOUR + 60_000})
    with pytest.raises(DataError, match="off the 1h grid"):
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="skip")


@pytest.mark.parametrize(
    ("column", "value", "what"),
    [
        ("close", float("nan"), "NaN or infinite price"),
        ("open", None, "NaN or infinite price"),
        ("low", 0.0, "non-positive price"),
        ("high", 1.0, "high below low"),
        ("volume", -1.0, "negative volume"),
    ],
)
def test_bad_prices_fail_naming_the_candle(user_dir, column, value, what) -> None:
    path = user_dir(PERP, values={(column, 7): value})
    with pytest.raises(DataError) as err:
        load_bars(path, "BTC/USDT:USDT", "1h", on_gap="skip")
    assert what in str(err.value) and "2022-01-01T07:00:00Z" in str(err.value)


def test_unknown_gap_policy_is_refused() -> None:
    with pytest.raises(DataError, match="'fill'"):
        load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fill")  # type: ignore[arg-type]


def test_funding_settles_every_eight_hours() -> None:
    funding = load_funding(BUNDLED_DATA_DIR / FUNDING, "BTC/USDT:USDT")

    assert len(funding.ts) == 4791
    assert np.all(np.diff(funding.ts) == 8 * HOUR)
    assert np.all(np.abs(funding.rate) < 0.01)  # under 1 % per 8 h, as Binance caps it


def test_repeated_funding_settlements_fail(user_dir) -> None:
    path = user_dir(FUNDING, edit=_repeat_row(3))
    with pytest.raises(DataError, match="repeats funding settlement 2022-01-02T00:00:00Z"):
        load_funding(path, "BTC/USDT:USDT")


@pytest.mark.parametrize(
    ("timeframe", "ms"), [("1m", 60_000), ("5m", 300_000), ("1h", HOUR), ("8h", 8 * HOUR), ("1d", 24 * HOUR)]
)
def test_timeframe_ms_knows_the_exchange_timeframes(timeframe: str, ms: int) -> None:
    assert timeframe_ms(timeframe) == ms


@pytest.mark.parametrize("bad", ["1M", "h", "0h", "1x", "", "60", " 1h"])
def test_timeframe_ms_names_an_unknown_timeframe(bad: str) -> None:
    with pytest.raises(DataError, match=f"unknown timeframe {bad!r}"):
        timeframe_ms(bad)


def _repeat_row(row: int, **overrides: float):
    """Edit: insert a copy of ``row`` right after it, with some values changed."""

    def edit(table: pa.Table) -> pa.Table:
        copy = table.slice(row, 1)
        for column, value in overrides.items():
            field = copy.schema.get_field_index(column)
            copy = copy.set_column(field, column, pa.array([value], pa.float64()))
        return pa.concat_tables([table.slice(0, row + 1), copy, table.slice(row + 1)])

    return edit


def test_the_bundled_files_match_the_sha256_their_readme_records() -> None:
    readme = (BUNDLED_DATA_DIR / "README.md").read_text()
    recorded = dict(re.findall(r"^\| `([^`]+\.parquet)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.M))
    actual = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in BUNDLED_DATA_DIR.glob("*.parquet")}
    assert recorded == actual


def test_per_bar_reads_the_same_numbers_as_a_list_in_a_quarter_of_the_memory() -> None:
    bars, _ = load_bars(BUNDLED_DATA_DIR / PERP, "BTC/USDT:USDT", "1h", on_gap="fail")

    closes, ts = per_bar(bars.close), per_bar(bars.ts)

    assert list(closes) == bars.close.tolist() and list(ts) == bars.ts.tolist()
    assert isinstance(ts[0], int) and isinstance(closes[0], float)
    assert closes.itemsize == ts.itemsize == 8
