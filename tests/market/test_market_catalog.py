"""The catalog maps (kind, ccxt symbol, timeframe) to the bundled files and to user data dirs."""

from __future__ import annotations

import json
import shutil

import pyarrow.parquet as pq
import pytest

from components.market.catalog import BUNDLED_DATA_DIR, Catalog, available, catalog
from core.errors import DataError

SPOT_1H = ["ADA/USDT", "BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
PERPS = ["BTC/USDT:USDT", "ETH/USDT:USDT"]


@pytest.mark.parametrize(
    ("kind", "timeframe", "symbols"),
    [
        ("spot", "1h", SPOT_1H),
        ("spot", "5m", ["BTC/USDT", "ETH/USDT"]),
        ("spot", "1m", ["BTC/USDT", "ETH/USDT"]),
        ("futures", "1h", PERPS),
        ("futures", "5m", []),
    ],
)
def test_available_lists_the_bundled_symbols(kind: str, timeframe: str, symbols: list[str]) -> None:
    assert available(kind, timeframe) == symbols


def test_every_bundled_parquet_file_is_reachable_through_the_catalog() -> None:
    bundled = sorted(p.name for p in BUNDLED_DATA_DIR.glob("*.parquet"))
    reached = sorted(f.path.name for f in Catalog().files())
    assert reached == bundled
    assert len(bundled) == 15


def test_paths_follow_the_naming_scheme_for_candles_mark_and_funding() -> None:
    cat = Catalog()
    assert cat.candles("spot", "BTC/USDT", "1h").name == "binance_spot_BTC-USDT_1h.parquet"
    assert cat.candles("futures", "ETH/USDT:USDT", "1h").name == (
        "binance_futures_ETH-USDT-USDT_1h.parquet"
    )
    assert cat.mark("BTC/USDT:USDT", "1h").name == "binance_futures_BTC-USDT-USDT_mark_1h.parquet"
    assert cat.funding("BTC/USDT:USDT").name == "binance_futures_BTC-USDT-USDT_funding_8h.parquet"


def test_unknown_symbol_names_it_and_lists_what_is_available() -> None:
    with pytest.raises(DataError) as err:
        Catalog().candles("spot", "DOGE/USDT", "1h")
    message = str(err.value)
    assert "DOGE/USDT" in message
    assert "ADA/USDT, BTC/USDT, ETH/USDT, SOL/USDT, XRP/USDT" in message


def test_unknown_timeframe_lists_the_timeframes_of_that_kind() -> None:
    with pytest.raises(DataError) as err:
        Catalog().candles("spot", "BTC/USDT", "4h")
    assert "4h" in str(err.value)
    assert "1m, 5m, 1h" in str(err.value)


@pytest.mark.parametrize(
    ("kind", "symbol"), [("spot", "BTC/USDT:USDT"), ("futures", "BTC/USDT"), ("spot", "btcusdt")]
)
def test_a_symbol_of_the_wrong_shape_for_its_kind_is_refused(kind: str, symbol: str) -> None:
    with pytest.raises(DataError, match=symbol.replace("/", ".")):
        Catalog().candles(kind, symbol, "1h")


def test_unknown_market_kind_is_refused() -> None:
    with pytest.raises(DataError, match="margin"):
        available("margin", "1h")


def test_spot_symbols_have_no_mark_or_funding_files() -> None:
    with pytest.raises(DataError, match="BTC/USDT"):
        Catalog().mark("BTC/USDT", "1h")


def test_a_user_data_dir_with_the_same_naming_is_catalogued(tmp_path) -> None:
    for name in ("binance_futures_BTC-USDT-USDT_1h.parquet", "binance_spot_ETH-USDT_5m.parquet"):
        shutil.copy(BUNDLED_DATA_DIR / name, tmp_path / name)
    (tmp_path / "notes.parquet").write_bytes(b"not ours")  # off-scheme names are ignored

    assert available("futures", "1h", data_dir=tmp_path) == ["BTC/USDT:USDT"]
    assert available("spot", "5m", data_dir=str(tmp_path)) == ["ETH/USDT"]
    assert catalog(tmp_path).candles("spot", "ETH/USDT", "5m").parent == tmp_path
    with pytest.raises(DataError, match="no funding file for BTC/USDT:USDT"):
        catalog(tmp_path).funding("BTC/USDT:USDT")


def test_a_missing_user_data_dir_is_named(tmp_path) -> None:
    with pytest.raises(DataError, match="nowhere"):
        available("spot", "1h", data_dir=tmp_path / "nowhere")


def test_bundled_readme_says_binance_public_market_data_and_keeps_provenance() -> None:
    readme = (BUNDLED_DATA_DIR / "README.md").read_text()
    assert "Binance public market data" in readme.splitlines()[0]
    for path in BUNDLED_DATA_DIR.glob("*.parquet"):
        assert f"`{path.name}`" in readme
        source = json.loads(pq.read_schema(path).metadata[b"source"])
        assert {"repo", "commit", "path"} <= source.keys()


@pytest.mark.parametrize(("kind", "symbol", "example"), [("spot", "btc/usdt", "'BTC/USDT'"),
                                                         ("futures", "btc/usdt", "'BTC/USDT:USDT'"),
                                                         ("futures", "Btc/Usdt:Usdt", "'BTC/USDT:USDT'")])
def test_a_lowercase_symbol_is_told_that_ccxt_symbols_are_upper_case(kind: str, symbol: str, example: str) -> None:
    with pytest.raises(DataError) as err:
        Catalog().candles(kind, symbol, "1h")
    assert str(err.value) == f"symbol {symbol!r} is not upper case: ccxt {kind} symbols look like {example}"


@pytest.mark.parametrize(("kind", "symbol", "named"), [("futures", "BTC/USDT", "it is a spot symbol"),
                                                       ("spot", "BTC/USDT:USDT", "it is a perpetual")])
def test_a_symbol_of_the_other_market_kind_is_named_as_such(kind: str, symbol: str, named: str) -> None:
    with pytest.raises(DataError, match=f"does not fit a {kind} market: {named}"):
        Catalog().candles(kind, symbol, "1h")
