"""Trade labels: the signal's long as the agent trades it, resolved only once its trade has left."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from components.exits import AtrExitsConfig, Multiples
from components.ml.dataset import head
from components.ml.features import last_closed_index
from components.ml.retrainer import Retrainer, RetrainerConfig
from components.ml.trade_labels import (
    ExitSeries,
    TradeLabelConfig,
    signal_entries,
    simulate_longs,
    trade_labels,
)
from components.signals import EmaCrossSignal, EmaCrossSignalConfig
from core.component import Decision
from core.market import Bars, MarketData, SymbolData
from machine.compose import compose_run
from machine.engine import build_components, load_run_market, run_replay
from tests.ml.ml_support import FIVE_MIN, START_MS, agent_exit_series, perturb_after, read_bars
from tests.support.quick_hybrid import RULE_BASED

# The hybrid agent on its rule-based path, with its exits fixed (no parameter optimiser): every signal
# the filters pass becomes a trade.
HORIZON = 144


@pytest.fixture(scope="module")
def btc_eth() -> dict[str, Bars]:
    return {s: head(read_bars(f"binance_spot_{s.replace('/', '-')}_5m.parquet", s), 20_000)
            for s in ("BTC/USDT", "ETH/USDT")}


def test_a_simulated_long_leaves_at_the_bar_and_price_of_the_replayed_trade(tmp_path) -> None:
    cfg = compose_run("experiment=hybrid", "market.start=2022-01-01", "market.end=2024-01-01", *RULE_BASED)
    market = load_run_market(cfg)
    ledger = run_replay(cfg, tmp_path / "rules", market=market).ledger_path
    components, shared = build_components(cfg), {}
    for name in ("features", "regime"):
        components[name].prepare(market, shared)
    config = TradeLabelConfig(**cfg.agent.components["ml_gate"]["retrainer"]["trade"])
    con = duckdb.connect(str(ledger), read_only=True)
    trades = con.execute("SELECT symbol, entry_ts, exit_ts, exit_price, pnl FROM trades "
                         "WHERE exit_reason IN ('stop_loss', 'take_profit')").fetchall()
    con.close()

    compared = []
    for symbol, entry_ts, exit_ts, exit_price, pnl in trades:
        bars = market.symbols[symbol].bars
        signal_bar = int(np.searchsorted(bars.ts, entry_ts)) - 1  # decided at its close, filled at the next open
        sim = simulate_longs(bars, ExitSeries.from_shared(shared, symbol), config, 5000, 0.002,
                             np.array([signal_bar]))
        compared.append((int(bars.ts[sim.exit_index[0]]) + bars.timeframe_ms, sim.exit_price[0],
                         bool(sim.net_log_return[0] > 0), exit_ts, exit_price, pnl > 0))

    assert len(compared) > 300
    assert [(t, w) for t, _, w, *_ in compared] == [(t, w) for *_, t, _, w in compared]
    np.testing.assert_allclose([c[1] for c in compared], [c[4] for c in compared], rtol=1e-12)


def test_signal_entries_are_the_bars_where_the_ema_cross_signal_enters(btc_eth: dict[str, Bars]) -> None:
    bars = btc_eth["ETH/USDT"]
    config = EmaCrossSignalConfig(fast=12, slow=26, rsi_long_max=60, exit_on_cross=False)
    signal = EmaCrossSignal("signal", config)
    signal.prepare(MarketData("spot", "5m", FIVE_MIN, bars.ts, {"ETH/USDT": SymbolData(bars)}), {})

    entered = np.zeros(len(bars), dtype=bool)
    for i in range(len(bars)):
        d = Decision("ETH/USDT", i, int(bars.ts[i]) + FIVE_MIN, float(bars.close[i]), None)
        signal.on_bar(d, None)  # a flat signal reads no context
        entered[i] = d.entry == 1

    assert entered.sum() > 200
    np.testing.assert_array_equal(signal_entries(bars, config), entered)


@pytest.mark.parametrize("events", ["signal", "every_bar"])
def test_no_training_label_changes_when_the_bars_after_the_cut_off_do(btc_eth: dict[str, Bars], events: str) -> None:
    retrainer = Retrainer(RetrainerConfig(label="trade", horizon=HORIZON, window_days=30,
                                          trade=TradeLabelConfig(events=events)))
    now_idx = 15_000
    now_ts = int(btc_eth["BTC/USDT"].ts[now_idx]) + FIVE_MIN
    shaken = {s: perturb_after(b, now_idx, seed=k) for k, (s, b) in enumerate(btc_eth.items())}

    samples = retrainer.samples(btc_eth, now_ts, agent_exit_series(btc_eth))
    again = retrainer.samples(shaken, now_ts, agent_exit_series(shaken))

    for column in ("symbol", "index", "labels", "resolved_ts"):
        np.testing.assert_array_equal(getattr(samples, column), getattr(again, column))
    assert len(samples) > (250 if events == "signal" else 10_000)
    # the perturbation matters: read with every bar, the longs still open at the cut-off end otherwise
    rows = np.arange(now_idx - HORIZON, now_idx + 1)
    full = [trade_labels(m["BTC/USDT"], agent_exit_series(m)["BTC/USDT"], retrainer.config.trade, HORIZON, 0.002,
                         rows)[0][rows] for m in (btc_eth, shaken)]
    assert not np.array_equal(full[0], full[1])


def test_a_trade_label_is_used_once_its_trade_has_left_and_not_before(btc_eth: dict[str, Bars]) -> None:
    retrainer = Retrainer(RetrainerConfig(label="trade", horizon=HORIZON, window_days=30,
                                          trade=TradeLabelConfig(events="every_bar")))
    series = agent_exit_series(btc_eth)
    bars = btc_eth["BTC/USDT"]
    now_idx = 15_000
    now_ts = int(bars.ts[now_idx]) + FIVE_MIN

    samples = retrainer.samples(btc_eth, now_ts, series)
    code = samples.symbols.index("BTC/USDT")
    used = set(samples.index[samples.symbol == code].tolist())
    trades = simulate_longs(bars, series["BTC/USDT"], retrainer.config.trade, HORIZON, 0.002)
    recent = (trades.rows > now_idx - HORIZON) & (trades.rows <= now_idx)

    assert samples.resolved_ts.max() <= bars.ts[last_closed_index(bars, now_ts)]
    left = recent & (trades.exit_index <= now_idx)
    assert left.any() and (recent & ~left).any()  # both kinds near the cut-off
    assert set(trades.rows[left].tolist()) <= used
    assert not set(trades.rows[recent & ~left].tolist()) & used


def test_a_bar_that_touches_both_stop_and_target_is_a_stop_and_a_trade_still_open_is_valued_at_the_close() -> None:
    # signal bar 0 closes at 100 with ATR 1: stop 98, target 104 (normal regime multiples 2 and 4)
    close = np.array([100.0, 100.0, 100.5, 101.0, 100.0, 100.2, 100.4])
    high = np.array([100.5, 100.5, 101.0, 101.5, 105.0, 100.5, 100.6])
    low = np.array([99.5, 99.5, 100.0, 100.5, 97.0, 99.9, 100.1])
    open_ = np.array([100.0, 100.0, 100.0, 100.5, 101.0, 100.0, 100.2])
    ts = START_MS + FIVE_MIN * np.arange(len(close))
    bars = Bars("X/USDT", "5m", FIVE_MIN, ts, open_, high, low, close, np.ones(len(close)))
    series = ExitSeries(np.ones(len(close)), np.zeros(len(close), dtype=np.int64))
    config = TradeLabelConfig(exits=AtrExitsConfig(stop_atr=Multiples(low=1, normal=2, high=3),
                                                   take_profit_atr=Multiples(low=2, normal=4, high=6),
                                                   trailing_atr=None, breakeven_at_r=None), slippage_bps=0.0)

    both = simulate_longs(bars, series, config, horizon=5, fee=0.002, rows=np.array([0]))
    open_at_end = simulate_longs(bars, series, config, horizon=2, fee=0.002, rows=np.array([0]))
    unresolved = simulate_longs(head(bars, 4), series, config, horizon=5, fee=0.002, rows=np.array([0]))

    assert (both.exit_index[0], both.exit_price[0], both.timed_out[0]) == (4, 98.0, False)
    assert both.net_log_return[0] < 0
    assert (open_at_end.exit_index[0], open_at_end.exit_price[0], open_at_end.timed_out[0]) == (2, 100.5, True)
    assert open_at_end.net_log_return[0] == pytest.approx(np.log(100.5 / 100.0) - 0.002)
    assert unresolved.exit_index[0] == -1 and np.isnan(unresolved.net_log_return[0])
