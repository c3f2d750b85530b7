"""Issue 11's speed targets, each measured and printed with its target and ratio (`make bench`).

    .venv/bin/python benchmarks/targets.py [--backtesting-python .venv-bt/bin/python] [--repeats 3]
                                           [--only ema,futures,make_run,hybrid_5m,retrain,sweep]

1. ema_cross through the real engine, machine and durable ledger, against backtesting.py in the same
   run (benchmarks/compare_backtesters.py; skipped without a backtesting.py interpreter).
2. The futures agent's replay of the bundled perps: bars/s (best of --repeats, each in a fresh process).
3. `make run` (its ratchet command, once, imports and reports included); the hybrid 5m learning timeline;
   the peak RSS of the largest single replay measured here (and of each process, make run's two jobs included).
4. One retrain of all four models on the default 5m window (benchmarks/bench_ml.py, 2 threads).
5. A sweep of 16 futures replays: `hydra/launcher=joblib` against the basic launcher, wall time ratio.

Only time a quiet machine: `uptime` is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_replay import ROOT, _child, time_case  # noqa: E402

RATCHET = str(Path(sys.executable).with_name("ratchet"))
SWEEP = "agent.components.fixed_risk.risk=" + ",".join(f"{0.001 + 0.0001 * k:.4f}" for k in range(16))


def _row(name: str, measured: str, target: str, ratio: float, meets: bool) -> str:
    return f"{name:<44} {measured:>22} {target:>16} {ratio:>7.2f}  {'yes' if meets else 'NO'}"


def _uptime() -> str:
    with open("/proc/loadavg") as f:
        return "load average " + " ".join(f.read().split()[:3])


def ema_against_backtesting(python: str | None, repeats: int) -> list[str]:
    if not python:
        return ["1. ema_cross vs backtesting.py: skipped (pass --backtesting-python; `make bench` makes .venv-bt)"]
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/compare_backtesters.py"),
                          "--backtesting-python", python, "--repeats", str(repeats)],
                         capture_output=True, text=True, check=True).stdout
    ours, theirs = (float(re.search(rf"^{name}\s+\d+\s+\S+\s+\S+\s+([\d,]+)", out, re.M).group(1).replace(",", ""))
                    for name in ("ratchet", "backtesting.py"))
    same = re.search(r"same entry and exit bar: (\d+) of (\d+)", out)
    rows = [_row("1. ema_cross bars/s (ledger incl.) / backtesting.py", f"{ours:,.0f} vs {theirs:,.0f}",
                 ">= 1.00", ours / theirs, ours >= theirs)]
    rows.append(f"   trades with the same entry and exit bar: {same.group(1)} of {same.group(2)}")
    rows += [f"   {line}" for line in out.splitlines() if line.startswith("ratchet / backtesting.py")]
    return rows


def replay_rows(repeats: int, scratch: Path, only: set[str]) -> tuple[list[str], dict[str, float]]:
    """Rows for targets 2 and 3, and the peak RSS (MiB) of each process measured."""
    rows, peaks = [], {}
    if "futures" in only:
        t = time_case(["experiment=futures"], repeats, scratch)
        rate = t.bars / t.seconds
        rows.append(_row("2. futures replay bars/s (2 perps, 1h)", f"{rate:,.0f} ({t.seconds:.2f} s)", ">= 50,000",
                         rate / 50_000, rate >= 50_000))
        peaks["futures"] = t.peak_rss_mb
    if "make_run" in only:
        make_run = [RATCHET, "-m", "experiment=futures,hybrid", f"hydra.sweep.dir={scratch / 'mr'}"]
        _, seconds, rss = _child(make_run, ROOT)
        rows.append(_row("3. make run (ratchet -m experiment=futures,hybrid)", f"{seconds:.1f} s", "< 60 s",
                         60 / seconds, seconds < 60))
        peaks["make run (both jobs, one process)"] = rss
    if "hybrid_5m" in only:
        t = time_case(["experiment=hybrid_5m"], 1, scratch)
        rows.append(_row("3. hybrid 5m learning timeline", f"{t.seconds:.1f} s ({t.bars:,} bars)", "< 60 s",
                         60 / t.seconds, t.seconds < 60))
        peaks["hybrid 5m"] = t.peak_rss_mb
    return rows, peaks


def rss_rows(peaks: dict[str, float]) -> list[str]:
    """Target 3's memory row: the largest single replay (make run holds two replays in one process)."""
    single = {name: mb for name, mb in peaks.items() if not name.startswith("make run")}
    rows = []
    if single:
        peak = max(single.values())
        rows.append(_row("3. peak RSS of any single replay", f"{peak:.0f} MiB", "< 600 MiB", 600 / peak, peak < 600))
    if peaks:
        rows.append("   peak RSS per process: " + ", ".join(f"{name} {mb:.0f} MiB" for name, mb in peaks.items()))
    return rows


def retrain_rows() -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks/bench_ml.py"), "--threads", "2"],
                         capture_output=True, text=True, check=True, env=env).stdout
    mean = re.search(r"mean retrain: before ([\d.]+) s, after ([\d.]+) s", out)
    after = float(mean.group(2))
    rows = [_row("4. one retrain, four models, 5m window, 2 threads", f"{after:.1f} s (before {mean.group(1)} s)",
                 "< 8 s", 8 / after, after < 8)]
    rows += [f"   {line}" for line in out.splitlines() if "log-loss" in line]
    return rows


def sweep_rows(scratch: Path) -> list[str]:
    walls = {}
    for launcher in ("basic", "joblib"):
        command = [RATCHET, "-m", f"hydra/launcher={launcher}", "experiment=futures", SWEEP,
                   f"hydra.sweep.dir={scratch / launcher}"]
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        walls[launcher] = time.perf_counter() - started
    ratio = walls["joblib"] / walls["basic"]
    return [_row("5. 16 futures replays, joblib / sequential wall", f"{walls['joblib']:.1f} / {walls['basic']:.1f} s",
                 "<= 0.60", 0.6 / ratio, ratio <= 0.6)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backtesting-python", default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", default="ema,futures,make_run,hybrid_5m,retrain,sweep")
    args = parser.parse_args()
    only = set(args.only.split(","))
    print(f"speed targets (issue 11), {_uptime()} at start")
    print(f"{'target':<44} {'measured':>22} {'target':>16} {'ratio':>7}  met")
    rows: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench_targets_") as folder:
        scratch = Path(folder)
        if "ema" in only:
            rows += ema_against_backtesting(args.backtesting_python, args.repeats)
        replays, peaks = replay_rows(args.repeats, scratch, only)
        rows += replays + rss_rows(peaks)
        if "retrain" in only:
            rows += retrain_rows()
        if "sweep" in only:
            rows += sweep_rows(scratch)
    print("\n".join(rows))
    print(f"({_uptime()} at the end; ratio > 1 is better than the target)")


if __name__ == "__main__":
    main()
