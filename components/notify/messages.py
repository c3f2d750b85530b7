"""What an agent tells its people: message kinds, typed payloads, and their plain-text form.

Callers build a ``Heartbeat`` or an ``Alert`` from the agent's facts and ledger rows; the
``alert_for_*`` functions map a transition or adjustment row to the alert it deserves, or None.
Texts are plain (no Markdown or HTML), so nothing in a reason or a symbol needs escaping.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

BREAKER_TAG = "breaker"  # a state that stops new entries until a cooldown passes
HALT_TAG = "halt"  # a state only an operator's resume lifts
_STOPPED = frozenset({BREAKER_TAG, HALT_TAG})
_VALUE_CHARS = 240  # an adjustment's from/to value beyond this is cut
_TRUNCATED = "\n[truncated: {} more characters]"


class MessageKind(StrEnum):
    """The ``kind`` column of a notifications row."""

    HEARTBEAT = "heartbeat"
    BREAKER_TRIP = "breaker_trip"
    HALT = "halt"
    RESUME = "resume"
    FALLBACK = "fallback"
    RETRAIN_PROMOTED = "retrain_promoted"
    RETRAIN_REJECTED = "retrain_rejected"
    PARAM_PROMOTION = "param_promotion"
    PARAM_ROLLBACK = "param_rollback"
    RECONCILIATION = "reconciliation"
    EXCHANGE_ERRORS = "exchange_errors"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")


@dataclass(frozen=True)
class Message:
    """One text for every channel; ``ts`` is the agent's clock (ms UTC) when it was raised."""

    kind: MessageKind
    agent: str
    ts: int
    text: str


@dataclass(frozen=True)
class OpenPosition:
    symbol: str
    side: str  # long or short
    qty: float
    entry_price: float
    unrealized: float | None = None  # in the quote currency


@dataclass(frozen=True)
class LearningAdjustment:
    """An ``adjustments`` row as a heartbeat shows it: what changed, from what, to what, and why."""

    ts: int
    kind: str
    before: Any
    after: Any
    reason: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> LearningAdjustment:
        return cls(int(row["ts"]), str(row["kind"]), _decoded(row.get("before")), _decoded(row.get("after")),
                   str(row.get("reason") or ""))


@dataclass(frozen=True)
class Heartbeat:
    """The periodic 'still here' with what a person checks first."""

    agent: str
    mode: str
    market: str
    ts: int
    state: str
    state_since: int
    equity: float
    previous_equity: float | None  # at the last heartbeat; None for the first
    positions: tuple[OpenPosition, ...] = ()
    last_adjustment: LearningAdjustment | None = None
    model_version: str | None = None  # None: the agent has no model
    model_hit_rate: float | None = None  # share of recent resolved predictions that were right
    quote: str = "USDT"

    def message(self) -> Message:
        lines = [
            f"HEARTBEAT {self.agent} | {self.mode} | {self.market} | {format_utc(self.ts)}",
            f"state: {self.state} since {format_utc(self.state_since)} ({_duration(self.ts - self.state_since)})",
            f"equity: {self.equity:,.2f} {self.quote} ({self._change()})",
            f"open positions: {len(self.positions)}",
        ]
        for p in self.positions:
            pnl = "" if p.unrealized is None else f", unrealized {p.unrealized:+,.2f}"
            lines.append(f"  {p.symbol} {p.side} {p.qty:g} @ {p.entry_price:,.6g}{pnl}")
        a = self.last_adjustment
        if a is None:
            lines.append("last adjustment: none")
        else:
            lines.append(f"last adjustment: {a.kind} at {format_utc(a.ts)}")
            lines.append(f"  from {_value(a.before)} to {_value(a.after)}")
            if a.reason:
                lines.append(f"  why: {a.reason}")
        lines.append(self._model())
        return Message(MessageKind.HEARTBEAT, self.agent, self.ts, "\n".join(lines))

    def _change(self) -> str:
        if self.previous_equity is None:
            return "first heartbeat"
        diff = self.equity - self.previous_equity
        pct = f" {diff / self.previous_equity:+.2%}" if self.previous_equity else ""
        return f"{diff:+,.2f}{pct} since the last heartbeat"

    def _model(self) -> str:
        if self.model_version is None:
            return "model: none"
        rate = "n/a" if self.model_hit_rate is None else f"{self.model_hit_rate:.1%}"
        return f"model: {self.model_version}, recent hit rate {rate}"


@dataclass(frozen=True)
class Alert:
    """Something a person should hear about at once."""

    kind: MessageKind
    agent: str
    ts: int
    text: str  # what happened and why

    def message(self) -> Message:
        return Message(self.kind, self.agent, self.ts,
                       f"ALERT {self.kind.label} | {self.agent} | {format_utc(self.ts)}\n{self.text}")


def alert_for_transition(row: Mapping[str, Any], state_tags: Mapping[str, Collection[str]]) -> Alert | None:
    """The alert a ``transitions`` row deserves, given each state's declared tags (``breaker``, ``halt``).

    Entering a halt state is a halt; entering a breaker state from a trading state is a trip; leaving
    the breaker and halt states for a trading one is a resume. Other moves are no news.
    """
    source, dest = str(row["source"]), str(row["dest"])
    before, after = set(state_tags.get(source, ())), set(state_tags.get(dest, ()))
    if HALT_TAG in after and HALT_TAG not in before:
        kind = MessageKind.HALT
    elif BREAKER_TAG in after and not before & _STOPPED:
        kind = MessageKind.BREAKER_TRIP
    elif before & _STOPPED and not after & _STOPPED:
        kind = MessageKind.RESUME
    else:
        return None
    reason = str(row.get("reason") or "")
    text = f"{source} -> {dest} ({row.get('trigger')})" + (f": {reason}" if reason else "")
    return Alert(kind, str(row["agent"]), int(row["ts"]), text)


_ADJUSTMENT_ALERTS = {
    "fallback": MessageKind.FALLBACK,
    "param_promotion": MessageKind.PARAM_PROMOTION,
    "param_rollback": MessageKind.PARAM_ROLLBACK,
    "reconciliation": MessageKind.RECONCILIATION,
    "exchange_errors": MessageKind.EXCHANGE_ERRORS,
}


def alert_for_adjustment(row: Mapping[str, Any]) -> Alert | None:
    """The alert an ``adjustments`` row deserves, or None for routine learning (weights, thresholds...).

    ``before``/``after`` may be values or JSON text as read back from the ledger.
    """
    kind_name = str(row["kind"])
    before, after = _decoded(row.get("before")), _decoded(row.get("after"))
    reason = str(row.get("reason") or "")
    agent, ts = str(row["agent"]), int(row["ts"])
    if kind_name == "model_retrain":
        return _retrain_alert(agent, ts, before, after, reason)
    kind = _ADJUSTMENT_ALERTS.get(kind_name)
    if kind is None:
        return None
    lines = [reason] if reason else []
    if kind is not MessageKind.FALLBACK or not reason:
        lines.append(f"from {_value(before)} to {_value(after)}")
    return Alert(kind, agent, ts, "\n".join(lines))


def _retrain_alert(agent: str, ts: int, before: Any, after: Any, reason: str) -> Alert:
    was = before.get("champion") if isinstance(before, dict) else None
    now = after.get("champion") if isinstance(after, dict) else None
    challenger = after.get("challenger", now) if isinstance(after, dict) else after
    promoted = after.get("promoted") if isinstance(after, dict) else None
    if promoted is None:  # an older row without the flag: the champion changed or it did not
        promoted = now != was
    if promoted:
        text = f"model {challenger} promoted to champion (was {was or 'none'})"
        kind = MessageKind.RETRAIN_PROMOTED
    else:
        text = f"model {challenger} rejected; {now or 'no model'} stays live"
        kind = MessageKind.RETRAIN_REJECTED
    return Alert(kind, agent, ts, text + (f": {reason}" if reason else ""))


def _decoded(value: Any) -> Any:
    """A JSON column as written (a value) or as read back from DuckDB (JSON text)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 3] + "..."


def format_utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(ms: int) -> str:
    minutes = max(ms, 0) // 60_000
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    return f"{hours}h {mins}m" if hours else f"{mins}m"


def utf16_length(text: str) -> int:
    """Length as Discord and Telegram count it: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int, max_parts: int = 5) -> list[str]:
    """Cut a text into parts of at most ``limit`` UTF-16 units (Discord 2000, Telegram 4096).

    Parts end at line breaks (the break is dropped); only a longer line is cut between characters.
    Beyond ``max_parts`` the last part ends with a note of how many characters were left out.
    """
    if utf16_length(text) <= limit:
        return [text]
    pieces: list[str] = []
    for line in text.split("\n"):
        pieces.extend(_hard_cut(line, limit))
    parts: list[str] = []
    current: str | None = None
    for piece in pieces:
        if current is not None and utf16_length(current) + 1 + utf16_length(piece) <= limit:
            current = f"{current}\n{piece}"
        else:
            if current is not None:
                parts.append(current)
            current = piece
    if current is not None:
        parts.append(current)
    if len(parts) <= max_parts:
        return parts
    rest = "\n".join(parts[max_parts - 1:])
    room = utf16_length(_TRUNCATED.format(10**12))  # the note's own length, with room for its number
    last = _hard_cut(parts[max_parts - 1], limit - room)[0]
    return [*parts[: max_parts - 1], last + _TRUNCATED.format(len(rest) - len(last))]


def _hard_cut(line: str, limit: int) -> list[str]:
    """A line longer than ``limit`` UTF-16 units, cut between characters (never inside a pair)."""
    if utf16_length(line) <= limit:
        return [line]
    out, start, units = [], 0, 0
    for i, ch in enumerate(line):
        width = 2 if ord(ch) > 0xFFFF else 1
        if units + width > limit:
            out.append(line[start:i])
            start, units = i, 0
        units += width
    out.append(line[start:])
    return out
