"""Replay speed of the three agents on the bundled data, and of a whole `make run`.

    .venv/bin/python benchmarks/bench_replay.py [--repeats 3] [--cases ema_cross,futures,hybrid]
                                                [--window 2024-01-01:2025-01-01] [--no-make-run]

Each replay runs in a fresh child process into a temporary run folder, so every repeat starts
cold (no run folder to resume, no warm component caches) and its peak RSS is its own
(``os.wait4``). The clock runs around ``run_replay`` only: loading the bundled Parquet files,
preparing the components, the replay loop and the ledger writes, but not Python's imports or
Hydra's composition. A case's time is the best of ``--repeats`` runs. The `make run` line times
the CLI itself (``ratchet -m experiment=futures,hybrid``), imports and report included, once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = {  # name: what it replays, and the overrides that compose it
    "ema_cross": ("EMA 12/26 all-in, BTC/USDT spot 1h", ("experiment=ema_cross_baseline",)),
    "futures": ("futures agent, BTC+ETH perps 1h", ("experiment=futures",)),
    "hybrid": ("hybrid agent, 5 spot pairs 1h", ("experiment=hybrid",)),
}


@dataclass(frozen=True)
class Timing:
    bars: int
    symbols: int
    seconds: float
    peak_rss_mb: float


def replay_once(overrides: list[str], run_dir: Path) -> dict[str, float]:
    """In the child: compose, replay into run_dir, and report the bars, symbols and seconds."""
    sys.path.insert(0, str(ROOT))
    from machine.compose import compose_run
    from machine.engine import run_replay

    cfg = compose_run(*overrides)
    started = time.perf_counter()
    result = run_replay(cfg, run_dir)
    seconds = time.perf_counter() - started
    return {"bars": result.bars, "symbols": len(cfg.market.symbols), "seconds": seconds}


def _child(command: list[str], cwd: Path) -> tuple[str, float, float]:
    """Run a child process; its stdout, wall seconds and peak RSS in MiB (Linux: ru_maxrss in KiB).

    Its output goes to files, not pipes, so that the child can be reaped with ``os.wait4``,
    which returns that one child's resource usage.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(command)} exited {proc.returncode}:\n{err.read()[-4000:]}")
        return out.read(), seconds, usage.ru_maxrss / 1024


def time_case(overrides: list[str], repeats: int, scratch: Path) -> Timing:
    best: Timing | None = None
    peak = 0.0
    for r in range(repeats):
        run_dir = scratch / f"{overrides[0].split('=')[-1]}-{r}"
        command = [sys.executable, __file__, "--child", str(run_dir), *overrides]
        stdout, _, rss = _child(command, ROOT)
        got = json.loads(stdout.strip().splitlines()[-1])
        peak = max(peak, rss)
        if best is None or got["seconds"] < best.seconds:
            best = Timing(int(got["bars"]), int(got["symbols"]), got["seconds"], rss)
    assert best is not None
    return Timing(best.bars, best.symbols, best.seconds, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {', '.join(CASES)}")
    parser.add_argument("--window", default=None, help="START:END (market.start, market.end) for every case")
    parser.add_argument("--no-make-run", action="store_true", help="skip timing the whole `make run`")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args, overrides = parser.parse_known_args()
    if args.child is not None:
        print(json.dumps(replay_once(overrides, Path(args.child))))
        return

    window: list[str] = []
    if args.window:
        start, end = args.window.split(":")
        window = [f"market.start={start}", f"market.end={end}"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_replay_") as folder:
        scratch = Path(folder)
        for name in args.cases.split(","):
            what, case_overrides = CASES[name]
            t = time_case([*case_overrides, *window], args.repeats, scratch)
            rows.append((name, what, t))
            print(f"  {name}: {t.seconds:.2f} s", file=sys.stderr, flush=True)
        make_run = None
        if not args.no_make_run:
            ratchet = Path(sys.executable).with_name("ratchet")
            command = [str(ratchet), "-m", "experiment=futures,hybrid",
                       f"hydra.sweep.dir={scratch / 'make_run'}", *window]
            _, seconds, rss = _child(command, ROOT)
            make_run = (seconds, rss)

    print(f"replay speed, best of {args.repeats} (window: {args.window or 'all bundled data'})")
    line = "{:<10} {:<36} {:>7} {:>3} {:>8} {:>11} {:>9} {:>9}"
    head = line.format("case", "what", "bars", "sym", "seconds", "bars*sym/s", "bars/s", "peak RSS")
    print(head)
    print("-" * len(head))
    for name, what, t in rows:
        print(line.format(name, what, f"{t.bars:,}", t.symbols, f"{t.seconds:.2f}",
                          f"{t.bars * t.symbols / t.seconds:,.0f}", f"{t.bars / t.seconds:,.0f}",
                          f"{t.peak_rss_mb:.0f} MiB"))
    if make_run is not None:
        seconds, rss = make_run
        print(line.format("make run", "ratchet -m experiment=futures,hybrid", "", "", f"{seconds:.2f}",
                          "", "", f"{rss:.0f} MiB"))
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(peak RSS is each child's own, from os.wait4; this driver peaked at {own:.0f} MiB)")


if __name__ == "__main__":
    main()
