"""`ratchet --help` and `ratchet-diagram --help` say what the commands are and do before Hydra's help;
a sweep (what `make run` is) writes each job's report, prints where, and its summary view says which
value each row ran."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
import tomllib
from pathlib import Path

import duckdb

from ledger.cli import main as ratchet_ledger
from ledger.views import VIEW_NAMES

REPO = Path(__file__).resolve().parents[2]


def _command(entry: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", f"from machine.cli import {entry}; {entry}()", *args],
                          capture_output=True, text=True, cwd=cwd)


def _sections(text: str) -> list[str]:
    return [line.strip("= ") for line in text.splitlines() if line.startswith("== ")]


def test_ratchet_help_opens_with_the_commands_examples_and_views_before_hydras_own_help(tmp_path):
    done = _command("main", "--help", cwd=tmp_path)

    text = done.stdout
    assert done.returncode == 0, done.stderr
    assert text.startswith("ratchet: ")
    assert _sections(text) == ["Commands", "Examples", "Views", "Configuration groups", "Config"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    commands = text.split("== Commands ==")[1].split("== Examples ==")[0]
    assert {line.split()[0] for line in commands.splitlines() if line.strip()} >= set(scripts)
    views = text.split("== Views ==")[1].split("== Configuration groups ==")[0]
    assert "--list-views" in views and all(name in views.replace("\n", " ") for name in VIEW_NAMES)
    groups = text.split("== Configuration groups ==")[1].split("== Config ==")[0]
    assert "agent: ema_cross, futures, hybrid" in groups and "experiment:" in groups and "market:" in groups
    assert "starting_cash:" in text.split("== Config ==")[1]  # Hydra's composed config follows
    assert list(tmp_path.iterdir()) == []  # asking for help makes no run folder


def test_ratchet_help_describes_the_config_an_override_composes(tmp_path):
    done = _command("main", "agent=ema_cross", "--help", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "name: ema_cross" in done.stdout.split("== Config ==")[1]


def test_ratchet_diagram_help_says_what_it_draws(tmp_path):
    done = _command("diagram_main", "agent=ema_cross", "--help", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ratchet-diagram: draws the composed agent's state machine as mermaid text")
    assert "ratchet-diagram agent=futures" in done.stdout
    assert "agent: ema_cross, futures, hybrid" in done.stdout
    assert list(tmp_path.iterdir()) == []


SWEEP = ("agent=ema_cross", "market=spot_1h", "market.start=2023-03-01", "market.end=2023-03-22",
         "market.symbols=[BTC/USDT]", "agent.components.signal.fast=8,12")


def test_a_sweep_writes_each_jobs_report_and_its_summary_has_a_column_per_swept_value(tmp_path, capsys):
    sweep = tmp_path / "sweep"
    done = _command("main", "-m", *SWEEP, f"hydra.sweep.dir={sweep}", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    reports = [Path(line.split(maxsplit=1)[1]) for line in done.stdout.splitlines() if line.startswith("report:")]
    run_dirs = sorted(p.parent for p in sweep.glob("*/ledger.duckdb"))
    assert sorted(p.parent for p in reports) == run_dirs and len(run_dirs) == 2
    assert all(p.name == "report.html" and p.read_text().startswith("<!DOCTYPE html>") for p in reports)
    assert ratchet_ledger([str(sweep), "--view", "summary", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert list(rows[0])[:3] == ["run_dir", "fast", "run_id"]
    for row in rows:
        with duckdb.connect(str(Path(row["run_dir"]) / "ledger.duckdb"), read_only=True) as con:
            config = con.execute("SELECT config ->> '$.agent.components.signal.fast' FROM runs").fetchone()[0]
            trades = con.execute("SELECT count(*) FROM trades").fetchone()[0]
        assert (row["fast"], int(row["trades"])) == (config, trades)
    assert sorted(r["fast"] for r in rows) == ["12", "8"]
