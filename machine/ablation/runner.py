"""The ablation as Hydra multiruns: every arm over every walk-forward stretch, then the comparisons.

Layout of an ablation folder::

    conf/ablation/<arm>.yaml     what each arm merges over the composed config (a config group option)
    conf/stretch/<stretch>.yaml  each stretch's market window
    arms/<stretch>/<arm>/        one `ratchet` run each (ledger, .hydra/overrides.yaml), pass 1
    placebos/<stretch>/<arm>/    the placebo arms, pass 2: they match what the full agent did in pass 1
    arms.log, placebos.log       the multiruns' output
    ablation.json, ablation.html the comparisons

Each pass is one ``ratchet -m`` over ``+ablation=<arms> +stretch=<stretches>`` with the user's
overrides, on the launcher given (joblib on the local cores by default). A folder already holding
finished runs of the same config is not replayed again (``ratchet`` resumes a run folder).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import yaml
from hydra.core.override_parser.overrides_parser import OverridesParser

from components.ml_gate import MLGate
from core.errors import ConfigError, RatchetError
from ledger.cli import connect_sweep, find_ledgers, json_value
from ledger.overrides import hydra_overrides, told
from ledger.report.fmt import YEAR_MS
from machine.ablation import shares
from machine.ablation.bootstrap import Bootstrap, Curve, figures, paired_intervals
from machine.ablation.loops import (
    FULL,
    AgentDeclaration,
    Arm,
    Loop,
    declared_loops,
    off_arm,
    select,
)
from machine.ablation.placebo import coin_arm, risk_arm
from machine.ablation.stretches import Stretch, plan_stretches
from machine.ablation.verdict import Comparison, verdict
from machine.compose import compose_dict
from machine.config import RunConfig, load_run_config

ARMS, PLACEBOS = "arms", "placebos"
RESULT_FILE = "ablation.json"
_RATCHET = "from machine.cli import main; main()"
_WINDOW = ("market.start", "market.end")


def _key(override: str) -> str:
    return override.lstrip("+~").split("=", 1)[0]


@dataclass(frozen=True)
class Plan:
    """What an ablation replays: the user's overrides, the loops switched off, the stretches."""

    overrides: tuple[str, ...]
    cfg: RunConfig
    agent: dict[str, Any]
    loops: tuple[Loop, ...]
    stretches: tuple[Stretch, ...]
    out: Path
    placebos: bool = True

    @property
    def arms(self) -> list[Arm]:
        return [Arm(FULL, "full", None), *(off_arm(loop) for loop in self.loops)]

    @property
    def base(self) -> list[str]:
        """The user's overrides less the market window, which the stretches carry (an override on the
        command line would win over a stretch's config group option), with the arms and stretches on
        the search path beside any the user gave."""
        given = [o for o in self.overrides if _key(o) not in (*_WINDOW, "hydra.searchpath")]
        paths = [p for o in self.overrides if _key(o) == "hydra.searchpath"
                 for p in OverridesParser.create().parse_override(o).value()]
        paths.append(f"file://{(self.out / 'conf').resolve()}")
        return [*given, "hydra.searchpath=[" + ",".join(f"'{p}'" for p in paths) + "]"]


def plan_ablation(overrides: Sequence[str], *, loops: Sequence[str] | None = None, every: str = "year",
                  out: Path | None = None, placebos: bool = True,
                  extra_loops: Sequence[Callable[[AgentDeclaration], list[Loop]]] = ()) -> Plan:
    """Compose and validate the agent, find its loops, cut the stretches. ``extra_loops`` finds loops
    the catalogue does not know (a test's planted component), as the catalogue's entries do."""
    data = compose_dict(*_task(overrides))
    cfg = load_run_config(data)
    declaration = AgentDeclaration(data["agent"])
    found = [*declared_loops(data["agent"]), *(loop for find in extra_loops for loop in find(declaration))]
    chosen = select(found, loops)
    if not chosen:
        raise ConfigError(f"agent {cfg.agent.name!r} declares no learning loop to switch off")
    stretches = plan_stretches(cfg, every)
    folder = out or Path("runs") / "ablation" / datetime.now(UTC).strftime("%Y-%m-%d/%H-%M-%S") / cfg.agent.name
    return Plan(tuple(overrides), cfg, data["agent"], tuple(chosen), tuple(stretches), folder, placebos)


def write_options(plan: Plan, arms: Sequence[Arm]) -> Path:
    """The arms and stretches as config group options under ``out/conf``; returns that folder."""
    conf = plan.out / "conf"
    for group, options in (("ablation", {a.name: a.config(plan.agent["name"]) for a in arms}),
                           ("stretch", {s.name: s.config() for s in plan.stretches})):
        (conf / group).mkdir(parents=True, exist_ok=True)
        for name, body in options.items():
            text = "# @package _global_\n" + (yaml.safe_dump(body, sort_keys=False, width=120) if body else "")
            (conf / group / f"{name}.yaml").write_text(text)
    return conf


def arm_overrides(plan: Plan, arm: str, stretch: str) -> list[str]:
    """The overrides that compose one arm on one stretch, as its multirun job is told them."""
    return [*plan.base, f"+ablation={arm}", f"+stretch={stretch}"]


def compose_arm(plan: Plan, arm: str, stretch: str) -> dict[str, Any]:
    """One arm on one stretch composed in this process, as its job composes it (its option written)."""
    return compose_dict(*_task(arm_overrides(plan, arm, stretch)))


def _not_held(changes: dict[str, Any], data: dict[str, Any], path: str = "") -> str | None:
    """The first key of ``changes`` whose value ``data`` does not hold (values derived from them may differ)."""
    for key, value in changes.items():
        where = f"{path}.{key}" if path else key
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            found = _not_held(value, data[key], where)
            if found is not None:
                return found
        elif data.get(key) != value:
            return where
    return None


def check_arms(plan: Plan, arms: Sequence[Arm]) -> None:
    """Each arm composes, validates, and holds its changes: an override of the same key would undo a
    switch (a command-line override wins over a config group option), so that is refused, naming the key."""
    stretch = plan.stretches[0].name
    for arm in arms:
        data = compose_arm(plan, arm.name, stretch)
        load_run_config(data)
        key = _not_held(arm.config(plan.agent["name"]), data)
        if key is not None:
            raise ConfigError(f"arm {arm.name}: an override of {key} undoes its switch (a command-line override "
                              "wins over the arm's config); set it in an experiment file instead, or leave it to "
                              "the ablation")


def launch(plan: Plan, arms: Sequence[Arm], folder: str, launcher: Sequence[str],
           say: Callable[[str], None] = print) -> None:
    """One ``ratchet -m`` over ``arms`` x the stretches into ``out/folder``; its output goes to ``folder.log``."""
    write_options(plan, arms)
    check_arms(plan, arms)
    args = [*plan.base, "report=false", "+ablation=" + ",".join(a.name for a in arms),
            "+stretch=" + ",".join(s.name for s in plan.stretches),
            f"hydra.sweep.dir={(plan.out / folder).resolve()}",
            "hydra.sweep.subdir='${hydra.runtime.choices.stretch}/${hydra.runtime.choices.ablation}'", *launcher]
    log = plan.out / f"{folder}.log"
    jobs = len(arms) * len(plan.stretches)
    say(f"{folder}: {jobs} replays ({len(arms)} arms x {len(plan.stretches)} stretches); output in {log}")
    with log.open("w") as sink:
        done = subprocess.run([sys.executable, "-c", _RATCHET, "-m", *args], stdout=sink, stderr=subprocess.STDOUT,
                              env=_child_env(), check=False)
    if done.returncode != 0:
        tail = [line for line in log.read_text().splitlines() if line.strip()][-3:]
        raise RatchetError(f"the {folder} multirun failed (exit {done.returncode}): " + " | ".join(tail))


def _child_env() -> dict[str, str]:
    """The environment with this process's own import paths first, so the replays import what it imports
    (components declared by ``_target_`` in a checkout or a test)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    ours = [os.path.abspath(p or ".") for p in sys.path
            if os.path.isdir(p or ".") and not any(os.path.realpath(p or ".").startswith(x) for x in prefixes)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([*dict.fromkeys(ours), *filter(None, [env.get("PYTHONPATH")])])
    return env


@dataclass
class Sweep:
    """The runs of an ablation folder, by (arm, stretch), read together."""

    con: duckdb.DuckDBPyConnection
    runs: dict[tuple[str, str], str] = field(default_factory=dict)  # (arm, stretch) -> run_dir as the rows say

    @classmethod
    def read(cls, folder: Path) -> Sweep:
        ledgers = find_ledgers([folder])
        runs: dict[tuple[str, str], str] = {}
        for ledger in ledgers:
            given = told(hydra_overrides(ledger.parent) or [])
            if "ablation" in given and "stretch" in given:
                runs[(given["ablation"], given["stretch"])] = str(ledger.parent)
        return cls(connect_sweep(ledgers), runs)

    def run_dirs(self, arm: str, stretches: Sequence[Stretch]) -> list[str]:
        missing = [s.name for s in stretches if (arm, s.name) not in self.runs]
        if missing:
            raise RatchetError(f"arm {arm!r} has no finished run for stretch(es) {', '.join(missing)}")
        return [self.runs[(arm, s.name)] for s in stretches]

    def curve(self, arm: str, stretches: Sequence[Stretch]) -> tuple[Curve, np.ndarray]:
        """The arm's per-bar returns and closed trades over the stretches in order, and the marks' times."""
        returns, trades, times = [], [], []
        for run_dir in self.run_dirs(arm, stretches):
            marks = self.con.execute("SELECT ts, equity FROM equity WHERE run_dir = ? ORDER BY ts, wall_ts",
                                     [run_dir]).fetchnumpy()
            ts, equity = marks["ts"].astype(np.int64), marks["equity"].astype(np.float64)
            if len(ts) < 2 or np.any(np.diff(ts) <= 0):
                raise RatchetError(f"run {run_dir}: its equity marks are not one per bar")
            exits = self.con.execute("SELECT exit_ts FROM trades WHERE run_dir = ?", [run_dir]).fetchnumpy()["exit_ts"]
            at = np.clip(np.searchsorted(ts, exits.astype(np.int64), side="left") - 1, 0, len(ts) - 2)
            returns.append(np.diff(equity) / equity[:-1])
            trades.append(np.bincount(at, minlength=len(ts) - 1))
            times.append(ts)
        return Curve(np.concatenate(returns), np.concatenate(trades)), np.concatenate(times)


def placebo_arms(plan: Plan, sweep: Sweep, say: Callable[[str], None] = print) -> tuple[list[Arm], list[str]]:
    """Each filter's coin and Kelly's random risk, matched to what the full agent did; notes for those skipped."""
    arms, notes = [], []
    full_runs = sweep.run_dirs(FULL, plan.stretches)
    a = AgentDeclaration(plan.agent)
    for loop in plan.loops:
        if loop.placebo == "coin" and loop.component is not None:
            if issubclass(a.built(loop.component)[0], MLGate):
                passed, offered = shares.decisions_share(sweep.con, full_runs)
            else:
                passed = offered = 0
                for stretch in plan.stretches:
                    cfg = load_run_config(compose_arm(plan, FULL, stretch.name))
                    p, o = shares.filter_share(cfg, loop.component)
                    passed, offered = passed + p, offered + o
            if offered == 0:
                notes.append(f"{loop.name}: no signal reached {loop.component} in the full runs; no placebo")
                continue
            say(f"placebo for {loop.name}: {loop.component} took {passed} of {offered} signals "
                f"({passed / offered:.1%})")
            arms.append(coin_arm(loop, plan.agent, passed / offered))
        elif loop.placebo == "risk" and loop.component is not None:
            risks = shares.kelly_risks(sweep.con, full_runs, a.kelly_states(loop.component))
            if not risks:
                notes.append(f"{loop.name}: the full agent never sized a trade with {loop.component}; no placebo")
                continue
            say(f"placebo for {loop.name}: {len(risks)} Kelly-sized trades, mean risk {np.mean(risks):.3%}")
            arms.append(risk_arm(loop, plan.agent, risks))
    return arms, notes


def _task(overrides: Sequence[str]) -> list[str]:
    """Overrides for composing in this process: Hydra's own (``hydra.*``) apply to a launch only, except
    the search path that holds the arms and stretches."""
    return [o for o in overrides if not o.lstrip("+~").startswith("hydra") or o.startswith("hydra.searchpath=")]


def compare(plan: Plan, sweep: Sweep, arms: Sequence[Arm], how: Bootstrap, verdict_on: str) -> dict[str, Any]:
    """The full agent against every arm, as plain data (``ablation.json``)."""
    full, ts = sweep.curve(FULL, plan.stretches)
    per_year = YEAR_MS / float(np.median(np.diff(ts)))
    full_figures = {k: float(v) for k, v in figures(full, per_year).items()}
    comparisons = []
    for arm in arms:
        other, other_ts = sweep.curve(arm.name, plan.stretches)
        if not np.array_equal(ts, other_ts):
            raise RatchetError(f"arm {arm.name!r} and the full agent marked different bars; they cannot be paired")
        effect = paired_intervals(full, other, per_year, how)
        comparisons.append(Comparison(
            loop=arm.loop or "", arm=arm.name, kind=arm.kind, against=arm.note, full=full_figures,
            other={k: float(v) for k, v in figures(other, per_year).items()}, effect=effect,
            verdict=verdict(effect[verdict_on], verdict_on), verdict_on=verdict_on))
    return {
        "agent": plan.agent["name"], "market": plan.cfg.market.name, "timeframe": plan.cfg.market.timeframe,
        "overrides": list(plan.overrides), "folder": str(plan.out),
        "stretches": [{"name": s.name, "start": s.start, "end": s.end} for s in plan.stretches],
        "bars": int(len(full.returns)), "bars_per_year": per_year,
        "bootstrap": {"resamples": how.resamples, "level": how.level, "seed": how.seed,
                      "block": how.block or int(np.ceil(np.sqrt(len(full.returns))))},
        "verdict_on": verdict_on, "full": full_figures,
        "comparisons": [c.as_json() for c in comparisons], "notes": [],
    }


def run_ablation(plan: Plan, *, launcher: Sequence[str], how: Bootstrap | None = None, verdict_on: str = "return",
                 say: Callable[[str], None] = print) -> dict[str, Any]:
    """Both passes and the comparisons; writes ``ablation.json`` into the ablation folder and returns it."""
    plan.out.mkdir(parents=True, exist_ok=True)
    launch(plan, plan.arms, ARMS, launcher, say)
    sweep = Sweep.read(plan.out)
    try:
        placebos, notes = placebo_arms(plan, sweep, say) if plan.placebos else ([], [])
    finally:
        sweep.con.close()
    if placebos:
        launch(plan, placebos, PLACEBOS, launcher, say)
    sweep = Sweep.read(plan.out)
    try:
        result = compare(plan, sweep, [*plan.arms[1:], *placebos], how or Bootstrap(), verdict_on)
    finally:
        sweep.con.close()
    result["notes"] = notes
    (plan.out / RESULT_FILE).write_text(json.dumps(json_value(result), indent=2, allow_nan=False) + "\n")
    return result
