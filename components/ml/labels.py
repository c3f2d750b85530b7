"""What a sample's label says, and which bars are samples: the bar label or the trade label.

* ``bar``: the log return over ``horizon`` bars beats the round-trip ``fee`` (every bar a sample);
* ``trade``: the signal's long, closed by the agent's exits within ``horizon`` bars, wins net of
  the fee (``trade_labels.py``); samples are the signal's entries, or every bar.

A bar label is resolved once bar ``i + horizon`` has closed; a trade label once the trade has
left (at the latest at ``i + horizon``). Neither reads a bar after the one that resolves it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from components.ml.features import forward_labels
from components.ml.trade_labels import ExitSeries, TradeLabelConfig, label_rows, trade_labels
from core.market import Bars

LabelKind = Literal["trade", "bar"]


@dataclass(frozen=True)
class LabelRule:
    kind: LabelKind
    horizon: int
    fee: float
    trade: TradeLabelConfig
    exit_series: Mapping[str, ExitSeries] | None = None  # per symbol; the trade label needs them

    def __post_init__(self) -> None:
        if self.kind == "trade" and self.exit_series is None:
            raise ValueError("the trade label needs the agent's exit series (ATR and volatility regime)")

    def rows(self, bars: Bars) -> np.ndarray:
        """Mask of the bars that are samples (and predictions) under this label."""
        if self.kind == "bar":
            return np.ones(len(bars), dtype=bool)
        return label_rows(self.trade.events, bars, self.trade.signal)

    def resolve(self, bars: Bars, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(labels, resolved_at) of ``rows`` (a mask; default every sample row) from ``bars``: each
        label, and the bar whose close resolves it; NaN and -1 elsewhere and where unresolved."""
        rows = self.rows(bars) if rows is None else rows
        if self.kind == "bar":
            labels = forward_labels(bars, self.horizon, self.fee) if len(bars) > self.horizon \
                else np.full(len(bars), np.nan)
            labels = np.where(rows, labels, np.nan)
            resolved_at = np.where(np.isnan(labels), -1, np.arange(len(bars)) + self.horizon)
            return labels, resolved_at
        assert self.exit_series is not None
        series = self.exit_series[bars.symbol].head(len(bars))
        return trade_labels(bars, series, self.trade, self.horizon, self.fee, np.flatnonzero(rows))
