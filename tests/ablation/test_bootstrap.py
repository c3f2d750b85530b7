"""The paired block bootstrap and the verdict, on synthetic series whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from ledger.report.fmt import HOUR_MS
from ledger.report.metrics import return_ratios
from machine.ablation.bootstrap import (
    Bootstrap,
    Curve,
    Interval,
    block_indices,
    block_length,
    figures,
    paired,
    paired_intervals,
)
from machine.ablation.verdict import verdict

HOURLY = 8766.0  # bars a year of 1h bars


def ar1(n: int, phi: float, rng: np.random.Generator, scale: float = 0.01) -> np.ndarray:
    """Autocorrelated returns around 0: trades hold for many bars, so strategy returns cluster."""
    shocks = rng.normal(0.0, scale, n)
    out = np.empty(n)
    out[0] = shocks[0]
    for k in range(1, n):
        out[k] = phi * out[k - 1] + shocks[k]
    return out


def curve(returns: np.ndarray) -> Curve:
    return Curve(returns, np.zeros(len(returns), dtype=np.int64))


def mean_of(c: Curve, rows: np.ndarray | None) -> dict[str, np.ndarray]:
    r = c.returns if rows is None else c.returns[rows]
    return {"mean": r.mean(axis=-1)}


def coverage(phi: float, block: int | None, trials: int = 200, n: int = 1600) -> float:
    """How often the 95 % interval of the paired mean difference holds the true difference (0.0005)."""
    rng = np.random.default_rng(2024)
    hits = 0
    for trial in range(trials):
        market = ar1(n, phi, rng)  # what both arms share
        full = market + ar1(n, phi, rng, 0.004) + 0.0005
        other = market + ar1(n, phi, rng, 0.004)
        got = paired(curve(full), curve(other), mean_of, Bootstrap(resamples=400, seed=trial, block=block))["mean"]
        hits += got.low <= 0.0005 <= got.high
    return hits / trials


def test_the_interval_holds_the_true_mean_difference_about_95_times_in_100():
    assert 0.90 <= coverage(phi=0.6, block=None) <= 0.99


def test_blocks_of_one_bar_miss_it_far_more_often_on_autocorrelated_returns():
    """The reason for blocks: resampling single bars of clustered returns makes intervals too narrow."""
    assert coverage(phi=0.6, block=1) < 0.85


def test_the_shared_market_cancels_in_a_paired_difference():
    rng = np.random.default_rng(1)
    market = ar1(2000, 0.3, rng, 0.02)  # large moves both arms ride
    full, other = curve(market + 0.0002), curve(market)
    got = paired_intervals(full, other, HOURLY)
    assert got["return"].low > 0 and got["sharpe"].low > 0  # an edge of 2 bp a bar, seen through the noise
    assert verdict(got["return"]) == verdict(got["sharpe"], "sharpe") == "helps"
    assert verdict(paired_intervals(other, full, HOURLY)["return"]) == "hurts"


def test_identical_curves_differ_by_exactly_nothing_in_every_resample():
    rng = np.random.default_rng(3)
    returns = ar1(500, 0.5, rng)
    trades = rng.integers(0, 2, 500)
    got = paired_intervals(Curve(returns, trades), Curve(returns.copy(), trades.copy()), HOURLY)
    assert all(v == Interval(0.0, 0.0, 0.0) for v in got.values())
    assert verdict(got["return"]) == "no evidence"


def test_the_same_seed_draws_the_same_interval_and_another_seed_another():
    rng = np.random.default_rng(4)
    full, other = curve(ar1(800, 0.5, rng)), curve(ar1(800, 0.5, rng))
    a = paired_intervals(full, other, HOURLY, Bootstrap(resamples=300, seed=11))
    assert a == paired_intervals(full, other, HOURLY, Bootstrap(resamples=300, seed=11))
    assert a != paired_intervals(full, other, HOURLY, Bootstrap(resamples=300, seed=12))


def test_blocks_are_runs_of_consecutive_bars_of_the_square_root_of_the_bars():
    assert block_length(38_000) == 195 and block_length(100) == 10 and block_length(1) == 1
    rows = next(block_indices(100, 10, 5, np.random.default_rng(0)))
    assert rows.shape == (5, 100)
    blocks = rows.reshape(5, 10, 10)
    assert ((np.diff(blocks, axis=-1) % 100) == 1).all()  # every block is 10 consecutive bars, the last wrapping
    assert rows.min() >= 0 and rows.max() <= 99


def test_the_figures_are_the_reports_own_on_the_same_equity_curve():
    rng = np.random.default_rng(5)
    returns = ar1(3000, 0.2, rng) + 0.0001
    equity = 10_000 * np.concatenate(([1.0], np.cumprod(1 + returns)))
    ts = np.arange(len(equity), dtype=np.int64) * HOUR_MS
    ratios = return_ratios(ts, equity)
    got = figures(Curve(returns, np.ones(len(returns), dtype=np.int64)), ratios["marks_per_year"])
    assert got["return"] == pytest.approx(equity[-1] / equity[0] - 1, rel=1e-9)
    assert got["sharpe"] == pytest.approx(ratios["sharpe"], rel=1e-9)
    assert got["max_drawdown"] == pytest.approx(float((1 - equity / np.maximum.accumulate(equity)).max()), rel=1e-9)
    assert got["trades"] == 3000


@pytest.mark.parametrize(("low", "high", "metric", "expected"), [
    (0.01, 0.05, "return", "helps"), (-0.05, -0.01, "return", "hurts"), (-0.01, 0.05, "return", "no evidence"),
    (0.0, 0.05, "sharpe", "no evidence"),  # an interval that touches 0 does not exclude it
    (-0.05, -0.01, "max_drawdown", "helps"),  # the full agent draws down less
    (0.01, 0.05, "max_drawdown", "hurts"),
])
def test_the_verdict_reads_which_side_of_zero_the_interval_lies_on(low, high, metric, expected):
    assert verdict(Interval((low + high) / 2, low, high), metric) == expected
