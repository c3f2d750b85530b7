"""The no-lookahead probe: replay data in which everything a decision at a bar close ``t`` must
not see is changed, and compare every ledger row known at ``t`` with an unchanged replay's."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.market import Bars, MarketData, SymbolData
from machine.config import RunConfig
from machine.engine import run_replay
from tests.support.ledger_export import differences, fills_at_the_open, known_at


def bar_closing_at(market: MarketData, t: int) -> int:
    """The index ``i`` of the bar that closes at ``t`` (``ts[i] + timeframe == t``)."""
    i = int(np.searchsorted(market.ts, t - market.timeframe_ms))
    if i == len(market.ts) or int(market.ts[i]) != t - market.timeframe_ms:
        raise ValueError(f"t={t} is not the close of a bar of this market")
    return i


def perturbed_from(market: MarketData, t: int, rng: np.random.Generator) -> MarketData:
    """A copy in which every input a decision at the bar close ``t`` must not see is changed.

    The decision at ``t = ts[i] + timeframe`` may read the bars that opened at or before
    ``ts[i]``; the bar that opens at ``t`` is the first it must not see. So every last-price and
    mark candle opening at or after ``t`` changes (open, high, low, close and volume, still a
    valid candle), and so does every funding rate settled after ``ts[i]``: the exchange pays the
    settlements in ``(ts[i-1], ts[i]]`` while it processes bar ``i``, before the decision at
    ``t``, and the later ones only as later bars open (components/exchange/sim.py).
    """
    opened = market.ts[bar_closing_at(market, t)]

    def shake(b: Bars | None) -> Bars | None:
        if b is None:
            return None
        unseen = b.ts > opened
        n = len(b.ts)
        o = b.open * np.where(unseen, rng.uniform(0.8, 1.2, n), 1.0)
        c = b.close * np.where(unseen, rng.uniform(0.8, 1.2, n), 1.0)
        hi = np.where(unseen, np.maximum(o, c) * rng.uniform(1.0, 1.02, n), b.high)
        lo = np.where(unseen, np.minimum(o, c) * rng.uniform(0.98, 1.0, n), b.low)
        volume = b.volume * np.where(unseen, rng.uniform(0.5, 1.5, n), 1.0)
        return replace(b, open=o, high=hi, low=lo, close=c, volume=volume)

    symbols = {}
    for s, d in market.symbols.items():
        funding = d.funding
        if funding is not None:
            unseen = funding.ts > opened
            shaken = -3 * funding.rate + rng.uniform(-1e-4, 1e-4, len(funding.ts))
            funding = replace(funding, rate=np.where(unseen, shaken, funding.rate))
        symbols[s] = SymbolData(bars=shake(d.bars), mark=shake(d.mark), funding=funding)
    return replace(market, symbols=symbols)


def replay_perturbed(cfg: RunConfig, market: MarketData, t: int, seed: int, folder: Path, *,
                     horizon_bars: int | None = None) -> Path:
    """Replay ``market`` perturbed from ``t`` into ``folder``; returns its ledger. The replay stops
    once the bar at ``t`` and the predictions made by ``t`` (resolved ``horizon_bars`` later) are in
    its ledger: nothing known at ``t`` is written later."""
    last = bar_closing_at(market, t) + 1 + (horizon_bars or 0)
    shaken = perturbed_from(market, t, np.random.default_rng(seed))
    result = run_replay(cfg, folder / f"cut-{t}-{seed}", market=shaken, stop_after_bars=last + 1 - market.trade_from)
    return result.ledger_path


@dataclass(frozen=True)
class CutResult:
    """What one cut of the probe found."""

    t: int
    seed: int
    differences: list[str]  # rows known at t that the perturbation changed: lookahead
    open_fills: tuple[list[tuple], list[tuple]]  # fills at the open of the bar at t: (unchanged, perturbed)


def probe(cfg: RunConfig, market: MarketData, ledger: Path, cuts: Sequence[tuple[int, int]], folder: Path, *,
          horizon_bars: int | None = None) -> list[CutResult]:
    """For each ``(t, seed)``: replay ``market`` perturbed from ``t`` and compare every row known at
    ``t`` (``known_at``) with the ledger of the unperturbed replay of ``cfg`` at ``ledger``."""
    results = []
    rules = {"timeframe_ms": market.timeframe_ms, "horizon_bars": horizon_bars}
    for t, seed in cuts:
        shaken = replay_perturbed(cfg, market, t, seed, folder, horizon_bars=horizon_bars)
        found = differences(known_at(ledger, t, **rules), known_at(shaken, t, **rules))
        results.append(CutResult(t, seed, found, (fills_at_the_open(ledger, t), fills_at_the_open(shaken, t))))
    return results
