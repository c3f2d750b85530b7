"""Operator commands for a run (``ratchet-control RUN_DIR resume``): the only way to lift a halt.
``ratchet-control RUN_DIR status`` says what the run is doing.

A command is a JSON file in ``RUN_DIR/control/``. The engine takes it at the next bar, records it
as an ``operator_command`` adjustment, and marks the file applied. A resumed run replays recorded
commands at the bars they were taken, so the ledger is the same as if it had never stopped.

Whether a run is still going: a running agent (replay, paper or live) holds its ledger's write
lock until it ends. A replay that is not running has finished when its ledger holds the mark of
the last bar of its market (the engine's own test for a complete run); one stopped before that
goes on when started again, and takes a queued command then. A command for a finished replay
would never be taken, so it is refused.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from core.errors import ConfigError, LedgerError, RatchetError
from machine.cli_errors import USER_ERROR, cli_entry

COMMANDS = ("resume", "flatten")  # flatten: close every position at market, no new entries until resume
LEDGER_FILE = "ledger.duckdb"


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


def pending(run_dir: Path) -> list[dict[str, Any]]:
    """Commands sent and not yet taken, oldest first, each with when it was sent (epoch ms)."""
    folder = control_dir(run_dir)
    out = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            command = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue  # taken (renamed) while we looked
        sent = path.name.split("-", 1)[0]
        out.append({**command, "sent": int(sent) // 1_000_000 if sent.isdigit() else None})
    return out


@dataclass(frozen=True)
class RunStatus:
    """What ``ratchet-control RUN status`` says: the agent's state, the queue, whether the run goes on."""

    run_dir: Path
    agent: str | None
    mode: str | None
    market: str | None
    state: str | None  # the state of the last equity mark; None before the first, or unreadable
    state_since: int | None  # when the agent entered it (its last transition), epoch ms
    last_bar: int | None  # the last committed equity mark (a bar close), epoch ms
    running: bool  # a process holds the ledger
    finished: bool | None  # a replay whose ledger holds its last bar; None: cannot tell
    queued: list[dict[str, Any]] = field(default_factory=list)
    applied: int = 0
    note: str = ""  # why the state or the end could not be read

    def describe(self) -> str:
        lines = [f"run:      {self.run_dir}"]
        if self.agent is not None:
            lines.append(f"agent:    {self.agent} ({self.mode or 'replay'} on {self.market or '?'})")
        if self.state is not None:
            since = f" since {_utc(self.state_since)}" if self.state_since is not None else " since its first bar"
            lines.append(f"state:    {self.state}{since}; last bar closed {_utc(self.last_bar)}")
        else:
            lines.append("state:    unknown" + (f" ({self.note})" if self.note else ""))
        lines.append(f"running:  {self._going()}")
        queued = "; ".join(f"{c['command']} ({c.get('reason') or 'no reason'}, sent {_utc(c['sent'])})"
                           for c in self.queued)
        lines.append(f"commands: {len(self.queued)} queued" + (f": {queued}" if queued else "")
                     + f"; {self.applied} taken before")
        return "\n".join(lines)

    def _going(self) -> str:
        if self.running:
            return "yes: a process holds its ledger; a command applies at its next bar"
        if self.finished:
            return f"no: finished, its last bar ({_utc(self.last_bar)}) is in the ledger; it takes no more commands"
        if self.finished is None and (self.mode or "replay") == "replay":
            return f"no: stopped, and whether before its last bar cannot be told ({self.note})"
        return ("no: stopped before its end; start it again (the same command with hydra.run.dir="
                f"{self.run_dir}) and it takes a queued command at its next bar")


def _utc(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ledger_in_use(path: Path) -> bool:
    """Whether a process holds the ledger's write lock (a running agent holds it until it ends)."""
    import duckdb

    from ledger.cli import LOCKED

    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.Error as exc:
        if LOCKED in str(exc):
            return True
        raise LedgerError(f"{path} is not a readable ledger ({str(exc).strip().splitlines()[0]})") from None
    return False


def status(run_dir: Path) -> RunStatus:
    """Read a run folder's status; the ledger is only read (its snapshot while an agent holds it)."""
    path = run_dir / LEDGER_FILE
    running = ledger_in_use(path)
    queued = pending(run_dir)
    applied = len(list(control_dir(run_dir).glob("*.applied"))) if control_dir(run_dir).is_dir() else 0
    try:
        facts = _ledger_facts(path)
    except LedgerError as exc:
        if not running:
            raise
        return RunStatus(run_dir, None, None, None, None, None, None, True, False, queued, applied, str(exc))
    finished: bool | None = False
    note = ""
    if not running and (facts["mode"] or "replay") == "replay":
        try:
            finished = facts["last_bar"] is not None and facts["last_bar"] >= _replay_end(facts["config"])
        except RatchetError as exc:
            finished, note = None, f"its market cannot be loaded: {exc}"
    return RunStatus(run_dir, facts["agent"], facts["mode"], facts["market"], facts["state"], facts["since"],
                     facts["last_bar"], running, finished, queued, applied, note)


def _ledger_facts(path: Path) -> dict[str, Any]:
    from ledger.cli import connect_sweep

    con = connect_sweep([path])
    try:
        runs = con.execute("SELECT agent, mode, market, config FROM runs ORDER BY wall_ts").fetchall()
        if not runs:
            raise LedgerError(f"ledger {path} has no runs row: the run never started")
        agent, mode, market, config = runs[0]
        state, last_bar = con.execute("SELECT arg_max(state, ts), max(ts) FROM equity WHERE agent = ?",
                                      [agent]).fetchone()
        (since,) = con.execute("SELECT max(ts) FROM transitions WHERE agent = ? AND dest = ? AND ts <= ?",
                               [agent, state, last_bar]).fetchone()
    finally:
        con.close()
    return {"agent": agent, "mode": mode, "market": market, "config": json.loads(config) if config else {},
            "state": state, "since": since, "last_bar": last_bar}


def _replay_end(config: dict[str, Any]) -> int:
    """The close of the last bar the run's replay steps (the engine: a run is complete once its ledger
    holds a mark at or after it)."""
    from machine.config import load_run_config
    from machine.engine import load_run_market

    market = load_run_market(load_run_config(config))
    if len(market) == 0:
        raise ConfigError("the run's market holds no bars")
    return int(market.ts[-1]) + market.timeframe_ms


@cli_entry("ratchet-control")
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ratchet-control", description=__doc__.split("\n\n")[0],
        epilog="status: the agent's state, the queued commands, and whether the run is still going.\n"
               "resume: lifts a halt (or a flatten) at the run's next bar; refused for a run that has finished.\n"
               "flatten: closes every position at market and takes no new entries until resume.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    parser.add_argument("command", choices=("status", *COMMANDS))
    parser.add_argument("--reason", default="operator request")
    args = parser.parse_args(argv)
    if not (args.run_dir / LEDGER_FILE).is_file():
        print(f"ratchet-control: no {LEDGER_FILE} in {args.run_dir}", file=sys.stderr)
        return USER_ERROR
    now = status(args.run_dir)
    if args.command == "status":
        print(now.describe())
        return 0
    if now.finished:
        print(f"ratchet-control: refused: {args.run_dir} has finished (its last bar, {_utc(now.last_bar)}, is in "
              f"the ledger), so no bar is left to take {args.command!r}; start a new run to go on trading",
              file=sys.stderr)
        return USER_ERROR
    path = send(args.run_dir, args.command, args.reason)
    when = "at the run's next bar" if now.running else "when the run is started again"
    print(f"queued {args.command} for {args.run_dir} ({path.name}); it applies {when}")
    return 0
