"""Fixtures: real BTC 5m bars, planted-signal bars and one small trained version."""

from __future__ import annotations

import pytest

from components.ml.version import EnsembleVersion
from core.market import Bars
from tests.ml.ml_support import end_ts, planted_bars, read_bars, tiny_retrainer


@pytest.fixture(scope="session")
def btc_bars() -> Bars:
    return read_bars("binance_spot_BTC-USDT_5m.parquet", "BTC/USDT")


@pytest.fixture(scope="session")
def planted() -> dict[str, Bars]:
    return {"SYN/USDT": planted_bars(10, seed=1)}


@pytest.fixture(scope="session")
def good_version(planted: dict[str, Bars]) -> EnsembleVersion:
    return tiny_retrainer().train_challenger(planted, end_ts(planted["SYN/USDT"]))
