"""Sweeps that outgrow one machine: ``hydra/launcher=ray`` (the ``scale`` extra, which ``make test``
installs) runs a sweep's jobs as Ray tasks; here on a local Ray instance, as a cluster would."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

pytest.importorskip("hydra_plugins.hydra_ray_launcher", reason="the Ray launcher is the optional extra: "
                    "pip install -e '.[scale]' (make test installs it)")


def test_a_local_ray_instance_runs_a_sweep_of_optimising_agents(tmp_path):
    sweep = tmp_path / "sweep"
    out = subprocess.run(
        [sys.executable, "-c", "from machine.cli import main; main()", "-m", "hydra/launcher=ray",
         "+hydra.launcher.ray.init.num_cpus=2", "+hydra.launcher.ray.init.include_dashboard=false",
         "agent=futures", "market=perp_1h", "market.start=2023-09-01", "market.end=2023-09-22",
         "agent.optimise.enabled=true", "agent.optimise.trials=6", "agent.optimise.lookback_days=7",
         "agent.optimise.objective=sharpe,return", f"hydra.sweep.dir={sweep}"],
        capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    objectives = []
    for job in ("0_futures", "1_futures"):
        con = duckdb.connect(str(sweep / job / "ledger.duckdb"), read_only=True)
        try:
            (config,) = con.execute("SELECT config->'agent'->'optimise'->>'objective' FROM runs").fetchone()
            proposals = con.execute("SELECT count(*) FROM adjustments WHERE kind = 'param_proposal'").fetchone()[0]
        finally:
            con.close()
        objectives.append(config)
        assert proposals >= 1
    assert sorted(objectives) == ["return", "sharpe"]
    assert "(_run_job pid=" in out.stdout + out.stderr  # the jobs ran as Ray tasks
