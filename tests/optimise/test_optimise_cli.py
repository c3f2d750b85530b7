"""``ratchet-optimise`` as a user runs it: one study over a window, overrides to paste, resumable after
kill -9, and workers in several processes sharing one study through a journal file or an SQLite URL."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from machine.compose import compose_run
from machine.optimise.space import in_force

WINDOW = ("agent=futures", "market=perp_1h", "market.start=2023-09-01", "market.end=2023-10-01")
NAME = "futures-perp_1h-20230901-20230930"


def optimise(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "machine.optimise.cli", *args], capture_output=True, text=True)


def study_in(folder, name: str = NAME) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=JournalStorage(JournalFileBackend(str(folder / "study.journal"))))


def completed_so_far(folder) -> int:
    """Complete trials of a study another process is writing: 0 until its journal holds the study."""
    journal = folder / "study.journal"
    if not journal.exists():
        return 0
    summaries = optuna.get_all_study_summaries(JournalStorage(JournalFileBackend(str(journal))))
    return len(complete(study_in(folder))) if any(s.study_name == NAME for s in summaries) else 0


def complete(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: t.number)


def test_a_study_prints_its_best_parameters_as_overrides_that_compose(tmp_path):
    out = optimise(*WINDOW, "agent.optimise.trials=12", f"++study.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""  # no progress bar when stderr is not a terminal
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"study {NAME}: 12 trials complete, 0 pruned")
    assert lines[-2] == "overrides:"
    pasted = compose_run(*WINDOW, *lines[-1].split())
    study = study_in(tmp_path)
    assert in_force(pasted.agent.optimise.space, pasted.agent.components) == study.best_params
    assert complete(study)[0].params == in_force(pasted.agent.optimise.space, compose_run(*WINDOW).agent.components)
    again = optimise(*WINDOW, "agent.optimise.trials=12", f"++study.dir={tmp_path}")  # done: nothing to add
    assert again.stdout.splitlines()[-1] == lines[-1] and len(study_in(tmp_path).trials) == 12


def test_kill_9_mid_study_and_the_same_command_finish_it_as_an_uninterrupted_study(tmp_path):
    budget = ("agent.optimise.trials=60",)
    reference = optimise(*WINDOW, *budget, f"++study.dir={tmp_path / 'reference'}")
    assert reference.returncode == 0, reference.stderr
    folder = tmp_path / "killed"
    command = [sys.executable, "-m", "machine.optimise.cli", *WINDOW, *budget, f"++study.dir={folder}"]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while completed_so_far(folder) < 5:
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert len(complete(study_in(folder))) < 60
    resumed = subprocess.run(command, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = complete(study_in(tmp_path / "reference")), complete(study_in(folder))
    assert [(t.params, t.value) for t in got] == [(t.params, t.value) for t in expected]
    assert resumed.stdout.splitlines()[-1] == reference.stdout.splitlines()[-1]


@pytest.mark.parametrize("storage", ["journal", "sqlite"])
def test_two_workers_share_one_study_on_one_storage_without_duplicate_trial_numbers(tmp_path, storage):
    url = f"sqlite:///{tmp_path / 'studies.db'}" if storage == "sqlite" else str(tmp_path / "shared.journal")
    worker = [sys.executable, "-m", "machine.optimise.cli", *WINDOW[:3], "market.end=2023-09-15",
              "agent.optimise.trials=60",
              f"agent.optimise.storage={url}", "++study.name=shared", "++study.worker=true",
              f"++study.dir={tmp_path}"]
    workers = [subprocess.Popen(worker, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    ended = [(process.communicate(timeout=300)[1], process.returncode) for process in workers]
    assert [code for _, code in ended] == [0, 0], ended
    study = optuna.load_study(study_name="shared", storage=url if storage == "sqlite" else JournalStorage(
        JournalFileBackend(url)))
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers)) and 60 <= len(trials) <= 61
    by_worker = {}
    for t in trials:
        by_worker.setdefault(t.user_attrs["worker"], []).append(t.number)
    assert len(by_worker) == 2, by_worker  # both workers ran trials of the one study


def test_n_jobs_runs_the_study_in_several_processes_here(tmp_path):
    out = optimise(*WINDOW, "agent.optimise.trials=150", "++study.jobs=2", f"++study.dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    trials = complete(study_in(tmp_path))
    assert 150 <= len(trials) <= 151
    assert len({t.user_attrs["worker"] for t in trials}) == 2


def test_an_agent_without_a_search_space_is_told_how_to_declare_one(tmp_path):
    out = optimise("experiment=ema_cross_baseline", f"++study.dir={tmp_path}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.startswith("ratchet-optimise: ConfigError: agent.optimise: agent 'ema_cross' declares no "
                                 "search space")
