"""The optimiser on the agent's clock: study, propose, canary, promote, watch, roll back.

One thing at a time, on the bar closes the agent steps (replay, paper and live alike):

1. **Study** when one is due: ``every_days`` after the last one began (the first one that long after
   the run's first bar), or at once when the set in force is older than ``stale_after_days``: its
   age runs from its last review (its promotion or rollback, or a verdict that kept it: a study or
   a canary it won, a watch it passed; the declared set's from the run's first bar). The study
   backtests candidates on the ``lookback_days`` of bars closed by now. In replay it runs inline
   (deterministic); in paper and live beside the loop, and its result is taken at a later bar.
2. **Propose** the study's best (``param_proposal``). The set in force is the study's first trial;
   when it stays the best, there is no challenger (``param_rejection`` at once).
3. **Canary**: the challenger and the set in force shadow the agent for ``canary_days``; the
   challenger is promoted when it beats the incumbent by more than ``margin``
   (``param_promotion``), else rejected (``param_rejection``).
4. **Promote** at that bar boundary: the changed components are rebuilt with the new values, a
   new version lands in ``RUN/params``, and for ``watch_days`` the previous set shadows the promoted
   one; if it does better by more than the margin, the agent rolls back to it (``param_rollback``),
   else the promotion stands (``param_confirmation``).

A resumed run replays its bars; the job takes the same decisions at the same bars and reuses what
the run folder holds: finished studies from the Optuna storage (an interrupted one goes on from
its last trial), versions from the params registry, the bar each study's result was taken at.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.component import AgentContext, Component, Stage
from core.errors import ConfigError
from machine.agent import Agent
from machine.config import RunConfig
from machine.optimise.backtest import Leader, ScoreTape, evaluator
from machine.optimise.canary import Canary, Verdict
from machine.optimise.promotion import Kind, ParamsEntry, ParamsRegistry, canonical, write_atomically
from machine.optimise.space import OptimiseConfig, in_force, learns_on_clock, merged, overrides
from machine.optimise.study import Study, StudyResult, open_storage

DAY_MS = 86_400_000
PARAMS_DIR = "params"
PROPOSALS = "proposals.json"
JOURNAL = "studies.journal"


def iso(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


@dataclass
class _Pending:
    """A study asked for at bar close ``requested_at``; ``taken_at`` is known when resuming."""

    requested_at: int
    reason: str
    window: tuple[int, int]  # bar closes of the first and last bar backtested
    future: Future[StudyResult]
    wall_started: float
    taken_at: int | None

    def ready(self, now: int, muted: bool) -> bool:
        if self.taken_at is not None:
            return now >= self.taken_at
        return self.future.done() and not muted  # a result is taken where the ledger can say so


@dataclass
class _Shadowing:
    """A canary (a proposal on trial) or a watch (a promotion on trial)."""

    canary: Canary
    challenger: dict[str, Any]
    incumbent: dict[str, Any]
    started_at: int
    proposal: dict[str, Any]


class ParameterJob(Component):
    """Component-shaped (``on_clock``, ``next_clock``) so the agent schedules it beside its learners."""

    stage = Stage.FEATURES  # never in a pipeline
    Config = OptimiseConfig
    config: OptimiseConfig

    def __init__(self, cfg: RunConfig, run_dir: Path, agent: Agent) -> None:
        assert cfg.agent.optimise is not None
        super().__init__("optimise", cfg.agent.optimise)
        self.cfg, self.run_dir, self.agent = cfg, run_dir, agent
        self.declared = {name: dict(decl) for name, decl in cfg.agent.components.items()}
        self.leaders = _leaders(agent)
        self.folder = run_dir / PARAMS_DIR
        self.registry = ParamsRegistry(self.folder)
        self._storage_spec = self.config.storage or str(self.folder / JOURNAL)
        self._storage: Any = None  # opened at the first study
        self.params = in_force(self.config.space, self.declared)
        self.reviewed: int | None = None  # bar close the set in force was last reviewed at
        self.last_study: int | None = None
        self.version = ""  # the version in force (the registry's latest may be ahead when resuming)
        self._pending: _Pending | None = None
        self._canary: _Shadowing | None = None
        self._watch: _Shadowing | None = None
        self._retry_at = 0  # after a failure: no study before this bar close

    # --- the agent's clock ---------------------------------------------------------------------
    def next_clock(self, i: int) -> int:
        if self.reviewed is None:
            return i
        if self._pending is not None:
            return i if self._pending.taken_at is None else max(i, self.agent.bar_closing_at(self._pending.taken_at))
        shadowing = self._canary or self._watch
        if shadowing is not None:
            return max(i, self.agent.bar_closing_at(shadowing.canary.end_ts))
        return max(i, self.agent.bar_closing_at(self._due()))

    def on_clock(self, i: int, now: int, ctx: AgentContext) -> None:
        if self.reviewed is None:
            self._begin(now)
        try:
            self._step(i, now)
        except Exception:
            self._pending = self._canary = self._watch = None  # fail safe: the set in force stays ...
            self._retry_at = now + int(self.config.every_days * DAY_MS)  # ... and the next try is a week on
            raise

    def _step(self, i: int, now: int) -> None:
        market = self.agent.market
        for shadowing in (self._canary, self._watch):
            if shadowing is not None:
                shadowing.canary.advance(market, i)
        if self._canary is not None and now >= self._canary.canary.end_ts:
            self._judge_canary(i, now)
        if self._watch is not None and now >= self._watch.canary.end_ts:
            self._judge_watch(now)
        if self._pending is not None and self._pending.ready(now, self.agent.recorder.muted):
            self._propose(i, now)
        if self._pending is None and self._canary is None and self._watch is None and now >= self._due():
            self._start_study(i, now, self._why(now))
            if self._pending is not None and self._pending.ready(now, self.agent.recorder.muted):
                self._propose(i, now)

    def _begin(self, now: int) -> None:
        """The first bar: the declared set is version 1 (found again when resuming)."""
        first = self.registry.history()[:1]
        if first and canonical(first[0].params) != canonical(self.params):
            raise ConfigError(f"{self.folder}: its first parameter set is not this agent's declared one; "
                              "the folder belongs to another run")
        self.version = self.registry.record(now, "declared", self.params, "declared in the agent's config").version
        self.reviewed = self.last_study = now

    def _rules(self) -> tuple[tuple[int, str], ...]:
        """(bar close, why) of each rule that asks for a study."""
        assert self.reviewed is not None and self.last_study is not None
        c = self.config
        return ((self.last_study + int(c.every_days * DAY_MS),
                 f"scheduled: {c.every_days:g} days since the last study began"),
                (self.reviewed + int(c.stale_after_days * DAY_MS),
                 f"the parameters in force were last reviewed {iso(self.reviewed)}, more than "
                 f"{c.stale_after_days:g} days ago"))

    def _due(self) -> int:
        """When the next study is due (a week after a failed one at the earliest)."""
        return max(min(at for at, _ in self._rules()), self._retry_at)

    def _why(self, now: int) -> str:
        return "; ".join(why for at, why in self._rules() if at <= now) or "a week after a failed study"

    # --- 1. study ----------------------------------------------------------------------------
    def _start_study(self, i: int, now: int, why: str) -> None:
        c, tf = self.config, self.agent.market.timeframe_ms
        end = i + 1
        start = max(0, end - round(c.lookback_days * DAY_MS / tf))
        market, cfg, run_dir = self.agent.market, self.cfg, self.run_dir
        symbols = list(market.symbols)
        eager = not self.agent.learns_inline  # beside the loop: read the live scores now, on the loop's thread
        tapes = {name: ScoreTape(leader, symbols, start, end, eager=eager) for name, leader in self.leaders.items()}
        declarations, params = self.declared, dict(self.params)
        name = f"{cfg.agent.name}@{iso(now)}"
        seed = (cfg.seed * 1_000_003 + now // 60_000) % (2**31)
        if self._storage is None:
            self._storage = open_storage(self._storage_spec)
        storage = self._storage

        evaluate = evaluator(cfg, declarations, market, start, end, leaders=tapes, artifacts_dir=run_dir)

        def study() -> StudyResult:
            runner = Study(name, storage, c.space, c.objective, seed=seed, startup_trials=c.startup_trials)
            if c.storage is None:
                runner.fail_stale()  # the run folder's own journal: only this run writes it
            return runner.run(c.trials, evaluate, first=params)

        taken = self._taken_at(name)
        window = (int(market.ts[start]) + tf, now)
        self._pending = _Pending(now, why, window, self.agent.learn(study), time.perf_counter(), taken)
        self.last_study = now

    # --- 2. propose ----------------------------------------------------------------------------
    def _propose(self, i: int, now: int) -> None:
        pending, self._pending = self._pending, None
        assert pending is not None
        result = pending.future.result()
        if pending.taken_at is None:
            self._note_taken(result.name, now)
        evidence: dict[str, Any] = {
            **result.summary(), "objective": self.config.objective, "requested_at": pending.requested_at,
            "taken_at": now, "window": {"from": pending.window[0], "to": pending.window[1]},
            "lookback": {"best": result.best_performance, "in_force": result.first_performance},
            "overrides": overrides(result.best)}
        if not self.agent.learns_inline:
            evidence["wall_seconds"] = round(time.perf_counter() - pending.wall_started, 3)
        self.agent.adjust("param_proposal", self.params, result.best,
                          f"{pending.reason}; study {result.name}: the best of {result.complete} trials scored "
                          f"{result.best_value:.4g} on the {self.config.lookback_days:g} days before "
                          f"{iso(pending.requested_at)} (the set in force {_num(result.first_value)})", evidence)
        proposal = {"study": result.name, "lookback_value": result.best_value}
        if canonical(result.best) == canonical(self.params):
            self.agent.adjust("param_rejection", self.params, result.best,
                              "the set in force is the study's best: no challenger to canary", proposal)
            self.reviewed = now
            return
        self._canary = self._shadowing(result.best, self.params, i, now + int(self.config.canary_days * DAY_MS), now,
                                       proposal)

    def _shadowing(self, challenger: dict[str, Any], incumbent: dict[str, Any], i: int, end_ts: int, now: int,
                   proposal: dict[str, Any]) -> _Shadowing:
        canary = Canary(self.cfg, merged(self.declared, challenger), merged(self.declared, incumbent),
                        self.agent.market, i + 1, end_ts, leaders=self.leaders, artifacts_dir=self.run_dir)
        return _Shadowing(canary, dict(challenger), dict(incumbent), now, proposal)

    def _judged(self, shadowing: _Shadowing, stage: str, now: int) -> tuple[Verdict, dict[str, Any], float]:
        """The verdict between two shadows, its evidence (with the stage's span), and the span in days."""
        c = self.config
        verdict = shadowing.canary.verdict(c.objective, c.margin)
        evidence = {**verdict.evidence(c.objective, c.margin), **shadowing.proposal,
                    stage: {"from": shadowing.started_at, "to": now}}
        return verdict, evidence, (now - shadowing.started_at) / DAY_MS

    # --- 3. canary -----------------------------------------------------------------------------
    def _judge_canary(self, i: int, now: int) -> None:
        shadowing, self._canary = self._canary, None
        assert shadowing is not None
        c = self.config
        verdict, evidence, days = self._judged(shadowing, "canary", now)
        score = f"{_num(verdict.challenger.objective(c.objective))} vs {_num(verdict.incumbent.objective(c.objective))}"
        if not verdict.challenger_wins:
            self.agent.adjust("param_rejection", shadowing.incumbent, shadowing.challenger,
                              f"the challenger did not beat the set in force by more than {c.margin:g} over "
                              f"{days:g} days of canary bars ({c.objective} {score})", evidence)
            self.reviewed = now
            return
        reason = (f"the challenger beat the set in force by {verdict.lead:.4g} (margin {c.margin:g}) over "
                  f"{days:g} days of canary bars ({c.objective} {score})")
        before, entry = self._apply(now, "promotion", shadowing.challenger, reason)
        self._record_change("param_promotion", before, entry, shadowing.incumbent, reason, evidence)
        if c.watch_days > 0:
            end_ts = now + int(c.watch_days * DAY_MS)
            self._watch = self._shadowing(shadowing.incumbent, shadowing.challenger, i, end_ts, now,
                                          {"promoted": entry.version, "previous": before})

    # --- 4. watch ------------------------------------------------------------------------------
    def _judge_watch(self, now: int) -> None:
        shadowing, self._watch = self._watch, None
        assert shadowing is not None
        c = self.config
        verdict, evidence, days = self._judged(shadowing, "watch", now)
        score = f"{_num(verdict.incumbent.objective(c.objective))} vs {_num(verdict.challenger.objective(c.objective))}"
        if not verdict.challenger_wins:
            self.agent.adjust("param_confirmation", shadowing.incumbent, shadowing.incumbent,
                              f"the promoted set held against the previous set's shadow over {days:g} days "
                              f"({c.objective} {score})", evidence)
            self.reviewed = now
            return
        reason = (f"the promoted set fell behind the previous set's shadow by {verdict.lead:.4g} "
                  f"(margin {c.margin:g}) over {days:g} days ({c.objective} {score})")
        before, entry = self._apply(now, "rollback", shadowing.challenger, reason)
        self._record_change("param_rollback", before, entry, shadowing.incumbent, reason, evidence)

    def _apply(self, now: int, kind: Kind, params: dict[str, Any], reason: str) -> tuple[str, ParamsEntry]:
        """The set takes force at this bar boundary: registry first (a resumed run finds it), then the
        agent's changed components; returns the version it replaced and the new entry."""
        before = self.version
        entry = self.registry.record(now, kind, params, reason)
        new, old = merged(self.declared, params), merged(self.declared, self.params)
        self.agent.replace_components({name: decl for name, decl in new.items() if decl != old[name]})
        self.params, self.reviewed, self.version = dict(params), now, entry.version
        return before, entry

    def _record_change(self, kind: str, before: str, entry: ParamsEntry, replaced: dict[str, Any],
                       reason: str, evidence: dict[str, Any]) -> None:
        self.agent.adjust(kind, {"version": before, "params": replaced},
                          {"version": entry.version, "params": entry.params}, reason,
                          {**evidence, "file": f"{PARAMS_DIR}/{entry.file}", "sha256": entry.sha256})

    # --- the bar each study's result was taken at (paper, live: a later bar than it was asked at) ---
    def _taken_at(self, study: str) -> int | None:
        path = self.folder / PROPOSALS
        if not path.exists():
            return None
        return json.loads(path.read_text()).get(study)

    def _note_taken(self, study: str, now: int) -> None:
        path = self.folder / PROPOSALS
        taken = json.loads(path.read_text()) if path.exists() else {}
        if taken.get(study) != now:
            taken[study] = now
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomically(path, json.dumps(taken, indent=1, sort_keys=True).encode())


def _leaders(agent: Agent) -> dict[str, Leader]:
    """The live components that learn on the clock: trials and shadows follow their scores."""
    leaders: dict[str, Leader] = {}
    for name, component in agent.components.items():
        if learns_on_clock(type(component)):
            if not (hasattr(component, "probability") and hasattr(component, "follow")):
                raise ConfigError(f"agent.optimise: agent.components.{name} learns on the agent's clock and offers "
                                  "no scores to follow (probability, follow); the optimiser cannot backtest this agent")
            leaders[name] = component  # type: ignore[assignment]
    return leaders


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"

