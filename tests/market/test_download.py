"""ratchet-download against the loopback Binance server: what it stores, what it asks, how it fails."""

from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from components.exchange.ccxt_client import connect
from components.exchange.connection import ConnectionConfig
from components.market.catalog import catalog
from components.market.download import DownloadRequest, SeriesReport, download
from components.market.loader import load_bars, load_market
from components.market.progress import Progress
from core.errors import DataError
from core.market import MarketData
from machine.compose import compose_run
from machine.download_cli import run
from machine.engine import load_run_market
from tests.support.binance import FakeBinance, FakeClock

HOUR = 3_600_000
JAN_1 = 1704067200000  # 2024-01-01 00:00 UTC
MAR_1 = 1709251200000  # 2024-03-01 00:00 UTC
HALT = 1679662800000  # 2023-03-24 13:00 UTC: Binance spot halted, no candle
PERPS = ("BTC/USDT:USDT", "ETH/USDT:USDT")
BTC_PERP, BTC = "BTC/USDT:USDT", "BTC/USDT"


@pytest.fixture
def exchange() -> Iterator[FakeBinance]:
    with FakeBinance(FakeClock(MAR_1)) as server:
        yield server


def order(tmp_path: Path, kind: str = "futures", symbols: tuple[str, ...] = PERPS, *, timeframe: str = "1h",
          start: int | None = JAN_1, end: int | None = MAR_1, on_gap: str = "fail",
          checkpoint_s: float = 0.0) -> DownloadRequest:
    return DownloadRequest(kind, symbols, timeframe, start, end, on_gap, tmp_path / "data", checkpoint_s)  # type: ignore[arg-type]


def fetch(exchange: FakeBinance, request: DownloadRequest, **connection) -> list[SeriesReport]:
    settings = {"base_url": exchange.base_url, "rate_limit_ms": 1, "retries": 3, "backoff_ms": 1, **connection}
    with connect(request.kind, ConnectionConfig(**settings)) as client:
        return download(request, client)


def assert_same_market(downloaded: MarketData, bundled: MarketData) -> None:
    assert np.array_equal(downloaded.ts, bundled.ts)
    assert downloaded.issues == bundled.issues
    for symbol, ours in downloaded.symbols.items():
        theirs = bundled.symbols[symbol]
        for part in ("bars", "mark"):
            a, b = getattr(ours, part), getattr(theirs, part)
            assert (a is None) == (b is None)
            if a is not None:
                for column in ("ts", "open", "high", "low", "close", "volume"):
                    assert np.array_equal(getattr(a, column), getattr(b, column)), (symbol, part, column)
        if theirs.funding is not None:
            assert np.array_equal(ours.funding.ts, theirs.funding.ts)
            assert np.array_equal(ours.funding.rate, theirs.funding.rate)


def klines_starts(exchange: FakeBinance, path: str, symbol: str = "BTCUSDT", since: int = 0) -> list[int]:
    return [int(r.params["startTime"]) for r in exchange.requests(path)[since:] if r.params["symbol"] == symbol]


def test_a_downloaded_set_replays_as_the_bundled_one_with_nothing_else_changed(exchange: FakeBinance,
                                                                               tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    run_overrides = ["agent=futures", "market=perp_1h", "market.start=2024-02-01", "market.end=2024-03-01"]
    out, err = io.StringIO(), io.StringIO()

    status = run([*run_overrides, f"market.data_dir={data_dir}", f"exchange.base_url={exchange.base_url}",
                  "++exchange.rate_limit_ms=1"], out=out, err=err)

    assert (status, err.getvalue()) == (0, "")
    assert "\r" not in out.getvalue()  # no progress bar when the output is not a terminal
    bundled = load_run_market(compose_run(*run_overrides))
    downloaded = load_run_market(compose_run(*run_overrides, f"market.data_dir={data_dir}"))
    assert bundled.trade_from > 0  # the agent's warm-up history before market.start came down too
    assert downloaded.trade_from == bundled.trade_from
    assert_same_market(downloaded, bundled)
    first = int(bundled.ts[0])
    assert f"warm-up: {bundled.trade_from} 1h bars before market.start for agent futures" in out.getvalue()
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):  # two pages within Binance's limit
        assert klines_starts(exchange, path) == [first, first + 1000 * HOUR]
        assert {int(r.params["limit"]) for r in exchange.requests(path)} == {1000}


def test_a_real_exchange_halt_is_recorded_with_skip_and_refused_with_fail(exchange: FakeBinance,
                                                                          tmp_path: Path) -> None:
    start, end = HALT - 80 * HOUR, HALT + 40 * HOUR
    spot = order(tmp_path, "spot", (BTC, "ETH/USDT"), start=start, end=end)

    with pytest.raises(DataError, match=r"binance_spot_BTC-USDT_1h\.parquet \(BTC/USDT\) has 1 gap.*2023-03-24T13:00"):
        fetch(exchange, spot)
    assert list(spot.data_dir.iterdir()) == []

    reports = fetch(exchange, order(tmp_path, "spot", (BTC, "ETH/USDT"), start=start, end=end, on_gap="skip"))

    assert [[(i.ts, i.kind) for i in r.issues] for r in reports] == [[(HALT, "gap")], [(HALT, "gap")]]
    assert_same_market(load_market("spot", [BTC, "ETH/USDT"], "1h", on_gap="skip", data_dir=spot.data_dir),
                       load_market("spot", [BTC, "ETH/USDT"], "1h", on_gap="skip", start_ms=start, end_ms=end))


def test_a_gap_refused_mid_download_keeps_the_pages_stored_before_it(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.faults.gap(BTC_PERP, JAN_1 + 1200 * HOUR)
    request = order(tmp_path, symbols=(BTC_PERP,))

    with pytest.raises(DataError, match=r"BTC-USDT-USDT_1h\.parquet \(BTC/USDT:USDT\) has 1 gap.*2024-02-20T00:00"):
        fetch(exchange, request)

    stored, _ = load_bars(request.data_dir / "binance_futures_BTC-USDT-USDT_1h.parquet", BTC_PERP, "1h",
                          on_gap="fail")
    assert stored.ts[0] == JAN_1 and stored.ts[-1] == JAN_1 + 999 * HOUR
    assert [p.name for p in request.data_dir.iterdir()] == ["binance_futures_BTC-USDT-USDT_1h.parquet"]


def test_a_second_call_fetches_only_what_is_missing_after_the_last_stored_bar(exchange: FakeBinance,
                                                                              tmp_path: Path) -> None:
    fetch(exchange, order(tmp_path, end=None))
    seen = {path: len(exchange.requests(path)) for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines",
                                                           "/fapi/v1/fundingRate")}
    exchange.clock.advance(5 * HOUR + 10 * 60_000)

    reports = fetch(exchange, order(tmp_path, end=None))

    assert [(r.series, r.added) for r in reports] == [("candles", 5), ("mark", 5), ("funding", 0)] * 2
    for path in ("/fapi/v1/klines", "/fapi/v1/markPriceKlines"):
        for symbol in ("BTCUSDT", "ETHUSDT"):
            assert klines_starts(exchange, path, symbol, seen[path]) == [MAR_1]
    assert klines_starts(exchange, "/fapi/v1/fundingRate", "BTCUSDT", seen["/fapi/v1/fundingRate"]) == [MAR_1 + 1]
    assert_same_market(load_market("futures", PERPS, "1h", on_gap="fail", data_dir=tmp_path / "data"),
                       load_market("futures", PERPS, "1h", on_gap="fail", start_ms=JAN_1, end_ms=MAR_1 + 5 * HOUR))


def test_an_earlier_start_fills_in_before_the_first_stored_bar(exchange: FakeBinance, tmp_path: Path) -> None:
    fetch(exchange, order(tmp_path, "spot", (BTC,), start=JAN_1 + 240 * HOUR, end=JAN_1 + 480 * HOUR))
    before = len(exchange.requests("/api/v3/klines"))

    fetch(exchange, order(tmp_path, "spot", (BTC,), start=JAN_1, end=JAN_1 + 480 * HOUR))

    assert klines_starts(exchange, "/api/v3/klines", since=before) == [JAN_1]
    assert_same_market(load_market("spot", [BTC], "1h", on_gap="fail", data_dir=tmp_path / "data"),
                       load_market("spot", [BTC], "1h", on_gap="fail", start_ms=JAN_1, end_ms=JAN_1 + 480 * HOUR))


def test_the_forming_candle_is_offered_but_never_stored(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.clock.set(MAR_1 + 30 * 60_000)

    [report] = fetch(exchange, order(tmp_path, "spot", (BTC,), start=MAR_1 - 48 * HOUR, end=None))
    with connect("spot", ConnectionConfig(base_url=exchange.base_url, rate_limit_ms=1)) as client:
        offered = client.candles(BTC, "1h", MAR_1 - HOUR)

    assert [row[0] for row in offered] == [MAR_1 - HOUR, MAR_1]
    assert report.last_ts == MAR_1 - HOUR and report.rows == 48
    assert_same_market(load_market("spot", [BTC], "1h", on_gap="fail", data_dir=tmp_path / "data"),
                       load_market("spot", [BTC], "1h", on_gap="fail", start_ms=MAR_1 - 48 * HOUR, end_ms=MAR_1))


def test_a_late_candle_is_stored_once_the_exchange_serves_it(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.faults.late(BTC, MAR_1 - HOUR, delay_ms=5 * 60_000)  # closes at 00:00, served from 00:05
    exchange.clock.set(MAR_1 + 2 * 60_000)
    request = order(tmp_path, "spot", (BTC,), start=MAR_1 - 24 * HOUR, end=None)

    [early] = fetch(exchange, request)
    exchange.clock.set(MAR_1 + 6 * 60_000)
    before = len(exchange.requests("/api/v3/klines"))
    [late] = fetch(exchange, request)

    assert early.last_ts == MAR_1 - 2 * HOUR
    assert (late.added, late.last_ts) == (1, MAR_1 - HOUR)
    assert klines_starts(exchange, "/api/v3/klines", since=before) == [MAR_1 - HOUR]


def test_a_5xx_is_retried_and_the_download_completes(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.faults.error("/fapi/v1/klines", 503, times=2, skip=1)
    request = order(tmp_path, symbols=(BTC_PERP,), start=MAR_1 - 1200 * HOUR)

    fetch(exchange, request)

    klines = exchange.requests("/fapi/v1/klines")
    assert [r.status for r in klines] == [200, 503, 503, 200]
    assert len({r.params["startTime"] for r in klines[1:]}) == 1  # the same page, asked again
    assert_same_market(load_market("futures", [BTC_PERP], "1h", on_gap="fail", data_dir=request.data_dir),
                       load_market("futures", [BTC_PERP], "1h", on_gap="fail", start_ms=request.start_ms,
                                   end_ms=MAR_1))


def test_a_429_waits_for_retry_after_before_asking_again(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.faults.rate_limit("/api/v3/klines", retry_after_s=1, skip=1)

    [report] = fetch(exchange, order(tmp_path, "spot", (BTC,), start=MAR_1 - 1100 * HOUR))

    first, limited, retried = exchange.requests("/api/v3/klines")[:3]
    assert (limited.status, retried.status) == (429, 200)
    assert retried.params["startTime"] == limited.params["startTime"] == str(MAR_1 - 100 * HOUR)
    assert retried.arrived_s - limited.arrived_s >= 1.0  # by the server's clock, not ours
    assert report.rows == 1100


def test_a_request_that_times_out_is_asked_again(exchange: FakeBinance, tmp_path: Path) -> None:
    exchange.faults.stall("/api/v3/klines", seconds=2.0)

    [report] = fetch(exchange, order(tmp_path, "spot", (BTC,), start=MAR_1 - 24 * HOUR), timeout_ms=200)

    assert [r.params["startTime"] for r in exchange.requests("/api/v3/klines")] == [str(MAR_1 - 24 * HOUR)] * 2
    assert report.rows == 24


def test_any_timeframe_binance_serves_is_downloaded(exchange: FakeBinance, tmp_path: Path) -> None:
    request = order(tmp_path, "spot", (BTC,), timeframe="15m", start=JAN_1, end=JAN_1 + 14 * 24 * HOUR)

    [report] = fetch(exchange, request)

    fifteen, _ = load_bars(report.path, BTC, "15m", on_gap="fail")
    five, _ = load_bars(catalog().candles("spot", BTC, "5m"), BTC, "5m", on_gap="fail",
                        start_ms=JAN_1, end_ms=JAN_1 + 14 * 24 * HOUR)
    assert report.path.name == "binance_spot_BTC-USDT_15m.parquet" and len(fifteen) == 1344
    assert np.array_equal(fifteen.open, five.open[::3]) and np.array_equal(fifteen.close, five.close[2::3])
    assert np.array_equal(fifteen.high, five.high.reshape(-1, 3).max(axis=1))
    assert np.array_equal(fifteen.low, five.low.reshape(-1, 3).min(axis=1))


def test_a_terminal_gets_a_progress_bar(exchange: FakeBinance, tmp_path: Path) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    with connect("spot", ConnectionConfig(base_url=exchange.base_url, rate_limit_ms=1)) as client:
        download(order(tmp_path, "spot", (BTC,), start=MAR_1 - 1500 * HOUR), client, progress=Progress(screen))

    drawn = screen.getvalue().split("\r")
    assert any("BTC/USDT 1h candles [" in line and " 67% 1000/~1500" in line for line in drawn)
    assert any("100% 1500/~1500" in line for line in drawn)
    assert drawn[-1] == ""  # the line is cleared when done


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


BAD_INPUTS = {
    "unknown symbol": (["market=spot_1h", "market.symbols=[DOGE/USDT]"], "'DOGE/USDT' is not listed on Binance spot"),
    "unsupported timeframe": (["market.timeframe=7m"], "market.timeframe '7m' is not served by Binance futures"),
    "a month of candles": (["market.timeframe=1M"], "unknown timeframe '1M'"),
    "start after end": (["market.start=2024-03-01", "market.end=2024-01-01"],
                        "market.start: 2024-03-01 is after market.end 2024-01-01"),
    "not a date": (["market.start=2024-13-01"], "market.start: "),
    "data dir is a file": (["market.data_dir={file}"], "market.data_dir {file} is a file, not a folder"),
    "no data dir": (["market.data_dir=null"], "market.data_dir is required"),
    "no start and nothing stored": (["market.start=null"], "market.start is required"),
    "an exchange that does not answer": (["exchange.base_url=http://127.0.0.1:{port}"],
                                         "Binance futures (http://127.0.0.1:{port}): exchangeInfo: network error"),
    "an unknown config key": (["market.symbol=[BTC/USDT:USDT]"], "market.symbol"),
    "a corrupt stored file": (["market.start=2023-12-01"], "cannot read parquet file {data_dir}/binance_futures"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_line_naming_the_value_and_nothing_is_written(exchange: FakeBinance, tmp_path: Path,
                                                                       case: str) -> None:
    data_dir, file, port = tmp_path / "data", tmp_path / "a-file", closed_port()
    file.write_text("not a folder")
    if case == "a corrupt stored file":
        data_dir.mkdir()
        (data_dir / "binance_futures_BTC-USDT-USDT_1h.parquet").write_bytes(b"PAR1 torn")
    before = {p.name: p.read_bytes() for p in data_dir.iterdir()} if data_dir.exists() else {}
    overrides, expected = BAD_INPUTS[case]
    names = {"file": file, "port": port, "data_dir": data_dir}
    defaults = {"market.start": "2024-01-01", "market.end": "2024-01-03", "market.data_dir": str(data_dir),
                "exchange.base_url": exchange.base_url}
    given = [o.format(**names) for o in overrides]
    args = [*(f"{k}={v}" for k, v in defaults.items() if not any(o.startswith(f"{k}=") for o in given)), *given,
            "++exchange.rate_limit_ms=1", "++exchange.retries=1", "++exchange.backoff_ms=1"]
    out, err = io.StringIO(), io.StringIO()

    status = run(args, out=out, err=err)

    assert status == 2 and out.getvalue() == ""
    assert err.getvalue().startswith("ratchet-download: ") and err.getvalue().count("\n") == 1
    assert expected.format(**names) in err.getvalue()
    after = {p.name: p.read_bytes() for p in data_dir.iterdir()} if data_dir.exists() else {}
    assert after == before and file.read_text() == "not a folder"


def test_a_killed_download_leaves_valid_files_and_resumes_where_it_stopped(exchange: FakeBinance,
                                                                           tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    stuck = exchange.faults.hold("/fapi/v1/klines", skip=1)  # the second page never comes back
    command = [sys.executable, "-c", "from machine.download_cli import main; main()", "market=perp_1h",
               "market.start=2024-01-01", "market.end=2024-03-01", "market.warmup_bars=0",
               f"market.data_dir={data_dir}", f"exchange.base_url={exchange.base_url}", "++exchange.rate_limit_ms=1",
               "++download.checkpoint_s=0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        exchange.wait_for(lambda r: r.path == "/fapi/v1/klines" and r.params["startTime"] == str(JAN_1 + 1000 * HOUR),
                          timeout_s=60)
    finally:
        process.send_signal(signal.SIGKILL)
        process.communicate()
    assert process.returncode == -signal.SIGKILL

    stored = data_dir / "binance_futures_BTC-USDT-USDT_1h.parquet"
    assert [f.path for f in catalog(data_dir).files()] == [stored]
    first_page, _ = load_bars(stored, BTC_PERP, "1h", on_gap="fail")
    assert (first_page.ts[0], first_page.ts[-1]) == (JAN_1, JAN_1 + 999 * HOUR)
    torn = data_dir / f".{stored.name}.tmp-99999"  # as if killed halfway through writing
    torn.write_bytes(b"PAR1 half a file")
    stuck.set()
    seen = len(exchange.requests("/fapi/v1/klines"))

    fetch(exchange, order(tmp_path))

    assert klines_starts(exchange, "/fapi/v1/klines", "BTCUSDT", seen) == [JAN_1 + 1000 * HOUR]
    assert not torn.exists()
    assert_same_market(load_market("futures", PERPS, "1h", on_gap="fail", data_dir=data_dir),
                       load_market("futures", PERPS, "1h", on_gap="fail", start_ms=JAN_1, end_ms=MAR_1))
