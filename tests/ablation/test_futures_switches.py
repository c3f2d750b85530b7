"""Each futures switch removes its loop, shown in the ledger of a real replay (BTC and ETH perps, 2023 H1):
the loop's rows are there in the full agent and gone, or constant, with the loop switched off. The
placebos stand in as they should: a coin that takes its share of signals blind to the regime, risk
drawn from the risks Kelly chose."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

from core.component import Decision
from machine.ablation import shares
from machine.ablation.placebo import coin_arm, risk_arm
from machine.ablation.runner import compose_arm, plan_ablation, write_options
from machine.config import RunConfig, load_run_config
from machine.engine import build_components, load_run_market, run_replay

WINDOW = ("agent=futures", "market=perp_1h", "market.start=2023-01-01", "market.end=2023-07-01")
GATED = ("conservative", "kelly_active")
KELLY_ROWS = "SELECT count(*) FROM adjustments WHERE kind IN ('kelly_update', 'risk_fraction')"


class Replays:
    """Every arm of the futures ablation replayed on the window, in this process."""

    def __init__(self, root: Path):
        self.plan = plan_ablation(WINDOW, every="all", out=root / "ablation")
        self.root = root
        self.arms = {a.name: a for a in self.plan.arms}
        write_options(self.plan, list(self.arms.values()))
        self.ledgers: dict[str, duckdb.DuckDBPyConnection] = {}
        for name in self.arms:
            self.replay(name)
        loops = {loop.name: loop for loop in self.plan.loops}
        passed, offered = shares.filter_share(self.config("full"), "regime_gate")
        self.take = passed / offered
        self.risks = [r for (r,) in self.sql("full", "SELECT risk_fraction FROM trades WHERE state = 'kelly_active' "
                                                     "AND mode = 'normal'")]
        placebos = [coin_arm(loops["regime_gating"], self.plan.agent, self.take),
                    risk_arm(loops["kelly"], self.plan.agent, self.risks)]
        write_options(self.plan, placebos)
        for arm in placebos:
            self.arms[arm.name] = arm
            self.replay(arm.name)

    def config(self, arm: str) -> RunConfig:
        return load_run_config(compose_arm(self.plan, arm, "all"))

    def replay(self, arm: str) -> None:
        result = run_replay(self.config(arm), self.root / arm)
        self.ledgers[arm] = duckdb.connect(str(result.ledger_path), read_only=True)

    def sql(self, arm: str, query: str) -> list[tuple]:
        return self.ledgers[arm].execute(query).fetchall()

    def one(self, arm: str, query: str):
        return self.sql(arm, query)[0][0]


@pytest.fixture(scope="module")
def replays(tmp_path_factory):
    r = Replays(tmp_path_factory.mktemp("futures_switches"))
    yield r
    for con in r.ledgers.values():
        con.close()


def regime_rejections(cfg: RunConfig, con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(entries the regime gate would have refused, entries) among the normal entries of the gated states."""
    components, market = build_components(cfg), load_run_market(cfg)
    shared: dict = {}
    for name in ("features", "regime", "regime_gate"):
        components[name].prepare(market, shared)
    gate = components["regime_gate"]
    rows = con.execute("SELECT ts, symbol, side FROM orders WHERE intent = 'entry' AND mode = 'normal' "
                       "AND state IN ('conservative', 'kelly_active')").fetchall()
    refused = 0
    for ts, symbol, side in rows:
        i = int(np.searchsorted(market.ts, ts - market.timeframe_ms))
        labels = shared[symbol]
        d = Decision(symbol, i, ts, 0.0, None, vol_regime=labels["vol_regime"][i],
                     trend_regime=labels["trend_regime"][i], entry=1 if side == "buy" else -1)
        refused += gate.rejection(d) is not None  # type: ignore[attr-defined]
    return refused, len(rows)


def test_kelly_off_sizes_every_trade_at_base_risk_and_never_ratchets(replays):
    assert replays.one("full", KELLY_ROWS) > 0
    assert replays.one("full", "SELECT count(*) FROM trades WHERE state = 'kelly_active' AND risk_fraction > 0.003") > 0
    assert replays.one("without_kelly", KELLY_ROWS) == 0
    assert replays.one("without_kelly", "SELECT count(*) FROM transitions WHERE dest = 'kelly_active'") > 0
    assert {r for (r,) in replays.sql("without_kelly", "SELECT DISTINCT risk_fraction FROM trades WHERE mode = "
                                                       "'normal'")} == {0.003}


def test_adaptive_stops_off_keeps_the_normal_regimes_multiples_in_every_regime(replays):
    query = ("SELECT DISTINCT CAST(after->>'stop_atr' AS DOUBLE), CAST(after->>'take_profit_atr' AS DOUBLE) "
             "FROM adjustments WHERE kind = 'stop_adaptation' AND after->>'stop_atr' IS NOT NULL")
    assert {s for s, _ in replays.sql("full", query)} == {1.5, 2.0, 3.0}
    assert set(replays.sql("without_adaptive_stops", query)) == {(2.0, 4.0)}


def test_regime_gating_off_enters_where_the_gate_would_refuse(replays):
    cfg = replays.config("full")
    refused, entries = regime_rejections(cfg, replays.ledgers["full"])
    assert entries > 0 and refused == 0
    refused, entries = regime_rejections(cfg, replays.ledgers["without_regime_gating"])
    assert refused > entries / 4


def test_breakers_off_never_trip(replays):
    into = "SELECT count(*) FROM transitions WHERE dest IN ('circuit_broken', 'halted')"
    assert replays.one("full", into) > 0
    assert replays.one("without_breakers", into) == 0
    assert replays.one("without_breakers", "SELECT count(*) FROM trades") > 0


def test_exploration_off_never_explores(replays):
    for arm, explored in (("full", True), ("without_exploration", False)):
        assert (replays.one(arm, "SELECT count(*) FROM transitions WHERE dest = 'exploring'") > 0) is explored
        assert (replays.one(arm, "SELECT count(*) FROM trades WHERE mode = 'explore'") > 0) is explored


def test_the_regime_gates_coin_takes_its_share_of_signals_blind_to_the_regime(replays):
    coin = replays.config("placebo_regime_gating")
    passed, offered = shares.filter_share(coin, "regime_gate_placebo")
    assert offered > 100 and abs(passed / offered - replays.take) < 0.1
    assert (passed, offered) == shares.filter_share(coin, "regime_gate_placebo")  # seeded: the same draws
    refused, entries = regime_rejections(replays.config("full"), replays.ledgers["placebo_regime_gating"])
    assert refused > 0 and entries > 0


def test_kellys_placebo_draws_each_risk_from_the_risks_kelly_chose(replays):
    drawn = replays.sql("placebo_kelly", "SELECT risk_fraction FROM trades WHERE state = 'kelly_active' "
                                          "AND mode = 'normal'")
    assert replays.risks and drawn
    assert {r for (r,) in drawn} <= {round(r, 8) for r in replays.risks}
    assert replays.one("placebo_kelly", KELLY_ROWS) == 0
