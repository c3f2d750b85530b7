"""Walk-forward stretches: the ablation's window cut at calendar boundaries, each replayed afresh.

Every stretch is a run of its own that starts with its warm-up history loaded before it (so no
stretch trades on bars another stretch learned from before it begins) and with no trades, no
Kelly, no model: what each arm learns, it learns inside the stretch. ``all`` is one run over the
whole window, warm-up included, exactly as ``ratchet`` replays it.

The window is ``market.start`` .. ``market.end`` when given; otherwise the first bar that has the
agent's warm-up history behind it (rounded up to a UTC midnight) .. the end of the data.
Stretch names start with a letter (Hydra reads ``2023`` as a number, not an option name):
``y2023``, ``h2023-2``, ``q2023-3``, ``m2023-07``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from components.market.timeframes import timeframe_ms
from core.errors import ConfigError
from machine.config import RunConfig
from machine.engine import build_components, load_run_market, warmup_bars

Every = Literal["all", "year", "half", "quarter", "month"]
EVERY: tuple[str, ...] = ("all", "year", "half", "quarter", "month")
DAY_MS = 86_400_000
_MONTHS = {"year": 12, "half": 6, "quarter": 3, "month": 1}


@dataclass(frozen=True)
class Stretch:
    """One held-out stretch: a name (a config group option) and its market window."""

    name: str
    start: str | None  # ISO date or time, UTC, inclusive; None: the data's first bar
    end: str | None  # exclusive; None: the data's last bar

    def config(self) -> dict[str, Any]:
        return {"market": {"start": self.start, "end": self.end}}


def plan_stretches(cfg: RunConfig, every: str) -> list[Stretch]:
    """The window of ``cfg`` cut into consecutive stretches at ``every`` calendar boundary."""
    if every not in EVERY:
        raise ConfigError(f"--stretch {every!r}: choose one of {', '.join(EVERY)}")
    if every == "all":
        return [Stretch("all", cfg.market.start, cfg.market.end)]
    first, last = _window(cfg)
    cuts = [first, *(b for b in _boundaries(first, last, _MONTHS[every]) if first < b < last), last]
    stretches = []
    for begin, finish in zip(cuts, cuts[1:], strict=False):
        end = cfg.market.end if finish == last else _iso(finish)
        stretches.append(Stretch(_name(every, begin), _iso(begin), end))
    return stretches


def _window(cfg: RunConfig) -> tuple[int, int]:
    """The first and the end (exclusive) open time, in ms, the stretches cover."""
    market = load_run_market(cfg)
    tf = timeframe_ms(cfg.market.timeframe)
    start, _ = cfg.market.window_ms()
    if start is None:
        ready = int(market.ts[0]) + warmup_bars(cfg, build_components(cfg), tf) * tf
        start = -(-ready // DAY_MS) * DAY_MS  # the first UTC midnight with the warm-up behind it
    end = int(market.ts[-1]) + tf
    if start >= end:
        raise ConfigError(f"market: no bars left for the ablation after the agent's warm-up (data ends "
                          f"{_iso(end)}); give an earlier market.start or more data")
    return start, end


def _boundaries(first: int, last: int, months: int) -> list[int]:
    """Calendar boundaries every ``months`` months (aligned to January) from ``first``'s year on."""
    year = _utc(first).year
    out, month = [], 1
    while True:
        moment = int(datetime(year, month, 1, tzinfo=UTC).timestamp() * 1000)
        if moment >= last:
            return out
        out.append(moment)
        month += months
        if month > 12:
            year, month = year + 1, month - 12


def _name(every: str, ms: int) -> str:
    t = _utc(ms)
    if every == "year":
        return f"y{t.year}"
    if every == "half":
        return f"h{t.year}-{(t.month - 1) // 6 + 1}"
    if every == "quarter":
        return f"q{t.year}-{(t.month - 1) // 3 + 1}"
    return f"m{t.year}-{t.month:02d}"


def _utc(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _iso(ms: int) -> str:
    t = _utc(ms)
    return t.strftime("%Y-%m-%d") if ms % DAY_MS == 0 else t.strftime("%Y-%m-%dT%H:%M:%S")
