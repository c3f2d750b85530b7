"""The exchange tests' data comes from the package, and its loss fails them by name."""

from __future__ import annotations

import pytest

from components.market.catalog import BUNDLED_DATA_DIR
from tests.exchange.conftest import data_file


def test_a_missing_bundled_data_file_fails_naming_it_instead_of_skipping():
    with pytest.raises(pytest.fail.Exception, match=r"binance_futures_SOL-USDT-USDT_1h\.parquet is missing"):
        data_file("binance_futures_SOL-USDT-USDT_1h.parquet")


def test_the_exchange_tests_read_the_bundled_files_not_another_copy():
    name = "binance_futures_BTC-USDT-USDT_mark_1h.parquet"
    assert data_file(name) == BUNDLED_DATA_DIR / name
