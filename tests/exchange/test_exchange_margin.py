"""Binance USDT-M isolated margin: brackets, liquidation price, funding (shared/FUTURES.md)."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from components.exchange.margin import (
    BRACKET_TABLES,
    BRACKETS_2022_05_21,
    BRACKETS_2024_10_24,
    Bracket,
    bracket_for,
    bracket_table,
    dated_brackets,
    funding_cash_flow,
    isolated_liquidation_price,
    maintenance_margin,
)
from core.errors import ConfigError

TABLES = [
    (name, symbol, brackets)
    for name, table in BRACKET_TABLES.items()
    for symbol, brackets in table.items()
]
TABLE_IDS = [f"{name}-{symbol}" for name, symbol, _ in TABLES]


@pytest.mark.parametrize(("name", "symbol", "brackets"), TABLES, ids=TABLE_IDS)
def test_cum_follows_binance_recurrence(name, symbol, brackets):
    assert brackets[0].floor == 0 and brackets[0].cum == 0
    for previous, bracket in zip(brackets, brackets[1:], strict=False):
        assert bracket.floor == previous.cap
        expected = bracket.floor * (bracket.mmr - previous.mmr) + previous.cum
        assert bracket.cum == pytest.approx(expected, abs=1e-6)
        assert bracket.max_leverage <= previous.max_leverage


@pytest.mark.parametrize(("name", "symbol", "brackets"), TABLES, ids=TABLE_IDS)
def test_maintenance_margin_is_continuous_at_every_floor(name, symbol, brackets):
    for previous, bracket in zip(brackets, brackets[1:], strict=False):
        below = bracket.floor * previous.mmr - previous.cum
        assert maintenance_margin(brackets, bracket.floor) == pytest.approx(below, rel=1e-12)


def test_tables_are_selected_by_date():
    assert bracket_table("2024-10-24") is BRACKETS_2024_10_24
    assert bracket_table("2022-05-21") is BRACKETS_2022_05_21
    assert set(BRACKETS_2024_10_24) == {"BTC/USDT:USDT", "ETH/USDT:USDT"}


def test_unknown_table_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"'2021-01-01'.*2022-05-21.*2024-10-24"):
        bracket_table("2021-01-01")


def _ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


@pytest.mark.parametrize("symbol", ["BTC/USDT:USDT", "ETH/USDT:USDT"])
def test_by_date_takes_the_latest_table_dated_on_or_before_the_time(symbol):
    by_date = dated_brackets("by_date", symbol)
    old, new = BRACKETS_2022_05_21[symbol], BRACKETS_2024_10_24[symbol]
    assert by_date.at(_ms("2022-01-01")) is old  # before the earliest snapshot: the earliest
    assert by_date.at(_ms("2022-05-21")) is old
    assert by_date.at(_ms("2024-10-24") - 1) is old
    assert by_date.at(_ms("2024-10-24")) is new
    assert by_date.at(_ms("2026-05-16")) is new


def test_a_named_table_is_used_at_every_time():
    pinned = dated_brackets("2024-10-24", "ETH/USDT:USDT")
    assert {id(pinned.at(_ms(day))) for day in ("2020-01-01", "2022-06-01", "2026-01-01")} == {
        id(BRACKETS_2024_10_24["ETH/USDT:USDT"])
    }


def test_an_unknown_bracket_setting_or_symbol_is_refused_by_name():
    with pytest.raises(ConfigError, match=r"unknown brackets 'latest'; known: by_date, 2022-05-21, 2024-10-24"):
        dated_brackets("latest", "BTC/USDT:USDT")
    with pytest.raises(ConfigError, match=r"bracket table '2022-05-21' has no SOL/USDT:USDT; has BTC"):
        dated_brackets("by_date", "SOL/USDT:USDT")


def test_binance_text_examples_match_the_2022_btc_table():
    btc = BRACKETS_2022_05_21["BTC/USDT:USDT"]
    assert bracket_for(btc, 264_000).mmr == 0.01  # "a 264,000 USDT position has MMR 1 %"
    assert bracket_for(btc, 500_000).cum == 1_300  # "500,000 USDT ... maintenance amount 1,300"


def test_freqtrade_isolated_numbers_from_binance_example():
    # FUTURES.md §6: B1's inputs in isolated mode, the 2021 brackets, WB = 1,535,443.01.
    btc_2021 = (Bracket(1_000_000, 10_000_000, 20, 0.025, 16_300),)
    eth_2021 = (Bracket(2_000_000, 5_000_000, 10, 0.10, 135_365),)
    wallet = 1_535_443.01
    btc = isolated_liquidation_price(btc_2021, 1, 109.488, 32_481.98, wallet)
    eth = isolated_liquidation_price(eth_2021, 1, 3_683.979, 1_456.84, wallet)
    assert round(btc, 2) == 18_778.73
    assert round(eth, 2) == 1_114.78


def test_five_x_long_two_btc_at_65000():
    btc = BRACKETS_2024_10_24["BTC/USDT:USDT"]
    liquidation = isolated_liquidation_price(btc, 1, 2.0, 65_000.0, 2.0 * 65_000.0 / 5)
    assert round(liquidation, 2) == 52_236.18
    # freqtrade picks the tier by stake (26,000 -> 0.4 %, cum 0) and lands further away.
    stake_tier = (Bracket(0, math.inf, 125, 0.004, 0),)
    freqtrade = isolated_liquidation_price(stake_tier, 1, 2.0, 65_000.0, 26_000.0)
    assert round(freqtrade, 2) == 52_208.84


def test_bracket_is_taken_at_the_liquidation_price_not_at_entry():
    # 10 BTC @ 62,000 = 620,000 notional (tier 3 at entry); at the LP the notional is in tier 2.
    btc = BRACKETS_2024_10_24["BTC/USDT:USDT"]
    liquidation = isolated_liquidation_price(btc, 1, 10.0, 62_000.0, 124_000.0)
    assert liquidation == pytest.approx((124_000 + 50 - 620_000) / (10 * 0.005 - 10))
    assert bracket_for(btc, 10 * liquidation) == btc[1]


def test_a_one_x_long_cannot_be_liquidated_but_a_one_x_short_can():
    btc = BRACKETS_2024_10_24["BTC/USDT:USDT"]
    assert isolated_liquidation_price(btc, 1, 1.0, 60_000.0, 60_000.0) is None
    short = isolated_liquidation_price(btc, -1, 1.0, 60_000.0, 60_000.0)
    assert short == pytest.approx((60_000 + 50 + 60_000) / (1.005))


@given(
    table=st.sampled_from(TABLES),
    side=st.sampled_from([1, -1]),
    qty=st.floats(1e-3, 5_000.0),
    entry_price=st.floats(100.0, 150_000.0),
    leverage=st.floats(1.0, 5.0),
)
def test_margin_balance_equals_maintenance_margin_at_the_liquidation_price(
    table, side, qty, entry_price, leverage
):
    _, _, brackets = table
    assume(leverage <= bracket_for(brackets, qty * entry_price).max_leverage)  # as Binance allows
    wallet = qty * entry_price / leverage
    liquidation = isolated_liquidation_price(brackets, side, qty, entry_price, wallet)
    if liquidation is None:
        # only a long whose wallet covers the whole notional survives a fall to zero
        assert side == 1 and wallet >= qty * entry_price * (1 - 1e-12)
        return
    margin_balance = wallet + side * qty * (liquidation - entry_price)
    maintenance = maintenance_margin(brackets, qty * liquidation)
    assert margin_balance == pytest.approx(maintenance, rel=1e-9, abs=1e-6 * wallet)
    assert side * (entry_price - liquidation) > 0  # on the losing side of the entry


@pytest.mark.parametrize(
    ("side", "qty", "mark_price", "rate", "cash_flow"),
    [
        (1, 0.1, 30_000.0, 0.0001, -0.3),  # long pays when the rate is positive
        (-1, 0.1, 30_000.0, 0.0001, 0.3),  # short receives
        (1, 2.0, 2_000.0, -0.0005, 2.0),  # negative rate: long receives
        (-1, 2.0, 2_000.0, -0.0005, -2.0),  # and short pays
        (1, 1.0, 50_000.0, 0.0, 0.0),
    ],
)
def test_funding_cash_flow_sign_and_amount(side, qty, mark_price, rate, cash_flow):
    assert funding_cash_flow(side, qty, mark_price, rate) == pytest.approx(cash_flow)
