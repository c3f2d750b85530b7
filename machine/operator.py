"""Operator commands for a run (``ratchet-control RUN_DIR resume``): the only way to lift a halt.

A command is a JSON file in ``RUN_DIR/control/``. The engine takes it at the next bar, records it
as an ``operator_command`` adjustment, and marks the file applied. A resumed run replays recorded
commands at the bars they were taken, so the ledger is the same as if it had never stopped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from machine.cli_errors import cli_entry

COMMANDS = ("resume", "flatten")  # flatten: close every position at market, no new entries until resume


def control_dir(run_dir: Path) -> Path:
    return run_dir / "control"


def send(run_dir: Path, command: str, reason: str) -> Path:
    if command not in COMMANDS:
        raise ValueError(f"unknown command {command!r}; known: {', '.join(COMMANDS)}")
    folder = control_dir(run_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}-{command}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"command": command, "reason": reason}))
    tmp.rename(path)  # atomic: the engine never reads half a command
    return path


def take(run_dir: Path) -> list[dict[str, str]]:
    """Pending commands in the order they were sent; each file is marked applied."""
    folder = control_dir(run_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        out.append(json.loads(path.read_text()))
        path.rename(path.with_suffix(".applied"))
    return out


@cli_entry("ratchet-control")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ratchet-control", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("command", choices=COMMANDS)
    parser.add_argument("--reason", default="operator request")
    args = parser.parse_args(argv)
    if not (args.run_dir / "ledger.duckdb").is_file():
        print(f"ratchet-control: no ledger.duckdb in {args.run_dir}", file=sys.stderr)
        return 2
    path = send(args.run_dir, args.command, args.reason)
    print(f"queued {args.command} for {args.run_dir} ({path.name}); it applies at the run's next bar")
    return 0
