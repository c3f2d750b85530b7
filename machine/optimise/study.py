"""An Optuna study over one window: seeded TPE, the set in force as its first trial, any storage.

Trials run through ask and tell until the study holds ``trials`` finished ones (complete, or pruned
because the candidate is not a valid configuration, e.g. fast >= slow). Each trial gets a TPE
sampler seeded from the study's seed and the number of trials before it that did not fail, so a
study killed mid-way and resumed from its storage suggests what the uninterrupted one would have:
the interrupted trial is asked again with the same seed and the same history. Several workers may
share one storage (an RDB URL, or a journal file on a shared disk): each asks until the study is
done, and Optuna numbers their trials without duplicates.

Storage: a string with ``://`` is an RDB URL (``sqlite:///...``, ``postgresql://...``); anything
else is a journal file path (Optuna's JournalStorage, append-only: safe to kill at any point).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, Trial, TrialState

from core.errors import ConfigError
from machine.optimise.objective import Performance
from machine.optimise.space import Objective, ParamRange

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


class InvalidCandidate(Exception):
    """A candidate the agent refuses (a component's Config rejects the combination)."""


@dataclass(frozen=True)
class StudyResult:
    """What a finished study found: its best parameters and a summary for the ledger."""

    name: str
    best: dict[str, Any]
    best_value: float
    best_performance: dict[str, Any]
    first_value: float | None  # the set in force, trial 0
    first_performance: dict[str, Any] | None
    complete: int
    pruned: int

    def summary(self) -> dict[str, Any]:
        return {"study": self.name, "trials_complete": self.complete, "trials_pruned": self.pruned,
                "best_value": round(self.best_value, 6),
                "in_force_value": None if self.first_value is None else round(self.first_value, 6)}


def open_storage(spec: str) -> BaseStorage:
    """An RDB URL (``sqlite:///...``), or a path to a journal file (its folder made)."""
    if "://" in spec:
        for attempt in range(6):
            try:
                return optuna.storages.RDBStorage(spec)
            except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
                if attempt == 5:  # not another worker creating the same new database: a real failure
                    raise ConfigError(f"optimise.storage: cannot open {spec!r}: {_first_line(exc)}") from None
                time.sleep(0.2 * (attempt + 1))
            except (ImportError, ValueError, sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.OptunaError) as exc:
                raise ConfigError(f"optimise.storage: cannot open {spec!r}: {_first_line(exc)}") from None
    path = Path(spec).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial at INFO; a study here reports through its own progress line."""
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


class Study:
    """One named study on one storage, over one search space, maximising one objective."""

    def __init__(self, name: str, storage: str | BaseStorage, space: Mapping[str, ParamRange], objective: Objective, *,
                 seed: int, startup_trials: int) -> None:
        self.name, self.space, self.objective = name, dict(space), objective
        self.seed, self.startup_trials = seed, startup_trials
        with quiet_optuna():
            try:
                opened = open_storage(storage) if isinstance(storage, str) else storage
                self.study = optuna.create_study(study_name=name, storage=opened,
                                                 direction="maximize", load_if_exists=True)
            except (ValueError, optuna.exceptions.OptunaError) as exc:
                raise ConfigError(f"optimise.storage: cannot use {storage!r} for study {name}: {exc}") from None

    def finished(self) -> int:
        return sum(t.state in FINISHED for t in self.study.get_trials(deepcopy=False))

    def fail_stale(self) -> int:
        """Trials left running by a process that died: failed, so the study can go on (one worker only)."""
        stale = [t.number for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
        for number in stale:
            self.study.tell(number, state=TrialState.FAIL)
        return len(stale)

    def enqueue_first(self, params: Mapping[str, Any]) -> None:
        """The set in force as trial 0 of a new study (a study with trials has it already)."""
        with quiet_optuna():
            if not self.study.get_trials(deepcopy=False):
                self.study.enqueue_trial(dict(params))

    def run(self, trials: int, evaluate: Callable[[dict[str, Any]], Performance], *,
            first: Mapping[str, Any] | None = None, on_trial: Callable[[int, int], None] | None = None) -> StudyResult:
        """Ask and tell until ``trials`` trials are finished; ``first`` (the set in force) is trial 0."""
        with quiet_optuna():
            if first is not None:
                self.enqueue_first(first)
            done = self.finished()
            while done < trials:
                self._one(evaluate)
                done = self.finished()
                if on_trial is not None:
                    on_trial(done, trials)
            return self.result()

    def _one(self, evaluate: Callable[[dict[str, Any]], Performance]) -> None:
        trial = self.study.ask()
        before = [t for t in self.study.get_trials(deepcopy=False) if t.number < trial.number]
        index = sum(t.state != TrialState.FAIL for t in before)
        self.study.sampler = optuna.samplers.TPESampler(seed=_seed(self.seed, index),
                                                         n_startup_trials=self.startup_trials)
        params = {key: suggest(trial, key, rng) for key, rng in self.space.items()}
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")  # who ran it
        try:
            performance = evaluate(params)
        except InvalidCandidate as exc:
            trial.set_user_attr("invalid", str(exc))
            self.study.tell(trial, state=TrialState.PRUNED)
            return
        except BaseException:
            self.study.tell(trial, state=TrialState.FAIL)
            raise
        value = performance.objective(self.objective)
        trial.set_user_attr("performance", performance.evidence(self.objective))
        self.study.tell(trial, value if math.isfinite(value) else -1e9)

    def result(self) -> StudyResult:
        trials = self.study.get_trials(deepcopy=False)
        complete = [t for t in trials if t.state == TrialState.COMPLETE]
        if not complete:
            raise ConfigError(f"study {self.name}: no trial completed; every candidate was invalid "
                              f"({sum(t.state == TrialState.PRUNED for t in trials)} pruned)")
        best = max(complete, key=lambda t: (t.value, -t.number))  # the earliest of equals: the set in force wins ties
        first = next((t for t in complete if t.number == 0), None)
        return StudyResult(self.name, _params(best, self.space), float(best.value),  # type: ignore[arg-type]
                           best.user_attrs.get("performance", {}),
                           None if first is None else float(first.value),  # type: ignore[arg-type]
                           None if first is None else first.user_attrs.get("performance", {}),
                           len(complete), sum(t.state == TrialState.PRUNED for t in trials))


def suggest(trial: Trial, key: str, rng: ParamRange) -> Any:
    if rng.type == "choice":
        assert rng.choices is not None
        return trial.suggest_categorical(key, list(rng.choices))
    low, high = rng.bounds()
    if rng.type == "int":
        return trial.suggest_int(key, low, high, step=rng.step or 1, log=rng.log)
    return trial.suggest_float(key, low, high, log=rng.log)


def _params(trial: FrozenTrial, space: Mapping[str, ParamRange]) -> dict[str, Any]:
    return {key: trial.params[key] for key in space}


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _seed(seed: int, index: int) -> int:
    """A per-trial seed: the same for the same study seed and trial position, in every process."""
    return (seed * 1_000_003 + index) % (2**32)
