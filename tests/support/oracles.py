"""Stored ledger exports of one short replay per agent: what a refactor or a speed-up must not change.

Regenerate only when a change of results is intended, and say why in the commit:
    PYTHONPATH=. .venv/bin/python -m tests.support.oracles
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from machine.compose import compose_run
from machine.engine import run_replay
from tests.support.ledger_export import export

ORACLES = Path(__file__).parents[1] / "oracles"
RUNS: dict[str, tuple[str, ...]] = {
    "futures": ("agent=futures", "market=perp_1h", "market.start=2023-08-01", "market.end=2023-11-01"),
    "ema_cross": ("experiment=ema_cross_baseline", "market.start=2023-01-01", "market.end=2023-07-01"),
    "hybrid": ("agent=hybrid", "market=spot_1h", "market.symbols=[BTC/USDT,ETH/USDT]", "market.start=2023-06-01",
               "market.end=2023-07-01"),
}


def replay_export(name: str, run_dir: Path, *overrides: str) -> dict[str, list[list[Any]]]:
    """The replay's ledger as JSON-comparable rows; the runs row without its config (which grows keys)."""
    run_replay(compose_run(*RUNS[name], *overrides), run_dir)
    return comparable(run_dir / "ledger.duckdb")


def comparable(ledger: Path) -> dict[str, list[list[Any]]]:
    """A ledger's rows through JSON: NaN compares equal to NaN (json shares one NaN object), the runs
    row without its config."""
    tables = export(ledger)
    tables["runs"] = [row[:4] + row[5:] for row in tables["runs"]]  # agent, market, exchange, seed | fingerprint..
    return json.loads(json.dumps({t: [list(r) for r in rows] for t, rows in tables.items()}, default=_plain))


def stored(name: str) -> dict[str, list[list[Any]]]:
    return json.loads((ORACLES / f"{name}.json").read_text())


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return str(value)


def main() -> None:
    for name in sys.argv[1:] or [n for n in RUNS if n != "hybrid"]:
        with tempfile.TemporaryDirectory() as tmp:
            rows = replay_export(name, Path(tmp) / "run")
        (ORACLES / f"{name}.json").write_text(json.dumps(rows, separators=(",", ":")) + "\n")
        print(f"wrote {ORACLES / name}.json: " + ", ".join(f"{t} {len(r)}" for t, r in rows.items()))


if __name__ == "__main__":
    main()
