"""In paper trading the study runs beside the loop: bars keep closing while it runs, its result is taken
at a later bar and recorded with both times, and the canary that follows shadows bars as they arrive."""

from __future__ import annotations

import threading

from machine.compose import compose_run
from machine.engine import run_replay
from tests.machine.test_paper import T0, paper_overrides, start_clock_once_polled
from tests.optimise.support import HOUR_MS, param_rows
from tests.support.binance import FakeBinance, FakeClock

OPTIMISE = ("agent.optimise.enabled=true", "agent.optimise.every_days=0.5", "agent.optimise.lookback_days=4",
            "agent.optimise.trials=12", "agent.optimise.canary_days=0.5", "agent.optimise.watch_days=0.5",
            "agent.optimise.margin=0")


def test_a_paper_study_runs_beside_the_loop_and_its_result_is_taken_at_a_later_bar(tmp_path):
    run_dir = tmp_path / "paper"
    with FakeBinance(FakeClock(T0)) as exchange:
        # the first bar is T0's (the clock waits for the agent's first look), then 30 hours a second:
        # bars close while a study runs
        clock = threading.Thread(target=start_clock_once_polled, args=(exchange, 30 * 3600))
        clock.start()
        cfg = compose_run(*paper_overrides(exchange, *OPTIMISE))
        run_replay(cfg, run_dir, stop_after_bars=150)
        clock.join()
    rows = param_rows(run_dir / "ledger.duckdb")
    proposal, verdict = rows[0], rows[1]  # the first study: asked for at the bar 12 hours after T0's
    evidence = proposal["evidence"]
    assert proposal["kind"] == "param_proposal" and evidence["requested_at"] == T0 + HOUR_MS // 2 + 12 * HOUR_MS
    assert evidence["taken_at"] == proposal["ts"] > evidence["requested_at"]  # bars closed meanwhile
    assert evidence["window"]["to"] == evidence["requested_at"]  # it backtested the bars closed when asked
    assert evidence["window"]["to"] - evidence["window"]["from"] == 4 * 24 * HOUR_MS - HOUR_MS
    assert evidence["wall_seconds"] > 0 and evidence["trials_complete"] == 12
    assert proposal["after"] != proposal["before"]  # a challenger, shadowed on the bars after it was taken
    assert verdict["kind"] in ("param_promotion", "param_rejection")
    assert verdict["evidence"]["canary"] == {"from": proposal["ts"], "to": proposal["ts"] + 12 * HOUR_MS}
    assert verdict["evidence"]["challenger"]["bars"] == verdict["evidence"]["incumbent"]["bars"] == 12
