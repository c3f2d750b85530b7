"""The run summary counts the data issues a lenient replay skipped and says how to read them.

(It tests machine/report.py; it lives here only because of how the work was split.)
"""

from __future__ import annotations

import shlex

from ledger.cli import main as ratchet_ledger
from machine.report import render, summarize

HALT_WINDOW = ("agent=ema_cross", "market=spot_1h", "market.start=2023-03-01", "market.end=2023-04-15",
               "market.symbols=[BTC/USDT,ETH/USDT]", "market.on_gap=skip")


def test_a_replay_across_the_2023_halt_shows_its_gaps_and_the_command_to_read_them(replay, capsys):
    result = replay(*HALT_WINDOW)
    run_dir = result.ledger_path.parent

    summary = summarize(result.ledger_path)
    text = render(summary, run_dir)

    assert summary["data_issues"] == {"gap": 2}  # BTC and ETH both miss 2023-03-24 13:00
    command = f"ratchet-ledger {run_dir} --sql 'SELECT * FROM data_issues'"
    assert f"data issues: 2 gap; read them: {command}" in text.splitlines()
    capsys.readouterr()
    assert ratchet_ledger(shlex.split(command)[1:]) == 0
    shown = capsys.readouterr().out
    assert shown.count("gap") == 2 and "BTC/USDT" in shown and "ETH/USDT" in shown


def test_a_replay_without_gaps_says_there_were_no_data_issues(replay):
    result = replay(*HALT_WINDOW[:2], "market.start=2023-04-01", "market.end=2023-04-15",
                    "market.symbols=[BTC/USDT]")

    text = render(summarize(result.ledger_path), result.ledger_path.parent)

    assert "data issues: none" in text.splitlines()


def test_every_kind_of_issue_is_counted(tmp_path):
    text = render({"ledger": "x", "agents": {}, "data_issues": {"duplicate": 3, "gap": 1}}, tmp_path)

    assert f"data issues: 3 duplicate, 1 gap; read them: ratchet-ledger {tmp_path}" in text


def test_the_risk_mode_list_leaves_out_the_states_tagged_exploring_whatever_their_name(tmp_path):
    moves = [("conservative", "scouting", "explore"), ("scouting", "conservative", "end_exploring"),
             ("conservative", "circuit_broken", "trip_drawdown")]
    agent = {"trades": 0, "net_pnl": 0.0, "fees": 0.0, "funding_paid": 0.0, "funding_received": 0.0,
             "time_in_state": {}, "transitions": [
                 {"ts": "2024-01-01 00:00", "source": s, "dest": d, "trigger": t, "reason": t} for s, d, t in moves]}
    summary = {"ledger": "x", "agents": {"futures": agent}, "data_issues": {}, "exploring_states": ["scouting"]}

    listed = render(summary, tmp_path).split("with the guards that fired:\n")[1].splitlines()

    assert [line.split()[2:5] for line in listed if "->" in line] == [["conservative", "->", "circuit_broken"]]
