"""The futures agent on the bundled 2022 perpetual data: earned Kelly, bounded risk and leverage,
breakers that trip, cool down and resume, a halt only an operator lifts, and funding both ways."""

from __future__ import annotations

import duckdb
import pytest

from machine import operator
from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from tests.support.ledger_export import export

YEAR_2022 = ("experiment=futures", "market.start=2022-01-01", "market.end=2023-01-01")


@pytest.fixture(scope="module")
def ledger_2022(tmp_path_factory):
    result = run_replay(compose_run(*YEAR_2022), tmp_path_factory.mktemp("futures2022"))
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    from ledger.views import create_views

    create_views(con)
    yield con
    con.close()


def _one(con, sql, *params):
    return con.execute(sql, list(params)).fetchone()


def test_risk_never_exceeds_15_percent_nor_base_before_kelly(ledger_2022):
    first_kelly = _one(ledger_2022, "SELECT min(ts) FROM transitions WHERE dest = 'kelly_active'")[0]
    assert first_kelly is not None
    assert _one(ledger_2022, "SELECT max(risk_fraction) FROM trades")[0] <= 0.15
    before = _one(ledger_2022, "SELECT max(risk_fraction) FROM trades WHERE entry_ts <= ?", first_kelly)[0]
    assert before <= 0.003
    kelly = ledger_2022.execute("SELECT p, b, f_star, cap, risk_fraction_after FROM kelly").fetchall()
    assert kelly and all(r[3] == 0.15 and 0 <= r[4] <= 0.15 for r in kelly)
    assert any(r[4] > 0.003 for r in kelly)  # Kelly did raise risk once earned


def test_leverage_never_exceeds_5x_and_clips_are_recorded(ledger_2022):
    assert _one(ledger_2022, "SELECT max(leverage) FROM orders WHERE intent = 'entry'")[0] <= 5
    assert _one(ledger_2022, "SELECT max(leverage) FROM trades")[0] <= 5
    clips = ledger_2022.execute("SELECT before->>'qty', after->>'qty' FROM adjustments "
                                "WHERE kind = 'leverage_clip'").fetchall()
    assert all(float(a) < float(b) for b, a in clips)


def test_breakers_trip_flatten_cool_down_and_resume_at_base_risk(ledger_2022):
    trips = ledger_2022.execute(
        "SELECT epoch_ms(ts), trigger, evidence FROM breaker WHERE dest = 'circuit_broken' ORDER BY ts").fetchall()
    resumes = ledger_2022.execute(
        "SELECT epoch_ms(ts), evidence->>'$.\"cooldown_elapsed(48)\".hours_in_state' FROM breaker "
        "WHERE source = 'circuit_broken' AND dest = 'conservative' ORDER BY ts").fetchall()
    assert trips and resumes
    trip_ts, resume_ts = trips[0][0], resumes[0][0]
    assert resume_ts - trip_ts == 48 * 3_600_000 and float(resumes[0][1]) >= 48
    entries_while_broken = _one(ledger_2022, "SELECT count(*) FROM orders WHERE intent = 'entry' "
                                             "AND ts > ? AND ts < ?", trip_ts, resume_ts)[0]
    assert entries_while_broken == 0
    open_after_trip = _one(ledger_2022, "SELECT max(open_positions) FROM equity WHERE ts > ? AND ts < ?",
                           trip_ts + 3_600_000, resume_ts)[0]
    assert open_after_trip == 0  # on_enter: flatten
    alert = _one(ledger_2022, "SELECT message, channel, delivered FROM notifications "
                              "WHERE ts = ? AND kind = 'breaker_trip'", trip_ts)
    assert alert is not None and "circuit_broken" in alert[0] and alert[1:] == ("ledger", True)
    next_entry = _one(ledger_2022, "SELECT t.risk_fraction, t.state FROM orders o JOIN trades t "
                                   "ON o.order_id = t.trade_id WHERE o.ts >= ? ORDER BY o.ts LIMIT 1", resume_ts)
    assert next_entry[0] <= 0.003  # Kelly, if earned again at once, ratchets up from base risk


def test_funding_is_paid_and_received_and_counted_in_trade_pnl(ledger_2022):
    paid, received = _one(ledger_2022, "SELECT sum(paid), sum(received) FROM funding_summary")
    assert paid < 0 < received
    by_trade = _one(ledger_2022, "SELECT sum(abs(t.funding - f.total)) FROM trades t JOIN "
                                 "(SELECT trade_id, sum(amount) AS total FROM funding GROUP BY trade_id) f "
                                 "USING (trade_id)")[0]
    assert by_trade == pytest.approx(0.0, abs=1e-9)


def test_discovery_trades_are_small_tagged_and_outside_the_traded_regimes(ledger_2022):
    rows = ledger_2022.execute("SELECT t.risk_fraction, o.reason FROM trades t JOIN orders o "
                               "ON o.order_id = t.trade_id WHERE t.mode = 'explore'").fetchall()
    assert rows
    assert all(r[0] < 0.003 and r[1].startswith("discovery:") for r in rows)


def test_a_halt_holds_until_an_operator_resumes_it(tmp_path):
    tight = (*YEAR_2022, "agent.machine.transitions.4.when.trips_within_at_least.count=2")
    cfg = compose_run(*tight)
    market = load_run_market(cfg)
    whole = run_replay(cfg, tmp_path / "never_resumed", market=market)
    con = duckdb.connect(str(whole.ledger_path), read_only=True)
    halt_ts = _one(con, "SELECT min(ts) FROM transitions WHERE dest = 'halted'")[0]
    assert halt_ts is not None
    assert _one(con, "SELECT count(*) FROM transitions WHERE source = 'halted'")[0] == 0
    assert _one(con, "SELECT count(*) FROM orders WHERE intent = 'entry' AND ts > ?", halt_ts)[0] == 0
    con.close()

    halt_bar = int((market.ts + market.timeframe_ms).searchsorted(halt_ts))
    resumed_dir = tmp_path / "resumed"
    run_replay(cfg, resumed_dir, market=market, stop_after_bars=halt_bar + 24)
    operator.send(resumed_dir, "resume", "checked the exchange, all clear")
    run_replay(cfg, resumed_dir, market=market)
    con = duckdb.connect(str(resumed_dir / "ledger.duckdb"), read_only=True)
    lift = _one(con, "SELECT ts, reason FROM transitions WHERE trigger = 'lift_halt'")
    command = _one(con, "SELECT ts, reason FROM adjustments WHERE kind = 'operator_command'")
    entries_after = _one(con, "SELECT count(*) FROM orders WHERE intent = 'entry' AND ts > ?", lift[0])[0]
    con.close()
    assert lift[1] == "resume_requested" and command == (lift[0], "checked the exchange, all clear")
    assert entries_after > 0
    before = export(whole.ledger_path, until_ts=lift[0] - 1)
    assert export(resumed_dir / "ledger.duckdb", until_ts=lift[0] - 1) == before
    run_replay(cfg, resumed_dir, market=market)  # complete: a second resume doubles nothing
    assert export(resumed_dir / "ledger.duckdb", until_ts=lift[0] - 1) == before
