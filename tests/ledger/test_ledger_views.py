"""Named views on a small hand-built run, checked against numbers worked out by hand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from ledger.views import VIEW_NAMES
from ledger.writer import Ledger

MIN = 60_000
EPOCH = datetime(1970, 1, 1)  # views show times as TIMESTAMP in UTC (naive), the base tables as epoch ms


def at(minute: int) -> datetime:
    """The view's timestamp of a row written at `minute * MIN` ms."""
    return EPOCH + timedelta(minutes=minute)

# (pnl, symbol, state at entry, mode, funding); every trade pays 0.1 in fees.
FUTURES_TRADES = [
    (1.0, "BTCUSDT", "conservative", "normal", -0.05),
    (3.0, "BTCUSDT", "kelly_active", "normal", -0.05),
    (2.0, "ETHUSDT", "kelly_active", "window", 0.02),
    (2.0, "BTCUSDT", "conservative", "normal", -0.05),
    (1.0, "ETHUSDT", "kelly_active", "epsilon", 0.02),
    (3.0, "BTCUSDT", "kelly_active", "normal", -0.05),
    (-0.5, "BTCUSDT", "conservative", "normal", -0.05),
    (-1.5, "ETHUSDT", "conservative", "window", 0.02),
    (-1.0, "BTCUSDT", "kelly_active", "normal", -0.05),
    (-1.0, "ETHUSDT", "kelly_active", "epsilon", 0.02),
]
FUTURES_EQUITY = [  # (minute, equity, state)
    (0, 100.0, "warmup"),
    (1, 110.0, "conservative"),
    (2, 88.0, "conservative"),
    (3, 105.0, "kelly_active"),
    (4, 120.0, "circuit_broken"),
    (5, 108.0, "conservative"),
]
FUTURES_TAGS = [("exploring", "exploring"), ("circuit_broken", "breaker"), ("halted", "breaker"),
                ("halted", "halt")]  # (state, tag), as the machine's YAML declares them
FUTURES_TRANSITIONS = [  # (minute, source, dest, trigger)
    (1, "warmup", "conservative", "history_ready"),
    (3, "conservative", "kelly_active", "closed_trades_at_least"),
    (4, "kelly_active", "circuit_broken", "drawdown_breached"),
    (5, "circuit_broken", "conservative", "cooldown_elapsed"),
]


def _trade(agent: str, number: int, pnl: float, symbol: str = "BTCUSDT", state: str = "warmup",
           mode: str = "normal", funding: float = 0.0) -> dict:
    return {"trade_id": f"{agent}-{number}", "agent": agent, "symbol": symbol, "side": "long",
            "entry_ts": number * MIN, "exit_ts": (number + 1) * MIN, "qty": 1.0, "fees": 0.1,
            "funding": funding, "pnl": pnl, "mode": mode, "state": state}


@pytest.fixture(scope="module")
def ledger(tmp_path_factory):
    with Ledger.open(tmp_path_factory.mktemp("run") / "ledger.duckdb", "r1") as ledger:
        for number, (pnl, symbol, state, mode, funding) in enumerate(FUTURES_TRADES):
            ledger.append("trades", _trade("futures", number, pnl, symbol, state, mode, funding))
        # hybrid never lost: no avg loss, so no win/loss ratio and no Kelly edge
        ledger.append("trades", _trade("hybrid", 0, 1.0))
        ledger.append("trades", _trade("hybrid", 1, 0.5))
        # scalper's only loss is a scratch at 0: it counts as a loss, and b stays undefined
        ledger.append("trades", _trade("scalper", 0, 1.0))
        ledger.append("trades", _trade("scalper", 1, 0.0))
        for minute, equity, state in FUTURES_EQUITY:
            ledger.append("equity", {"ts": minute * MIN, "agent": "futures", "equity": equity,
                                     "state": state})
        for minute, equity in [(0, 50.0), (1, 55.0)]:
            ledger.append("equity", {"ts": minute * MIN, "agent": "hybrid", "equity": equity,
                                     "state": "warmup"})
        for state, tag in FUTURES_TAGS:
            ledger.append("state_tags", {"agent": "futures", "state": state, "tag": tag})
        for minute, source, dest, trigger in FUTURES_TRANSITIONS:
            ledger.append("transitions", {"ts": minute * MIN, "agent": "futures", "source": source,
                                          "dest": dest, "trigger": trigger, "reason": trigger,
                                          "evidence": {"minute": minute}})
        for minute, kind, before, after, evidence in [
            (200, "kelly_update", 0.01, {"risk_fraction": 0.02},
             {"p": 0.6, "b": 2.0, "f_star": 0.4, "regime_factor": 0.5, "cap": 0.25}),
            (100, "regime_change", "range", "trend", {"adx": 31.0}),
            (250, "kelly_update", {"risk_fraction": 0.02}, 0.005, {"p": 0.55}),
            (150, "gate_threshold", 0.55, 0.6, {"precision": 0.7}),
        ]:
            ledger.append("adjustments", {"ts": minute * MIN, "agent": "futures", "kind": kind,
                                          "before": before, "after": after, "reason": kind,
                                          "evidence": evidence})
        for symbol, amount in [("BTCUSDT", -1.5), ("BTCUSDT", -0.5), ("BTCUSDT", 0.25),
                               ("ETHUSDT", 1.0)]:
            ledger.append("funding", {"ts": 0, "agent": "futures", "symbol": symbol,
                                      "rate": 0.0001, "amount": amount})
        for version, probability, passed in [("v1", 0.6, True), ("v1", 0.7, True),
                                             ("v1", 0.5, False), ("v2", 0.8, True)]:
            ledger.append("decisions", {"ts": 0, "agent": "futures", "symbol": "BTCUSDT",
                                        "model_version": version, "probability": probability,
                                        "threshold": 0.55, "passed": passed})
        ledger.commit()
        yield ledger


def _rows(ledger: Ledger, view: str, where: str = "TRUE") -> list[dict]:
    table = ledger.query_arrow(f"SELECT * FROM {view} WHERE {where}")
    return table.to_pylist()


def test_stats_give_win_rate_payoff_ratio_and_kelly_edge(ledger):
    [futures] = _rows(ledger, "stats", "agent = 'futures'")

    assert futures == pytest.approx({
        "run_id": "r1", "agent": "futures", "trades": 10, "wins": 6, "losses": 4,
        "total_wins": 12.0, "total_losses": 4.0, "win_rate": 0.6, "avg_win": 2.0,
        "avg_loss": 1.0, "win_loss_ratio": 2.0, "kelly_edge": 0.4, "net_pnl": 8.0,
        "fees": 1.0, "funding": -0.22,
    })


def test_stats_leave_payoff_and_kelly_undefined_without_a_real_loss(ledger):
    rows = {row["agent"]: row for row in _rows(ledger, "stats", "agent <> 'futures'")}

    assert rows["hybrid"]["losses"] == 0
    assert rows["hybrid"]["total_losses"] == 0.0
    assert rows["hybrid"]["avg_loss"] is None
    assert rows["scalper"]["losses"] == 1  # a 0.0 pnl counts as a loss
    assert rows["scalper"]["avg_loss"] == 0.0
    for agent in ("hybrid", "scalper"):
        assert rows[agent]["win_loss_ratio"] is None
        assert rows[agent]["kelly_edge"] is None


def test_stats_by_symbol_split_the_edge_per_market(ledger):
    rows = {row["symbol"]: row for row in _rows(ledger, "stats_by_symbol", "agent = 'futures'")}

    btc, eth = rows["BTCUSDT"], rows["ETHUSDT"]
    assert (btc["trades"], btc["wins"], btc["losses"]) == (6, 4, 2)
    assert btc["win_loss_ratio"] == pytest.approx(2.25 / 0.75)
    assert btc["kelly_edge"] == pytest.approx(2 / 3 - (1 / 3) / 3)
    assert (eth["trades"], eth["wins"], eth["losses"]) == (4, 2, 2)
    assert eth["win_loss_ratio"] == pytest.approx(1.5 / 1.25)
    assert eth["kelly_edge"] == pytest.approx(0.5 - 0.5 / 1.2)
    assert btc["net_pnl"] + eth["net_pnl"] == pytest.approx(8.0)


def test_state_performance_groups_trades_by_the_state_at_entry(ledger):
    rows = _rows(ledger, "state_performance", "agent = 'futures'")

    assert [(r["state"], r["trades"]) for r in rows] == [("conservative", 4), ("kelly_active", 6)]
    assert [r["win_rate"] for r in rows] == pytest.approx([0.5, 4 / 6])
    assert [r["net_pnl"] for r in rows] == pytest.approx([1.0, 7.0])
    assert [r["avg_pnl"] for r in rows] == pytest.approx([0.25, 7 / 6])


def test_mode_performance_groups_trades_by_mode(ledger):
    rows = _rows(ledger, "mode_performance", "agent = 'futures'")

    assert [(r["mode"], r["trades"]) for r in rows] == [("epsilon", 2), ("normal", 6),
                                                        ("window", 2)]
    assert [r["win_rate"] for r in rows] == pytest.approx([0.5, 4 / 6, 0.5])
    assert [r["net_pnl"] for r in rows] == pytest.approx([0.0, 7.5, 0.5])
    assert [r["avg_pnl"] for r in rows] == pytest.approx([0.0, 1.25, 0.25])


def test_drawdown_tracks_the_running_peak(ledger):
    rows = _rows(ledger, "drawdown", "agent = 'futures'")

    assert [r["ts"] for r in rows] == [at(m) for m in range(6)]
    assert [r["peak"] for r in rows] == [100.0, 110.0, 110.0, 110.0, 120.0, 120.0]
    assert [r["drawdown"] for r in rows] == pytest.approx([0, 0, 0.2, 1 - 105 / 110, 0, 0.1])


def test_max_drawdown_is_the_deepest_and_says_when(ledger):
    rows = {row["agent"]: row for row in _rows(ledger, "max_drawdown")}

    assert rows["futures"]["max_drawdown"] == pytest.approx(0.2)
    assert rows["futures"]["max_drawdown_ts"] == at(2)
    assert rows["hybrid"]["max_drawdown"] == 0.0
    assert rows["hybrid"]["max_drawdown_ts"] == at(0)


def test_time_in_state_follows_the_transitions_to_the_last_equity_mark(ledger):
    rows = _rows(ledger, "time_in_state", "agent = 'futures'")

    assert [(r["state"], r["bars"], r["ms"]) for r in rows] == [
        ("warmup", 1, 1 * MIN),
        ("conservative", 3, 2 * MIN),  # minutes 1-3, and the last mark after the cooldown
        ("kelly_active", 1, 1 * MIN),
        ("circuit_broken", 1, 1 * MIN),
    ]
    assert [r["share"] for r in rows] == pytest.approx([0.2, 0.4, 0.2, 0.2])
    assert sum(r["bars"] for r in rows) == len(FUTURES_EQUITY)


def test_time_in_state_without_transitions_is_all_in_the_first_marked_state(ledger):
    assert [(r["state"], r["bars"], r["ms"], r["share"])
            for r in _rows(ledger, "time_in_state", "agent = 'hybrid'")] == [
        ("warmup", 2, MIN, 1.0)
    ]


def test_adjustments_timeline_lists_every_change_in_time_order(ledger):
    rows = _rows(ledger, "adjustments_timeline")

    assert [(r["ts"], r["kind"]) for r in rows] == [
        (at(100), "regime_change"), (at(150), "gate_threshold"), (at(200), "kelly_update"),
        (at(250), "kelly_update"),
    ]
    assert (rows[1]["before"], rows[1]["after"], rows[1]["reason"]) == ("0.55", "0.6",
                                                                        "gate_threshold")
    assert json.loads(rows[1]["evidence"]) == {"precision": 0.7}


def test_kelly_exposes_the_sizers_inputs_as_columns(ledger):
    first, second = _rows(ledger, "kelly")

    assert first.pop("ts") == at(200)
    assert first == pytest.approx({
        "run_id": "r1", "agent": "futures", "kind": "kelly_update",
        "p": 0.6, "b": 2.0, "f_star": 0.4,
        "regime_factor": 0.5, "cap": 0.25, "risk_fraction_before": 0.01,
        "risk_fraction_after": 0.02, "reason": "kelly_update",
    })
    assert second["p"] == 0.55
    assert (second["b"], second["f_star"], second["regime_factor"], second["cap"]) == (
        None, None, None, None)
    assert (second["risk_fraction_before"], second["risk_fraction_after"]) == (0.02, 0.005)


def test_breaker_shows_the_trip_and_the_recovery(ledger):
    rows = _rows(ledger, "breaker")

    assert [(r["ts"], r["source"], r["dest"], r["trigger"]) for r in rows] == [
        (at(4), "kelly_active", "circuit_broken", "drawdown_breached"),
        (at(5), "circuit_broken", "conservative", "cooldown_elapsed"),
    ]
    assert json.loads(rows[0]["evidence"]) == {"minute": 4}


def test_funding_summary_splits_paid_and_received(ledger):
    rows = _rows(ledger, "funding_summary")

    assert [(r["symbol"], r["payments"], r["paid"], r["received"], r["net"]) for r in rows] == [
        ("BTCUSDT", 3, -2.0, 0.25, -1.75),
        ("ETHUSDT", 1, 0.0, 1.0, 1.0),
    ]


def test_regimes_list_regime_changes_with_from_and_to(ledger):
    [change] = _rows(ledger, "regimes")

    assert (change["ts"], change["from_regime"], change["to_regime"]) == (at(100), "range",
                                                                          "trend")


def test_decisions_by_model_count_passes_and_mean_probability(ledger):
    rows = _rows(ledger, "decisions_by_model")

    assert [(r["model_version"], r["decisions"], r["passed"]) for r in rows] == [
        ("v1", 3, 2), ("v2", 1, 1)]
    assert [r["pass_rate"] for r in rows] == pytest.approx([2 / 3, 1.0])
    assert [r["avg_probability"] for r in rows] == pytest.approx([0.6, 0.8])


def test_summary_has_one_line_per_agent_with_return_and_drawdown(ledger):
    rows = {row["agent"]: row for row in _rows(ledger, "summary")}

    assert set(rows) == {"futures", "hybrid", "scalper"}
    futures = rows["futures"]
    assert (futures["trades"], futures["win_rate"], futures["kelly_edge"]) == pytest.approx(
        (10, 0.6, 0.4))
    assert futures["return"] == pytest.approx(0.08)
    assert (futures["max_drawdown"], futures["max_drawdown_ts"]) == (pytest.approx(0.2), at(2))
    assert rows["hybrid"]["return"] == pytest.approx(0.1)
    assert rows["scalper"]["trades"] == 2
    assert rows["scalper"]["return"] is None  # no equity marks


def test_every_view_answers_on_an_empty_ledger(tmp_path):
    with Ledger.open(tmp_path / "ledger.duckdb", "empty") as ledger:
        for view in VIEW_NAMES:
            assert ledger.query(f"SELECT count(*) FROM {view}") == [(0,)]


def test_time_in_state_clips_transitions_outside_the_marked_span():
    with Ledger.open(":memory:", "r1") as ledger:
        for minute in (1, 2, 3):
            ledger.append("equity", {"ts": minute * MIN, "agent": "spot", "equity": 100.0,
                                     "state": "conservative"})
        for minute, source, dest in [(0, "warmup", "conservative"),
                                     (5, "conservative", "kelly_active")]:
            ledger.append("transitions", {"ts": minute * MIN, "agent": "spot", "source": source,
                                          "dest": dest})
        ledger.commit()

        rows = ledger.query("SELECT state, bars, ms FROM time_in_state")

    assert rows == [("warmup", 0, 0), ("conservative", 3, 2 * MIN)]


def test_every_time_a_view_shows_is_a_utc_timestamp_and_every_duration_says_its_unit(ledger):
    for view in VIEW_NAMES:
        for name, kind, *_ in ledger.query(f"DESCRIBE {view}"):
            if name == "ts" or name.endswith("_ts"):
                assert kind == "TIMESTAMP", (view, name, kind)
            assert not name.endswith("_pct"), (view, name)  # every view's share or rate is a ratio
    assert ledger.query("SELECT DISTINCT typeof(entry_ts) FROM trades") == [("BIGINT",)]


def test_a_view_reads_a_time_as_it_says_and_converts_back_to_the_base_tables_ms(ledger):
    rows = ledger.query("SELECT epoch_ms(ts), source, dest FROM breaker WHERE ts >= '1970-01-01 00:05:00'")

    assert rows == [(5 * MIN, "circuit_broken", "conservative")]

