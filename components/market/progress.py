"""A one-line progress bar for long downloads: drawn on a terminal, silent when output is piped."""

from __future__ import annotations

import io
from typing import TextIO


class Progress:
    """``start(label, total)``, ``advance(n)`` as work lands, ``done()`` to clear the line."""

    def __init__(self, stream: TextIO, *, enabled: bool | None = None, width: int = 28):
        self.stream = stream
        self.enabled = _is_terminal(stream) if enabled is None else enabled
        self.width = width
        self.label, self.total, self.count, self._drawn = "", 0, 0, 0

    @classmethod
    def silent(cls) -> Progress:
        return cls(io.StringIO(), enabled=False)

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.count = label, max(total, 0), 0
        self._draw()

    def advance(self, n: int) -> None:
        self.count += n
        self._draw()

    def done(self) -> None:
        if self.enabled and self._drawn:
            self.stream.write("\r" + " " * self._drawn + "\r")
            self.stream.flush()
            self._drawn = 0

    def _draw(self) -> None:
        if not self.enabled:
            return
        share = min(1.0, self.count / self.total) if self.total else 0.0
        filled = round(share * self.width)
        line = f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {share:4.0%} {self.count}/~{self.total}"
        self.stream.write("\r" + line.ljust(self._drawn))
        self.stream.flush()
        self._drawn = len(line)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False
