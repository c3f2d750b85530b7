"""Causal features, forward labels and the train/serve resolution rule.

Row ``i`` of :func:`build_features` uses ``bars[0..i]`` only, so a model scoring bar ``i`` at
its close sees nothing later. The label of bar ``i`` needs ``close[i + horizon]``: it is
*resolved* (usable for training) only once bar ``i + horizon`` has closed, see
:func:`resolved_until`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from components import indicators as ind
from core.market import Bars

DAY_MS = 86_400_000
VOLUME_LOOKBACK = 48  # bars in the volume z-score
REGIME_LOOKBACK = 288  # bars in the trend EMA and the volatility percentile (1 day of 5m bars)

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",  # log return over 1 bar
    "ret_3",
    "ret_12",
    "ret_48",
    "ret_288",
    "atr_pct",  # Wilder ATR(14) / close
    "rsi",  # Wilder RSI(14) rescaled to [-1, 1]
    "volume_z",  # z-score of log volume over VOLUME_LOOKBACK bars
    "range_pct",  # log(high / low) of the bar
    "close_pos",  # where the close sits in the bar's range, 0..1
    "trend_regime",  # log(close / EMA(REGIME_LOOKBACK))
    "vol_regime",  # percentile rank of atr_pct among the previous REGIME_LOOKBACK bars
    "tod_sin",  # time of day of the bar's close
    "tod_cos",
)
RETURN_HORIZONS = (1, 3, 12, 48, 288)


def build_features(bars: Bars) -> np.ndarray:
    """Feature matrix (n, len(FEATURE_NAMES)) float32; NaN where a lookback is not yet full."""
    close = np.asarray(bars.close, dtype=np.float64)
    high = np.asarray(bars.high, dtype=np.float64)
    low = np.asarray(bars.low, dtype=np.float64)
    volume = np.asarray(bars.volume, dtype=np.float64)

    cols = [ind.log_returns(close, h) for h in RETURN_HORIZONS]
    atr_pct = ind.atr(high, low, close, 14) / close
    cols.append(atr_pct)
    cols.append(ind.rsi(close, 14) / 50.0 - 1.0)
    cols.append(ind.zscore(np.log1p(volume), VOLUME_LOOKBACK))
    cols.append(np.log(high / low))
    span = high - low
    with np.errstate(invalid="ignore", divide="ignore"):
        cols.append(np.where(span > 0, (close - low) / span, 0.5))
    cols.append(np.log(close / ind.ema(close, REGIME_LOOKBACK)))
    cols.append(ind.rolling_percentile_rank(atr_pct, REGIME_LOOKBACK))
    # The bar is acted on at its close, so the clock feature is the close time.
    close_ts = np.asarray(bars.ts, dtype=np.int64) + bars.timeframe_ms
    phase = 2.0 * np.pi * (close_ts % DAY_MS) / DAY_MS
    cols.append(np.sin(phase))
    cols.append(np.cos(phase))
    return np.stack(cols, axis=1).astype(np.float32)


_PREFIXES: OrderedDict[int, tuple[Bars, np.ndarray]] = OrderedDict()  # id(bars): (bars, its features)
_PREFIXES_AT_MOST = 16
_PREFIXES_LOCK = threading.Lock()  # paper and live retrain on a worker thread


def prefix_features(bars: Bars, n: int) -> np.ndarray:
    """``build_features`` of the first ``n`` bars, read-only: computed once over all of ``bars`` and
    sliced. Every feature is causal (row i reads bars <= i), so a prefix's rows are the same either
    way (tests/ml/test_ml_features.py holds that on the bundled data); retrains and the rescoring after
    each no longer recompute the whole history every time."""
    if not 0 <= n <= len(bars.ts):
        raise ValueError(f"prefix of {n} bars outside 0..{len(bars.ts)}")
    with _PREFIXES_LOCK:
        known = _PREFIXES.get(id(bars))
        if known is not None and known[0] is bars:
            _PREFIXES.move_to_end(id(bars))
            return known[1][:n]
    features = build_features(bars)
    features.flags.writeable = False
    with _PREFIXES_LOCK:
        _PREFIXES[id(bars)] = (bars, features)  # holding bars keeps its id from being reused
        while len(_PREFIXES) > _PREFIXES_AT_MOST:
            _PREFIXES.popitem(last=False)
    return features[:n]


def forward_labels(bars: Bars, horizon: int, fee: float) -> np.ndarray:
    """1.0 where log(close[i+horizon] / close[i]) > fee, else 0.0; NaN for the last ``horizon`` rows.

    ``fee`` is the round-trip cost as a log return: the label says "a long held ``horizon``
    bars would have paid its fees".
    """
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1, got {horizon}")
    log_close = np.log(np.asarray(bars.close, dtype=np.float64))
    labels = np.full(len(log_close), np.nan)
    fwd = log_close[horizon:] - log_close[:-horizon]
    labels[: len(fwd)] = (fwd > fee).astype(np.float64)
    return labels


def resolved_until(now_index: int, horizon: int) -> int:
    """Last sample index whose label is known once bar ``now_index`` has closed.

    Train/serve rule: at ``now`` a sample ``i`` may be trained on only if ``i + horizon <=
    now_index``; later samples' labels would read bars the agent has not seen. Returns -1 when
    no sample is resolved yet.
    """
    return max(now_index - horizon, -1)


def last_closed_index(bars: Bars, now_ts: int) -> int:
    """Index of the last bar complete at ``now_ts`` (open time + timeframe <= now), or -1."""
    return int(np.searchsorted(bars.ts, now_ts - bars.timeframe_ms, side="right")) - 1


def windows(features: np.ndarray, idx: np.ndarray, length: int) -> np.ndarray:
    """Sequences ``features[i-length+1 .. i]`` for each ``i`` in ``idx``: (batch, length, F)."""
    idx = np.asarray(idx, dtype=np.int64)
    if idx.size and (idx.min() < length - 1 or idx.max() >= len(features)):
        raise ValueError(f"window indices must lie in [{length - 1}, {len(features) - 1}]")
    return features[idx[:, None] + np.arange(1 - length, 1)[None, :]]


def complete_rows(features: np.ndarray, length: int) -> np.ndarray:
    """Mask of rows whose whole window of ``length`` rows is free of NaN."""
    bad = np.isnan(features).any(axis=1).astype(np.int64)
    bad_in_window = np.convolve(bad, np.ones(length, dtype=np.int64))[: len(bad)]
    ok = bad_in_window == 0
    ok[: length - 1] = False
    return ok
