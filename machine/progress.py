"""Progress of long work on a terminal (replay bars, training epochs), silent when not a TTY.

It draws with the downloads' one-line bar (`components.market.progress.Progress`) on stderr, so
the summary on stdout stays clean when piped, and redraws only when the shown percentage moves:
a replay calls it for every bar it steps (38k on the bundled 1h data) at the cost of a comparison.

    with StepProgress("replay futures") as progress:       # the engine calls progress(done, total)
        run_replay(cfg, run_dir, progress=progress)
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

from components.market.progress import Progress


class StepProgress:
    """``progress(done, total)`` as steps finish; ``close()`` (or leaving the ``with``) clears the line."""

    def __init__(self, label: str, *, stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.bar = Progress(sys.stderr if stream is None else stream, enabled=enabled)
        self.label = label
        self._shown: tuple[int, int] | None = None  # (total, percent) last drawn

    @property
    def enabled(self) -> bool:
        return self.bar.enabled

    def __call__(self, done: int, total: int) -> None:
        if not self.bar.enabled:
            return
        shown = (total, 100 * done // total if total > 0 else 0)
        if shown == self._shown:
            return
        if self._shown is None or shown[0] != self._shown[0]:
            self.bar.start(self.label, total)
        self._shown = shown
        if done != self.bar.count:  # start() drew the bar at 0
            self.bar.advance(done - self.bar.count)

    def close(self) -> None:
        self.bar.done()
        self._shown = None

    def __enter__(self) -> StepProgress:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
