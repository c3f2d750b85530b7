"""Repeated alerts become one summary: "fallback x7 in the last 60 min" rather than seven messages.

Windows run on the agent's clock (each message's ``ts``), so which alerts collapse is the same in
every run of the same replay. An alert whose agent and kind has no open window is sent and opens
one; repeats inside it are counted; when it ends with repeats, a summary goes out and a new window
opens, so a storm yields one message a window; a window that ends quietly just closes.
"""

from __future__ import annotations

from dataclasses import dataclass

from components.notify.messages import Message, MessageKind, format_utc


@dataclass
class _Window:
    start: int
    ends: int
    repeats: int = 0
    latest: Message | None = None


class Collapser:
    def __init__(self, window_ms: int):
        self.window_ms = window_ms
        self._windows: dict[tuple[str, MessageKind], _Window] = {}
        self._next_end: int | None = None  # the earliest open window's end: tick() is O(1) until then

    def admit(self, message: Message) -> bool:
        """True: send it now. False: a repeat, counted into the window's summary."""
        key = (message.agent, message.kind)
        window = self._windows.get(key)
        if window is not None and message.ts < window.ends:
            window.repeats += 1
            window.latest = message
            return False
        self._open(key, message.ts)
        return True

    def due(self, now: int) -> list[Message]:
        """Summaries of the windows that ended at or before ``now``."""
        if self._next_end is None or now < self._next_end:
            return []
        ended = [key for key, w in self._windows.items() if w.ends <= now]
        summaries = []
        for key in sorted(ended, key=lambda k: self._windows[k].ends):
            window = self._windows.pop(key)
            if window.repeats:
                summaries.append(self._summary(window, now))
                self._open(key, now)
        self._next_end = min((w.ends for w in self._windows.values()), default=None)
        return summaries

    def flush(self) -> list[Message]:
        """Every pending summary, now (the dispatcher is closing)."""
        windows = sorted((w for w in self._windows.values() if w.repeats), key=lambda w: w.ends)
        self._windows.clear()
        self._next_end = None
        return [self._summary(w, w.latest.ts) for w in windows if w.latest is not None]

    def _open(self, key: tuple[str, MessageKind], start: int) -> None:
        self._windows[key] = _Window(start, start + self.window_ms)
        ends = start + self.window_ms
        self._next_end = ends if self._next_end is None else min(self._next_end, ends)

    def _summary(self, window: _Window, ts: int) -> Message:
        latest = window.latest
        assert latest is not None
        label = latest.kind.label
        minutes = self.window_ms / 60_000
        body = latest.text.split("\n", 1)[-1]
        text = (f"ALERT {label} | {latest.agent} | {format_utc(ts)}\n"
                f"{label} repeated x{window.repeats} in the {minutes:g} min from {format_utc(window.start)}; "
                f"the latest at {format_utc(latest.ts)}:\n{body}")
        return Message(latest.kind, latest.agent, ts, text)
