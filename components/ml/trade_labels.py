"""Trade labels (meta-labelling): would the signal's long, closed by the agent's exits, have won?

The label of bar ``e`` is the outcome of a long decided at its close, as the hybrid agent and the
simulated exchange (components/exchange/sim.py) would trade it:

* entry at ``open[e + 1]``; stop ``close[e] - stop_atr * atr[e]`` and target
  ``close[e] + take_profit_atr * atr[e]``, the multiples of bar ``e``'s volatility regime
  (components/exits.py, agent.py);
* intrabar on each later bar's low and high; when one bar touches both, the stop (the worst
  case); gaps fill at the open;
* at each bar's close the stop moves up to the entry once the close is ``breakeven_at_r`` initial
  risks in profit, and trails ``trailing_atr`` ATRs below the close; the new stop holds from the
  next bar on; with the signal's ``exit_on_cross``, a cross back down exits at the next open;
* with no exit by the close of bar ``e + horizon``, the trade is valued at that close.

Label 1.0 when the trade's log return net of the round-trip ``fee`` is positive (a win, as the
ledger counts ``pnl > 0``). The label is resolved at the close of the bar the trade left in (at
the latest ``e + horizon``): computed from the bars known at ``now``, a trade still open is
unresolved, so a label never reads a bar after ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from components.exits import AtrExitsConfig
from components.indicators import ema, rsi
from components.signals import EmaCrossSignalConfig
from core.market import Bars

CHUNK = 2048  # labels computed per vectorised block: (CHUNK, horizon) arrays


class TradeLabelConfig(BaseModel):
    """The signal whose trades are labelled, the exits that close them, and which bars train.

    ``signal`` and ``exits`` are the agent's own (conf/agent/hybrid.yaml interpolates them).
    ``events``: ``signal`` trains on the bars where the signal enters (meta-labelling);
    ``every_bar`` labels a long entered at any bar, for more samples of the same outcome.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    signal: EmaCrossSignalConfig = EmaCrossSignalConfig(fast=12, slow=26, exit_on_cross=False)
    exits: AtrExitsConfig = AtrExitsConfig(trailing_atr=3.0)
    events: Literal["signal", "every_bar"] = "signal"
    slippage_bps: float = Field(1.0, ge=0, lt=10_000)  # against the trader on entry and exit, as the exchange


@dataclass(frozen=True)
class ExitSeries:
    """Per-bar inputs of the agent's exits: its ATR and its (debounced) volatility regime."""

    atr: np.ndarray
    vol_regime: np.ndarray

    @classmethod
    def from_shared(cls, shared: Mapping[str, Any], symbol: str) -> ExitSeries:
        """The series the agent's features and regime components share (``atr``, ``vol_regime``)."""
        missing = [k for k in ("atr", "vol_regime") if k not in shared.get(symbol, {})]
        if missing:
            raise ValueError(f"trade labels need the agent's shared {missing} series for {symbol}: "
                             "add the features and regime components to the agent")
        return cls(np.asarray(shared[symbol]["atr"], dtype=np.float64),
                   np.asarray(shared[symbol]["vol_regime"], dtype=np.int64))

    def head(self, n: int) -> ExitSeries:
        return ExitSeries(self.atr[:n], self.vol_regime[:n])


def ema_crosses(bars: Bars, signal: EmaCrossSignalConfig) -> np.ndarray:
    """+1 where the fast EMA crosses above the slow one on this bar, -1 below, else 0 (causal;
    both EMAs defined on this bar and the one before), as ``EmaCrossSignal`` sees them."""
    fast, slow = ema(bars.close, signal.fast), ema(bars.close, signal.slow)
    valid = ~np.isnan(fast) & ~np.isnan(slow)
    above = fast > slow
    cross = np.zeros(len(above), dtype=np.int64)
    moved = (above[1:] != above[:-1]) & valid[1:] & valid[:-1]
    cross[1:][moved] = np.where(above[1:][moved], 1, -1)
    return cross


def signal_entries(bars: Bars, signal: EmaCrossSignalConfig) -> np.ndarray:
    """Bool mask of the bars where ``EmaCrossSignal`` enters long when flat: a cross up, with RSI
    not above ``rsi_long_max``."""
    return (ema_crosses(bars, signal) > 0) & ~(rsi(bars.close, signal.rsi_period) > signal.rsi_long_max)


@dataclass(frozen=True)
class SimulatedTrades:
    """The longs decided at the close of bars ``rows``: where, at what price and with what return
    each left; ``exit_index`` is -1 (and the rest NaN) while a trade is still open in the bars given."""

    rows: np.ndarray  # signal bar e
    exit_index: np.ndarray  # the bar it left in (at the open, intrabar or, timed out, at the close)
    exit_price: np.ndarray  # slippage included
    timed_out: np.ndarray  # still open at the close of bar e + horizon: valued at that close
    net_log_return: np.ndarray  # log(exit / entry), both with slippage, minus the round-trip fee


def trade_labels(
    bars: Bars,
    series: ExitSeries,
    config: TradeLabelConfig,
    horizon: int,
    fee: float,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, resolved_at), each (n,): the label of each of ``rows`` (default: every bar) and the
    bar whose close resolves it (the trade's exit bar, or ``e + horizon``); NaN and -1 elsewhere,
    and for trades still open at the last bar given. A label reads no bar after its resolution."""
    labels, resolved_at = np.full(len(bars), np.nan), np.full(len(bars), -1, dtype=np.int64)
    trades = simulate_longs(bars, series, config, horizon, fee, rows)
    done = trades.exit_index >= 0
    labels[trades.rows[done]] = (trades.net_log_return[done] > 0).astype(np.float64)
    resolved_at[trades.rows[done]] = trades.exit_index[done]
    return labels, resolved_at


def simulate_longs(
    bars: Bars,
    series: ExitSeries,
    config: TradeLabelConfig,
    horizon: int,
    fee: float,
    rows: np.ndarray | None = None,
) -> SimulatedTrades:
    """The long decided at each of ``rows`` (default: every bar) that has a next bar to enter at and
    a defined ATR, simulated in vectorised blocks over at most ``horizon`` bars after it."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    n = len(bars)
    if len(series.atr) < n or len(series.vol_regime) < n:
        raise ValueError(f"exit series hold {len(series.atr)} bars, the market {n}")
    rows = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    rows = rows[rows + 1 < n]
    rows = rows[~np.isnan(series.atr[rows])]
    crosses_down = ema_crosses(bars, config.signal) < 0 if config.signal.exit_on_cross else None
    parts = [_simulate(bars, series, config, horizon, fee, rows[start : start + CHUNK], crosses_down)
             for start in range(0, len(rows), CHUNK)]
    if not parts:
        empty = np.zeros(0)
        return SimulatedTrades(rows, rows.copy(), empty, empty.astype(bool), empty)
    index, price, timed_out, net = (np.concatenate(col) for col in zip(*parts, strict=True))
    return SimulatedTrades(rows, index, price, timed_out, net)


def _simulate(bars: Bars, series: ExitSeries, config: TradeLabelConfig, horizon: int, fee: float,
              e: np.ndarray, crosses_down: np.ndarray | None,
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(exit index, exit price, timed out, net log return) of a long decided at each bar in ``e``."""
    exits, slip = config.exits, config.slippage_bps / 10_000
    n = len(bars)
    op, hi, lo, cl = (np.asarray(a, dtype=np.float64) for a in (bars.open, bars.high, bars.low, bars.close))
    atr = series.atr
    regime = series.vol_regime[e]
    stop0 = cl[e] - _per_regime(exits.stop_atr, regime) * atr[e]
    target = (cl[e] + _per_regime(exits.take_profit_atr, regime) * atr[e]
              if exits.take_profit_atr is not None else np.full(len(e), np.inf))
    entry = op[e + 1] * (1 + slip)
    path = e[:, None] + np.arange(1, horizon + 1)[None, :]  # bars e+1 .. e+horizon
    seen = path < n  # bars past the data are not there yet: NaN, never a hit
    path = np.minimum(path, n - 1)

    def along(a: np.ndarray) -> np.ndarray:
        return np.where(seen, a[path], np.nan)

    p_lo, p_hi, p_op, p_cl = along(lo), along(hi), along(op), along(cl)

    # the stop in force after each bar's close; the first bar trades under the initial stop
    after = np.broadcast_to(stop0[:, None], path.shape).copy()
    if exits.breakeven_at_r is not None:
        risk = np.abs(entry - stop0)
        reached = (risk[:, None] > 0) & (p_cl - entry[:, None] >= exits.breakeven_at_r * risk[:, None])
        after = np.where(np.logical_or.accumulate(reached, axis=1),
                         np.maximum(after, entry[:, None]), after)
    if exits.trailing_atr is not None:
        trail = p_cl - exits.trailing_atr * along(atr)
        trail = np.maximum.accumulate(np.where(np.isnan(trail), -np.inf, trail), axis=1)
        after = np.maximum(after, trail)
    during = np.concatenate([stop0[:, None], after[:, :-1]], axis=1)

    stopped = p_lo <= during
    hit = stopped | (p_hi >= target[:, None])
    at_open = np.zeros_like(hit)  # a market exit fills at the open, before the bar's stop and target
    if crosses_down is not None:
        at_open[:, 1:] = crosses_down[path[:, :-1]] & seen[:, 1:]
        hit |= at_open
    exited = hit.any(axis=1)
    timed_out = ~exited & seen[:, -1]
    k = np.where(exited, hit.argmax(axis=1), horizon - 1)
    r = np.arange(len(e))
    level_stop = np.minimum(p_op[r, k], during[r, k])  # a gap below the stop fills at the open
    level_target = np.maximum(p_op[r, k], target)
    exit_price = np.where(~exited, p_cl[r, k],
                          np.where(at_open[r, k], p_op[r, k], np.where(stopped[r, k], level_stop, level_target)))
    exit_price = exit_price * (1 - slip)
    resolved = exited | timed_out
    return (np.where(resolved, path[r, k], -1), np.where(resolved, exit_price, np.nan), timed_out,
            np.where(resolved, np.log(exit_price / entry), np.nan) - fee)


def _per_regime(multiples: Any, regime: np.ndarray) -> np.ndarray:
    """The multiple for each bar's volatility regime (-1 low, 0 normal, 1 high)."""
    table = np.array([multiples.low, multiples.normal, multiples.high])
    return table[np.clip(regime, -1, 1) + 1]


def label_rows(kind: Literal["signal", "every_bar"], bars: Bars, signal: EmaCrossSignalConfig) -> np.ndarray:
    """Mask of the bars a trade-labelled model learns from and predicts."""
    if kind == "every_bar":
        return np.ones(len(bars), dtype=bool)
    return signal_entries(bars, signal)
