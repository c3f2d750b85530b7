"""How figures read on a page: percentages, money, durations and UTC times."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
YEAR_MS = 365.25 * DAY_MS


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def pct(value: Any, digits: int = 2) -> str:
    return "-" if missing(value) else f"{100 * float(value):.{digits}f}%"


def num(value: Any, digits: int = 2) -> str:
    return "-" if missing(value) else f"{float(value):,.{digits}f}"


def ratio(value: Any) -> str:
    return "-" if missing(value) else f"{float(value):.3f}"


def utc(ms: Any) -> str:
    """Milliseconds since the epoch as a UTC time, minutes precision."""
    if missing(ms):
        return "-"
    return datetime.fromtimestamp(int(ms) / 1000, UTC).strftime("%Y-%m-%d %H:%M")


def duration(ms: Any) -> str:
    """A span as days, hours and minutes: '2d 4h 10m', '45m'."""
    if missing(ms):
        return "-"
    minutes = round(float(ms) / MINUTE_MS)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{days}d"] * bool(days) + [f"{hours}h"] * bool(hours) + [f"{mins}m"] * bool(mins)
    return " ".join(parts) or "0m"
