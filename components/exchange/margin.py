"""Binance USDT-M isolated-margin arithmetic: brackets, maintenance margin, liquidation, funding.

Formulas and tables follow shared/FUTURES.md (§2 margin, §3.2 isolated liquidation price, §4
funding, §5 bracket tables). Binance publishes no history of its brackets; the package holds two
dated snapshots. By default (``by_date``) a replay uses, at each bar, the latest snapshot dated on
or before it (``dated_brackets``); naming one snapshot pins it for every bar (what-if runs).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime

from core.errors import ConfigError, ExchangeError


@dataclass(frozen=True, slots=True)
class Bracket:
    """One notional tier: ``floor <= notional < cap`` (USDT), Binance ``leverageBracket`` row.

    ``cum`` is Binance's maintenance amount, so maintenance margin = notional * mmr - cum.
    """

    floor: float
    cap: float
    max_leverage: float
    mmr: float
    cum: float


Brackets = tuple[Bracket, ...]

# Columns: floor, cap, max leverage, MMR, cum (FUTURES.md §5.1: freqtrade @ 3d9514d26).
_BTC_2024_10_24 = (
    (0, 50_000, 125, 0.004, 0),
    (50_000, 600_000, 100, 0.005, 50),
    (600_000, 3_000_000, 75, 0.0065, 950),
    (3_000_000, 12_000_000, 50, 0.01, 11_450),
    (12_000_000, 70_000_000, 25, 0.02, 131_450),
    (70_000_000, 100_000_000, 20, 0.025, 481_450),
    (100_000_000, 230_000_000, 10, 0.05, 2_981_450),
    (230_000_000, 480_000_000, 5, 0.10, 14_481_450),
    (480_000_000, 600_000_000, 4, 0.125, 26_481_450),
    (600_000_000, 800_000_000, 3, 0.15, 41_481_450),
    (800_000_000, 1_200_000_000, 2, 0.25, 121_481_450),
    (1_200_000_000, 1_800_000_000, 1, 0.50, 421_481_450),
)
_ETH_2024_10_24 = (
    (0, 50_000, 125, 0.004, 0),
    (50_000, 600_000, 100, 0.005, 50),
    (600_000, 3_000_000, 75, 0.0065, 950),
    (3_000_000, 12_000_000, 50, 0.01, 11_450),
    (12_000_000, 50_000_000, 25, 0.02, 131_450),
    (50_000_000, 65_000_000, 20, 0.025, 381_450),
    (65_000_000, 150_000_000, 10, 0.05, 2_006_450),
    (150_000_000, 320_000_000, 5, 0.10, 9_506_450),
    (320_000_000, 400_000_000, 4, 0.125, 17_506_450),
    (400_000_000, 530_000_000, 3, 0.15, 27_506_450),
    (530_000_000, 800_000_000, 2, 0.25, 80_506_450),
    (800_000_000, 1_200_000_000, 1, 0.50, 280_506_450),
)
# FUTURES.md §5.2: freqtrade @ 963cc17c1.
_BTC_2022_05_21 = (
    (0, 50_000, 125, 0.004, 0),
    (50_000, 250_000, 100, 0.005, 50),
    (250_000, 1_000_000, 50, 0.01, 1_300),
    (1_000_000, 10_000_000, 20, 0.025, 16_300),
    (10_000_000, 20_000_000, 10, 0.05, 266_300),
    (20_000_000, 50_000_000, 5, 0.10, 1_266_300),
    (50_000_000, 100_000_000, 4, 0.125, 2_516_300),
    (100_000_000, 200_000_000, 3, 0.15, 5_016_300),
    (200_000_000, 300_000_000, 2, 0.25, 25_016_300),
    (300_000_000, math.inf, 1, 0.50, 100_016_300),
)
_ETH_2022_05_21 = (
    (0, 10_000, 100, 0.005, 0),
    (10_000, 100_000, 75, 0.0065, 15),
    (100_000, 500_000, 50, 0.01, 365),
    (500_000, 1_500_000, 25, 0.02, 5_365),
    (1_500_000, 4_000_000, 10, 0.05, 50_365),
    (4_000_000, 10_000_000, 5, 0.10, 250_365),
    (10_000_000, 20_000_000, 4, 0.125, 500_365),
    (20_000_000, 40_000_000, 3, 0.15, 1_000_365),
    (40_000_000, 150_000_000, 2, 0.25, 5_000_365),
    (150_000_000, 500_000_000, 1, 0.50, 42_500_365),
)


def _tiers(rows: tuple[tuple[float, float, float, float, float], ...]) -> Brackets:
    return tuple(Bracket(float(f), float(c), float(lev), mmr, float(cum)) for f, c, lev, mmr, cum in rows)


BRACKETS_2024_10_24: dict[str, Brackets] = {
    "BTC/USDT:USDT": _tiers(_BTC_2024_10_24),
    "ETH/USDT:USDT": _tiers(_ETH_2024_10_24),
}
BRACKETS_2022_05_21: dict[str, Brackets] = {
    "BTC/USDT:USDT": _tiers(_BTC_2022_05_21),
    "ETH/USDT:USDT": _tiers(_ETH_2022_05_21),
}
BRACKET_TABLES: dict[str, dict[str, Brackets]] = {
    "2024-10-24": BRACKETS_2024_10_24,
    "2022-05-21": BRACKETS_2022_05_21,
}


BY_DATE = "by_date"  # the bracket setting that follows the dated snapshots through time
BRACKET_SETTINGS = (BY_DATE, *sorted(BRACKET_TABLES))


def bracket_table(name: str) -> dict[str, Brackets]:
    """The dated bracket table ``name`` (e.g. '2024-10-24'), keyed by ccxt symbol."""
    try:
        return BRACKET_TABLES[name]
    except KeyError:
        known = ", ".join(sorted(BRACKET_TABLES))
        raise ConfigError(f"unknown bracket table {name!r}; known: {known}") from None


def unknown_bracket_setting(name: str) -> str | None:
    """Why ``name`` is not a bracket setting (None when it is one): 'by_date' or a table's date."""
    if name in BRACKET_SETTINGS:
        return None
    return f"unknown brackets {name!r}; known: {', '.join(BRACKET_SETTINGS)}"


@dataclass(frozen=True, slots=True)
class DatedBrackets:
    """One symbol's bracket tables, each in force from its date (ms UTC, ascending)."""

    since: tuple[int, ...]
    tables: tuple[Brackets, ...]

    def at(self, ts: int) -> Brackets:
        """The table in force at ``ts``: the latest dated on or before it.

        Times before the earliest snapshot (2022-01 .. 2022-05-20 in the bundled data) get the
        earliest one: it is the nearest known table, not a record of what Binance used then.
        """
        return self.tables[max(bisect_right(self.since, ts) - 1, 0)]


def dated_brackets(setting: str, symbol: str) -> DatedBrackets:
    """``symbol``'s brackets under ``setting``: 'by_date' follows every snapshot from its date
    (UTC midnight); a snapshot's date (e.g. '2024-10-24') applies that table to every bar."""
    reason = unknown_bracket_setting(setting)
    if reason is not None:
        raise ConfigError(reason)
    names = sorted(BRACKET_TABLES) if setting == BY_DATE else [setting]
    missing = [name for name in names if symbol not in BRACKET_TABLES[name]]
    if missing:
        has = ", ".join(BRACKET_TABLES[missing[0]])
        raise ConfigError(f"bracket table {missing[0]!r} has no {symbol}; has {has}")
    since = tuple(_midnight_ms(name) for name in names) if setting == BY_DATE else (0,)
    return DatedBrackets(since, tuple(BRACKET_TABLES[name][symbol] for name in names))


def _midnight_ms(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp() * 1000)


def bracket_for(brackets: Brackets, notional: float) -> Bracket:
    """The tier holding ``notional``; the last tier is open-ended (larger notionals use it)."""
    if notional < 0:
        raise ExchangeError(f"notional must be >= 0, got {notional}")
    for bracket in brackets:
        if notional < bracket.cap:
            return bracket
    return brackets[-1]


def maintenance_margin(brackets: Brackets, notional: float) -> float:
    """Maintenance margin of a position of this notional (mark price * qty): N * MMR - cum."""
    bracket = bracket_for(brackets, notional)
    return notional * bracket.mmr - bracket.cum


_TIER_TOLERANCE = 1e-9  # relative slack at tier edges, where both tiers give the same root


def isolated_liquidation_price(
    brackets: Brackets, side: int, qty: float, entry_price: float, wallet_balance: float
) -> float | None:
    """Mark price at which margin balance falls to maintenance margin (one-way, isolated).

    Solves ``WB + side*Q*(P - EP) = Q*P*MMR - cum`` (FUTURES.md §3.2) with the tier evaluated
    at the liquidation price itself: each tier's root is tried and the one whose notional
    ``Q*LP`` lies in that tier is kept (the root is unique). None when no positive root exists,
    e.g. a 1x long, which cannot be liquidated.
    """
    if qty <= 0:
        raise ExchangeError(f"qty must be > 0, got {qty}")
    last = len(brackets) - 1
    for k, bracket in enumerate(brackets):
        price = (wallet_balance + bracket.cum - side * qty * entry_price) / (
            qty * bracket.mmr - side * qty
        )
        if price <= 0:
            continue
        notional = qty * price
        in_floor = notional >= bracket.floor * (1 - _TIER_TOLERANCE)
        in_cap = k == last or notional < bracket.cap * (1 + _TIER_TOLERANCE)
        if in_floor and in_cap:
            return price
    return None


def funding_cash_flow(side: int, qty: float, mark_price: float, rate: float) -> float:
    """Cash to the account at one settlement: longs pay when rate > 0, shorts receive."""
    return -side * qty * mark_price * rate
