"""The optimiser's speed: a study of 100 trials over 4 weeks of the five 1h spot pairs (the hybrid agent).

    .venv/bin/python benchmarks/bench_optimise.py [--trials 100] [--window 2024-03-01:2024-03-29] [OVERRIDE ...]

In a fresh temporary folder: load the window (with the warm-up history the agent needs), replay it
once with the set in force so the ML gate's models learn (trials never train: they follow the
scores of the version that was live at each bar), then run the study (seeded TPE, a journal file
as storage, trials one after the other) and print trials/s. Then ten more trials under cProfile,
split into what a trial does: build and prepare the components on the window, step the bars,
sum up the equity marks; and what Optuna adds (ask, tell, the journal).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from machine.compose import compose_run
from machine.engine import load_run_market
from machine.optimise.backtest import evaluator, learned_leaders
from machine.optimise.space import in_force
from machine.optimise.study import Study

PARTS = {  # cProfile's cumulative time of these functions, per trial
    "build and prepare the components": "backtest.py:__init__",
    "step the bars (Agent.on_bar, quiet stretches, fills)": "backtest.py:advance",
    "sum up the equity marks": "backtest.py:performance",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--window", default="2024-03-01:2024-03-29", help="START:END, UTC dates (END exclusive)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for the composed config")
    args = parser.parse_args()
    start, end = args.window.split(":")
    cfg = compose_run("agent=hybrid", "market=spot_1h", f"market.start={start}", f"market.end={end}", *args.overrides)
    assert cfg.agent.optimise is not None
    optimise = cfg.agent.optimise

    t0 = time.perf_counter()
    market = load_run_market(cfg)
    t1 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        leaders = learned_leaders(cfg, market, folder)
        t2 = time.perf_counter()
        evaluate = evaluator(cfg, cfg.agent.components, market, market.trade_from, len(market), leaders=leaders,
                             artifacts_dir=folder)
        study = Study("bench", str(folder / "study.journal"), optimise.space, optimise.objective, seed=cfg.seed,
                      startup_trials=optimise.startup_trials)
        result = study.run(args.trials, evaluate, first=in_force(optimise.space, cfg.agent.components))
        t3 = time.perf_counter()
        profile = cProfile.Profile()
        profile.enable()
        study.run(args.trials + 10, evaluate)
        profile.disable()
        t4 = time.perf_counter()

    bars = len(market) - market.trade_from
    print(f"hybrid agent, {len(market.symbols)} spot pairs 1h, {args.window}: {bars} bars to trade "
          f"(+{market.trade_from} warm-up), {len(optimise.space)} parameters, objective {optimise.objective}")
    print(f"load the window           {t1 - t0:7.2f} s")
    print(f"replay it once (models)   {t2 - t1:7.2f} s   the ML gate trains; trials only read its scores")
    print(f"study, {result.complete} trials        {t3 - t2:7.2f} s   {result.complete / (t3 - t2):.1f} trials/s "
          f"({result.pruned} pruned)")
    print(f"best {result.best_value:.4g} (the set in force {result.first_value:.4g})")
    print(f"\nwhere a trial's time goes (10 trials under cProfile, {t4 - t3:.2f} s):")
    stats = pstats.Stats(profile)
    total = sum(v[3] for k, v in stats.stats.items() if f"{Path(k[0]).name}:{k[2]}" == "study.py:_one")  # type: ignore[attr-defined]
    for label, key in PARTS.items():
        spent = sum(v[3] for k, v in stats.stats.items() if f"{Path(k[0]).name}:{k[2]}" == key)  # type: ignore[attr-defined]
        print(f"  {label:52s} {spent / 10 * 1000:7.1f} ms  {spent / total:5.0%}")
    evaluated = sum(v[3] for k, v in stats.stats.items() if f"{Path(k[0]).name}:{k[2]}" == "backtest.py:evaluate")  # type: ignore[attr-defined]
    print(f"  {'Optuna: ask, suggest, tell, the journal':52s} {(total - evaluated) / 10 * 1000:7.1f} ms  "
          f"{(total - evaluated) / total:5.0%}")


if __name__ == "__main__":
    main()
