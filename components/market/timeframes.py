"""Timeframe strings ('1m', '1h', '8h', '1d') and UTC timestamps as people read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from core.errors import DataError

_UNIT_MS = {"s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)([smhdw])$")


def timeframe_ms(timeframe: str) -> int:
    """Length of one candle in ms, e.g. ``timeframe_ms('1h') == 3_600_000``.

    Months ('1M') are refused: their length varies, so bars could not share a fixed step.
    """
    match = _TIMEFRAME.match(timeframe) if isinstance(timeframe, str) else None
    if match is None:
        raise DataError(
            f"unknown timeframe {timeframe!r}: expected a positive count and a unit "
            f"s, m, h, d or w, e.g. '1m', '5m', '1h', '8h', '1d'"
        )
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def iso_utc(ts_ms: int) -> str:
    """``1679662800000 -> '2023-03-24T13:00:00Z'`` (ms dropped when zero)."""
    moment = datetime.fromtimestamp(int(ts_ms) / 1000, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if int(ts_ms) % 1000:
        text += f".{int(ts_ms) % 1000:03d}"
    return text + "Z"
