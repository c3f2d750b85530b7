"""``ratchet-ablate``: which learning loops help? Replays the agent with each loop switched off in
turn (config only), and each filter and Kelly replaced by a placebo, over walk-forward stretches
as Hydra multiruns; prints the table and writes ablation.json and ablation.html.

    ratchet-ablate agent=hybrid market=spot_1h
    ratchet-ablate --stretch all agent=futures market=perp_1h
    ratchet-ablate --loops kelly,breakers agent=futures market.data_dir=~/data
    ratchet-ablate --list agent=hybrid
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

from core.errors import ConfigError
from machine.ablation.bootstrap import Bootstrap
from machine.ablation.loops import off_arm
from machine.ablation.runner import Plan, plan_ablation, run_ablation
from machine.ablation.stretches import EVERY
from machine.ablation.verdict import VERDICT_METRICS
from machine.cli_errors import cli_entry

PROG = "ratchet-ablate"

_EPILOG = """\
Every other argument is a Hydra override for the agent, as `ratchet` takes it (agent=, market=,
market.start=, market.data_dir=, experiment=, ...). The replays run as Hydra multiruns on the
joblib launcher (all local cores; --jobs sets how many) unless an override names another
(hydra/launcher=basic, submitit_local, ray, ...).

Each cell is the full agent minus the arm, with its interval from a paired circular block bootstrap
of the per-bar returns; the verdict says helps / no evidence / hurts when the interval lies above,
around or below 0 (below, for max drawdown). Query the runs with
  ratchet-ledger FOLDER --view learning_effect
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Which learning loops help? An ablation with confidence "
                                "intervals and placebos.", epilog=_EPILOG,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides (agent=hybrid market=spot_1h)")
    p.add_argument("--loops", help="comma-separated loops to switch off (default: every loop the agent declares)")
    p.add_argument("--stretch", default="year", choices=EVERY,
                   help="walk-forward stretches: one run per calendar period (default year), or all in one run")
    p.add_argument("--out", type=Path, help="the ablation folder (default runs/ablation/DATE/TIME/AGENT); "
                   "finished runs in it are not replayed again")
    p.add_argument("--jobs", type=int, default=-1, help="joblib workers (default -1: every core)")
    p.add_argument("--no-placebos", action="store_true", help="switch loops off only; no placebo arms")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    p.add_argument("--block", type=int, help="bootstrap block in bars (default ceil(sqrt(bars)))")
    p.add_argument("--level", type=float, default=0.95, help="interval level (default 0.95)")
    p.add_argument("--seed", type=int, default=7, help="bootstrap seed (default 7)")
    p.add_argument("--verdict-on", default="return", choices=VERDICT_METRICS, help="the metric the verdict reads")
    p.add_argument("--list", action="store_true", help="list the agent's loops and what switches each off; run nothing")
    return p


def _launcher(overrides: Sequence[str], jobs: int) -> list[str]:
    if any(o.lstrip("+~").startswith("hydra/launcher") for o in overrides):
        return []
    return ["hydra/launcher=joblib", f"hydra.launcher.n_jobs={jobs}"]


def _check(args: argparse.Namespace) -> None:
    if args.resamples < 100:
        raise ConfigError(f"--resamples {args.resamples}: at least 100 for a 95 % interval")
    if args.block is not None and args.block < 1:
        raise ConfigError(f"--block {args.block}: a block holds at least one bar")
    if not 0.5 <= args.level < 1:
        raise ConfigError(f"--level {args.level}: choose a level in [0.5, 1)")
    if args.jobs == 0:
        raise ConfigError("--jobs 0: give a number of workers, or -1 for every core")


def _listing(plan: Plan) -> str:
    lines = [f"{plan.agent['name']}: {len(plan.loops)} loop(s), {len(plan.stretches)} stretch(es) "
             f"({', '.join(s.name for s in plan.stretches)})"]
    for loop in plan.loops:
        placebo = {"coin": f"a coin in {loop.component}'s place", "risk": f"random risk in {loop.component}'s place",
                   None: "none"}[loop.placebo]
        lines += [f"\n{loop.name}: {loop.title} (placebo: {placebo}); +ablation={off_arm(loop).name} merges:",
                  *("  " + line for line in yaml.safe_dump({"agent": loop.off}, sort_keys=False,
                                                           width=110).splitlines())]
    return "\n".join(lines) + "\n"


@cli_entry(PROG)
def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    _check(args)
    loops = [n.strip() for n in args.loops.split(",") if n.strip()] if args.loops else None
    plan = plan_ablation(args.overrides, loops=loops, every=args.stretch, out=args.out,
                         placebos=not args.no_placebos)
    if args.list:
        sys.stdout.write(_listing(plan))
        return
    from ledger.report.ablation import ablation_text, write_ablation_page

    how = Bootstrap(resamples=args.resamples, level=args.level, seed=args.seed, block=args.block)
    result = run_ablation(plan, launcher=_launcher(args.overrides, args.jobs), how=how, verdict_on=args.verdict_on,
                          say=lambda line: print(line, flush=True))
    page = write_ablation_page(result, plan.out)
    sys.stdout.write("\n" + ablation_text(result))
    print(f"\n{page} and {plan.out / 'ablation.json'}; per run: ratchet-ledger {plan.out} --view learning_effect")
