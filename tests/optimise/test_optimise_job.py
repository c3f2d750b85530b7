"""The weekly optimiser in a replay of the bundled perpetuals: studies on the agent's clock, canaries
of two shadows, promotions that rebuild the live components at a bar boundary, a rollback; every
step an adjustments row, every promoted set a hashed file; deterministic, resumable, causal."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time

import duckdb
import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from ledger.views import create_views
from machine.compose import compose_run
from machine.engine import load_run_market, run_replay
from machine.optimise.backtest import Backtest
from machine.optimise.space import merged
from tests.optimise.support import DAY_MS, FUTURES, HOUR_MS, first_close, param_rows
from tests.support.ledger_export import export
from tests.support.oracles import comparable
from tests.support.perturb import bar_closing_at, probe

VERDICTS = {"param_proposal": {"param_rejection", "param_promotion"},
            "param_promotion": {"param_confirmation", "param_rollback"}}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    cfg = compose_run(*FUTURES)
    result = run_replay(cfg, tmp_path_factory.mktemp("optimise") / "run")
    return cfg, result, param_rows(result.ledger_path)


def _changes(rows):
    return [r for r in rows if r["kind"] in ("param_promotion", "param_rollback")]


def _trials(journal) -> int:
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return sum(s.n_trials for s in optuna.get_all_study_summaries(storage))


def test_every_proposal_gets_one_verdict_and_a_promotion_one_watch(run):
    _, _, rows = run
    pending = None
    for row in rows:
        assert row["kind"] == "param_proposal" if pending is None else row["kind"] in VERDICTS[pending], row
        pending = row["kind"] if row["kind"] in VERDICTS else None
    kinds = {r["kind"] for r in rows}
    assert kinds == {"param_proposal", "param_rejection", "param_promotion", "param_confirmation", "param_rollback"}


def test_studies_come_every_seven_days_on_the_bars_closed_by_then(run):
    _, result, rows = run
    proposals = [r for r in rows if r["kind"] == "param_proposal"]
    assert proposals[0]["ts"] == first_close(result.ledger_path) + 7 * DAY_MS
    for before, after in zip(proposals, proposals[1:], strict=False):
        promoted = any(before["ts"] < c["ts"] < after["ts"] for c in _changes(rows))
        assert after["ts"] - before["ts"] == (14 if promoted else 7) * DAY_MS  # a promotion's watch comes first
    for p in proposals:
        window, study = p["evidence"]["window"], p["evidence"]["study"]
        assert window["to"] == p["ts"] and window["to"] - window["from"] == 14 * DAY_MS - HOUR_MS
        assert p["evidence"]["requested_at"] == p["evidence"]["taken_at"] == p["ts"]  # replay: inline
        assert p["evidence"]["trials_complete"] == 8 and study.startswith("futures@")
        assert p["evidence"]["best_value"] >= p["evidence"]["in_force_value"]  # the set in force is trial 0


def test_a_promotion_rebuilds_the_signal_at_its_bar_and_a_rollback_restores_the_previous_set(run):
    cfg, result, rows = run
    declared = {"signal.fast": 20, "signal.slow": 50}
    changes = _changes(rows)
    assert changes[-1]["kind"] == "param_rollback"
    in_force = [(0, declared), *((c["ts"], c["after"]["params"]) for c in changes)]
    orders = export(result.ledger_path, tables=("orders",))["orders"]
    crossed = [(o[0], o[-1]) for o in orders if o[7] == "entry" and "crossed" in o[-1]]
    seen = set()
    for ts, reason in crossed:
        since, params = next((s, p) for s, p in reversed(in_force) if s <= ts)
        assert re.match(rf"ema{params['signal.fast']} crossed (above|below) ema{params['signal.slow']}", reason)
        seen.add(since)
    assert len(seen) >= 3  # entries under the declared set and under promoted ones
    rollback = changes[-1]
    undone = next(c for c in reversed(changes[:-1]) if c["kind"] == "param_promotion")
    assert rollback["after"]["params"] == undone["before"]["params"] and rollback["before"] == undone["after"]


def test_each_promoted_set_is_a_versioned_hashed_file_with_its_history(run):
    _, result, rows = run
    folder = result.run_dir / "params"
    index = json.loads((folder / "promoted_params.json").read_text())
    history = index["history"]
    assert [e["kind"] for e in history] == ["declared", *(c["kind"].removeprefix("param_") for c in _changes(rows))]
    for entry in history:
        data = (folder / entry["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"]
        assert json.loads(data) == {"version": entry["version"], "params": entry["params"]}
    for change, entry in zip(_changes(rows), history[1:], strict=True):
        assert (change["ts"], change["after"]["version"], change["evidence"]["sha256"]) == (
            entry["at"], entry["version"], entry["sha256"])
        assert change["evidence"]["file"] == f"params/{entry['file']}"
    con = duckdb.connect(str(result.ledger_path), read_only=True)
    create_views(con)
    view = con.execute("SELECT epoch_ms(ts), kind, version, params, file, sha256 FROM params").fetchall()
    con.close()
    assert [(*row[:3], json.loads(row[3]), *row[4:]) for row in view] == [
        (e["at"], f"param_{e['kind']}", e["version"], e["params"], f"params/{e['file']}", e["sha256"])
        for e in history[1:]]
    assert index["current"] == history[-1]["version"] == history[-3]["version"]  # rolled back to the set before


def test_a_canary_verdict_is_what_two_shadows_earn_on_the_bars_after_the_proposal(run, tmp_path):
    cfg, _, rows = run
    market = load_run_market(cfg)
    judged = [r for r in rows if "canary" in r["evidence"]]
    promotion = next(r for r in judged if r["kind"] == "param_promotion")
    rejection = next(r for r in judged if r["kind"] == "param_rejection")
    for row, challenger, incumbent in ((promotion, promotion["after"]["params"], promotion["before"]["params"]),
                                       (rejection, rejection["after"], rejection["before"])):
        start = bar_closing_at(market, row["evidence"]["canary"]["from"]) + 1
        end = bar_closing_at(market, row["evidence"]["canary"]["to"]) + 1
        assert row["ts"] == row["evidence"]["canary"]["to"] and end - start == 7 * 24
        for params, side in ((challenger, "challenger"), (incumbent, "incumbent")):
            alone = Backtest(cfg, merged(cfg.agent.components, params), market, start, end, leaders={},
                             artifacts_dir=tmp_path)
            alone.advance(end)
            assert alone.performance().evidence(cfg.agent.optimise.objective) == row["evidence"][side]
        lead = row["evidence"]["lead"]
        assert (lead > 0.25) == (row["kind"] == "param_promotion")


def test_stepping_over_quiet_bars_gives_the_optimiser_the_ledger_of_the_bar_by_bar_loop(tmp_path):
    """Studies fall due, canaries end and shadows catch up at the same bars whichever loop steps them."""
    overrides = (*FUTURES[:3], "market.end=2023-10-20", *FUTURES[4:])
    skipped = run_replay(compose_run(*overrides), tmp_path / "skip")
    stepped = run_replay(compose_run(*overrides, "skip_quiet_bars=false"), tmp_path / "step")
    assert len(param_rows(skipped.ledger_path)) >= 8
    assert comparable(skipped.ledger_path) == comparable(stepped.ledger_path)


def test_the_same_config_seed_and_data_give_the_same_studies_and_promotions(run, tmp_path):
    cfg, result, rows = run
    again = run_replay(cfg, tmp_path / "again")
    assert param_rows(again.ledger_path) == rows
    history = json.loads((result.run_dir / "params" / "promoted_params.json").read_text())
    assert json.loads((again.run_dir / "params" / "promoted_params.json").read_text()) == history


def test_a_run_stopped_mid_canary_resumes_to_the_uninterrupted_ledger_reusing_its_studies(run, tmp_path):
    cfg, result, rows = run
    market = load_run_market(cfg)
    promoted = _changes(rows)[0]["ts"]
    stop = bar_closing_at(market, promoted + 3 * DAY_MS) + 1 - market.trade_from  # inside the watch
    folder = tmp_path / "resumed"
    run_replay(cfg, folder, stop_after_bars=stop)
    trials_before = _trials(folder / "params" / "studies.journal")
    resumed = run_replay(cfg, folder)
    assert resumed.resumed_from_bar is not None
    assert comparable(resumed.ledger_path) == comparable(result.ledger_path)
    assert (json.loads((folder / "params" / "promoted_params.json").read_text())
            == json.loads((result.run_dir / "params" / "promoted_params.json").read_text()))
    uninterrupted = _trials(result.run_dir / "params" / "studies.journal")
    assert trials_before < uninterrupted == _trials(folder / "params" / "studies.journal")


KILLED = (*FUTURES[:3], "market.end=2023-09-12", *FUTURES[4:6], "agent.optimise.trials=50")


def test_kill_9_in_the_middle_of_a_study_and_a_restart_finish_it_as_if_uninterrupted(tmp_path):
    reference = run_replay(compose_run(*KILLED), tmp_path / "reference")
    folder = tmp_path / "killed"
    command = [sys.executable, "-c", "from machine.cli import main; main()", *KILLED, f"hydra.run.dir={folder}"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    journal = folder / "params" / "studies.journal"
    deadline = time.monotonic() + 120
    while True:  # the first study has some trials done and not all of them: kill
        assert child.poll() is None, child.communicate()[1]
        assert time.monotonic() < deadline, "the first study never started"
        if journal.exists():
            studies = optuna.get_all_study_summaries(JournalStorage(JournalFileBackend(str(journal))))
            if studies and 5 <= studies[0].n_trials < 50:
                break
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.communicate()
    storage = JournalStorage(JournalFileBackend(str(journal)))
    interrupted = optuna.load_study(study_name=optuna.get_all_study_summaries(storage)[0].study_name,
                                    storage=storage)
    assert len(interrupted.trials) < 50
    restarted = subprocess.run(command, capture_output=True, text=True)
    assert restarted.returncode == 0, restarted.stderr
    assert comparable(folder / "ledger.duckdb") == comparable(reference.ledger_path)
    finished = optuna.load_study(study_name=interrupted.study_name, storage=JournalStorage(
        JournalFileBackend(str(journal))))
    states = [t.state for t in finished.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 50
    assert set(states) <= {optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL}  # the one it was in


def test_parameters_older_than_eight_days_start_a_study_at_once(tmp_path):
    cfg = compose_run(*FUTURES[:3], "market.end=2023-10-20", *FUTURES[4:], "agent.optimise.every_days=30")
    result = run_replay(cfg, tmp_path / "stale")
    rows = param_rows(result.ledger_path)
    proposals = [r for r in rows if r["kind"] == "param_proposal"]
    reviewed = first_close(result.ledger_path)
    assert len(proposals) >= 3
    for proposal in proposals:
        assert proposal["ts"] == reviewed + 8 * DAY_MS  # never the 30-day schedule: staleness comes first
        assert proposal["reason"].startswith("the parameters in force were last reviewed ")
        assert "more than 8 days ago" in proposal["reason"] and "scheduled" not in proposal["reason"]
        verdicts = [r for r in rows if r["ts"] >= proposal["ts"] and r["kind"] != "param_proposal"]
        if verdicts:  # a verdict reviews the set in force (a promotion's only after its watch)
            reviewed = verdicts[0]["ts"] if verdicts[0]["kind"] != "param_promotion" else verdicts[1]["ts"]


def test_a_study_backtests_only_bars_closed_by_its_bar(run, tmp_path):
    cfg, result, rows = run
    market = load_run_market(cfg)
    t = next(r["ts"] for r in rows if r["kind"] == "param_proposal")
    (found,) = probe(cfg, market, result.ledger_path, [(t, 3)], tmp_path)
    assert found.differences == []
    assert any(r["ts"] == t for r in rows)  # the proposal at t was compared
