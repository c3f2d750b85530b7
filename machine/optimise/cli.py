"""``ratchet-optimise``: one study of the agent's ``optimise`` block over any window, for users.

It composes the same Hydra config as ``ratchet`` and takes the same overrides; the window is
``market.start .. market.end`` (the bars a run of that config would trade). Candidates are
backtested on those bars, the set in force is trial 0, and the best set is printed as overrides
ready to paste. Agents whose components learn on the clock (the hybrid's ML gate) first replay
the window with the set in force so their models learn (into the study folder, reused by the
next call and by the workers); every trial then follows those models' scores, never retraining.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from components.market.progress import Progress
from core.errors import ConfigError, RatchetError
from core.market import MarketData
from core.validation import format_validation_error
from machine.cli_errors import INTERRUPTED, USER_ERROR, cli_entry, describe, resolve_config
from machine.config import RunConfig, load_run_config
from machine.engine import load_run_market
from machine.optimise.backtest import evaluator, learned_leaders
from machine.optimise.space import OptimiseConfig, in_force, overrides
from machine.optimise.study import Study, StudyResult

PROG = "ratchet-optimise"
JOURNAL = "study.journal"
USAGE = """usage: ratchet-optimise [OVERRIDE ...]

Runs one Optuna study (seeded TPE) of the agent's optimise block on the bars of the market window,
and prints the best parameters as overrides to paste. Run the same command again to resume it.

  ratchet-optimise agent=hybrid market=spot_1h market.start=2024-03-01 market.end=2024-03-29
  ratchet-optimise agent=futures market=perp_1h market.start=2024-01-01 market.end=2024-03-01 \\
      agent.optimise.trials=200 ++study.jobs=2

  agent.optimise.trials=N     the budget: finished trials in the study (the set in force is the first)
  agent.optimise.storage=URL  a storage to share with workers elsewhere: sqlite:///..., postgresql://...,
                              or a journal file on a shared disk (default: a journal in the study folder)
  ++study.jobs=N              worker processes on this machine (default 1)
  ++study.worker=true         join a study someone else started, on its storage; print nothing
  ++study.name=NAME           the study's name in its storage (default: agent, market and window)
  ++study.dir=PATH            the study folder: journal, models (default: runs/optimise/NAME)"""


class StudyOptions(BaseModel):
    """The ``study`` section: what only this command reads."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    jobs: int = Field(default=1, ge=1, le=64)
    worker: bool = False
    name: str | None = Field(default=None, min_length=1)
    dir: str | None = None


def run(argv: list[str], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The command with these overrides; returns its exit status (0 done, 2 refused or failed)."""
    if any(arg in ("-h", "--help") for arg in argv):
        print(USAGE, file=out)
        return 0
    try:
        cfg, options = _configs(argv)
        optimise = _block(cfg)
        market = load_run_market(cfg)
        name = options.name or _default_name(cfg, market)
        folder = Path(options.dir or f"runs/optimise/{name}").expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        leaders = learned_leaders(cfg, market, folder)
        learned_s = time.perf_counter() - started
        start, end = market.trade_from, len(market)
        evaluate = evaluator(cfg, cfg.agent.components, market, start, end, leaders=leaders, artifacts_dir=folder)
        study = Study(name, optimise.storage or str(folder / JOURNAL), optimise.space, optimise.objective,
                      seed=cfg.seed, startup_trials=optimise.startup_trials)
        first = in_force(optimise.space, cfg.agent.components)
        if options.worker:
            study.run(optimise.trials, evaluate, first=first)
            return 0
        if optimise.storage is None:
            study.fail_stale()  # the folder's own journal: trials a killed call left running
        study.enqueue_first(first)  # before any worker asks
        workers = [_spawn_worker(argv, name, folder) for _ in range(options.jobs - 1)]
        progress = Progress(err)
        progress.start(f"study {name}", optimise.trials)
        had, began = study.finished(), time.perf_counter()
        progress.advance(had)
        try:
            result = study.run(optimise.trials, evaluate, first=first,
                               on_trial=lambda done, total: progress.advance(done - progress.count))
        finally:
            progress.done()
            for worker in workers:
                worker.wait()
        _report(out, result, optimise, folder, study.finished() - had, time.perf_counter() - began, learned_s,
                bool(leaders))
    except (RatchetError, HydraException, OmegaConfBaseException) as exc:
        print(f"{PROG}: {describe(exc)}", file=err)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; finished trials are kept, run the same command to resume", file=err)
        return INTERRUPTED
    return 0


@cli_entry(PROG)
def main() -> None:
    sys.exit(run(sys.argv[1:]))


def _configs(argv: list[str]) -> tuple[RunConfig, StudyOptions]:
    with initialize_config_module("conf", version_base="1.3"):
        composed = compose("config", overrides=argv)
    data: dict[str, Any] = resolve_config(composed)
    data.pop("hydra", None)
    section = data.pop("study", None) or {}
    try:
        options = StudyOptions.model_validate(section)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, "study")) from None
    return load_run_config(data), options


def _block(cfg: RunConfig) -> OptimiseConfig:
    if cfg.agent.optimise is None:
        raise ConfigError(f"agent.optimise: agent {cfg.agent.name!r} declares no search space; add an optimise "
                          "block (conf/agent/hybrid.yaml has one) or pass +agent.optimise.space...")
    return cfg.agent.optimise


def _default_name(cfg: RunConfig, market: MarketData) -> str:
    first, last = int(market.ts[market.trade_from]), int(market.ts[-1]) + market.timeframe_ms
    day = 86_400_000
    return "-".join((cfg.agent.name, cfg.market.name, time.strftime("%Y%m%d", time.gmtime(first // 1000)),
                     time.strftime("%Y%m%d", time.gmtime((last - day) // 1000))))


def _spawn_worker(argv: list[str], name: str, folder: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "machine.optimise.cli", *argv, f"++study.name={name}",
                             f"++study.dir={folder}", "++study.worker=true"],
                            stdout=subprocess.DEVNULL)


def _report(out: TextIO, result: StudyResult, optimise: OptimiseConfig, folder: Path, ran: int, seconds: float,
            learned_s: float, learned: bool) -> None:
    rate = f", {ran / seconds:.1f} trials/s" if ran and seconds > 0 else ""
    models = f"; models learned or loaded in {learned_s:.1f} s" if learned else ""
    print(f"study {result.name}: {result.complete} trials complete, {result.pruned} pruned "
          f"({ran} in this call, {seconds:.1f} s{rate}{models})", file=out)
    first = "n/a" if result.first_value is None else f"{result.first_value:.4g}"
    print(f"best {optimise.objective}: {result.best_value:.4g} (the set in force: {first})", file=out)
    perf = result.best_performance
    if perf:
        print(f"  return {perf['total_return']:+.2%}, max drawdown {perf['max_drawdown']:.2%}, "
              f"sharpe {perf['sharpe']:.2f}, {perf['trades']} trades, fees {perf['fees']:.2f}", file=out)
    print(f"storage: {optimise.storage or folder / JOURNAL}", file=out)
    print("overrides:", file=out)
    print(" ".join(overrides(result.best)), file=out)


if __name__ == "__main__":
    main()
