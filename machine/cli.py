"""Hydra entry points: ``ratchet`` (replay a run) and ``ratchet-diagram`` (print the machine)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from components.notify import without_secrets
from machine.builder import mermaid
from machine.cli_errors import cli_entry, hydra_task, resolve_config
from machine.config import load_agent_config, load_run_config
from machine.stopping import StopRequest

CONFIG_PATH = "pkg://conf"


def _plain(cfg: DictConfig) -> dict[str, Any]:
    """The task config resolved; an interpolation that cannot be resolved is a ConfigError naming its key."""
    data = resolve_config(cfg)
    data.pop("hydra", None)
    return data


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
@hydra_task("ratchet")
def _run(cfg: DictConfig) -> None:
    from machine.engine import run_replay
    from machine.report import render, summarize, write_summary

    data = _plain(cfg)
    run_cfg = load_run_config(data)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    with StopRequest() as stop:
        result = run_replay(run_cfg, run_dir, config_dump=without_secrets(data), stopping=stop.requested,
                            on_claimed=lambda: _save_hydra_config(cfg, run_dir))
    summary = summarize(result.ledger_path)
    summary["bars"] = result.bars
    summary["seconds"] = round(result.seconds, 2)
    write_summary(summary, run_dir)
    resumed = f", resumed after bar {result.resumed_from_bar}" if result.resumed_from_bar else ""
    print(f"replayed {result.bars} bars in {result.seconds:.1f}s{resumed}")
    if result.stopped:
        print(f"stopped on request after {result.bars} bars, everything committed; run the same command "
              f"with hydra.run.dir={run_dir} to go on")
    print(render(summary, run_dir))


def _save_hydra_config(cfg: DictConfig, run_dir: Path) -> None:
    """What Hydra saves in ``.hydra/``, written once the folder is claimed, and only once."""
    folder = run_dir / ".hydra"
    if (folder / "config.yaml").exists():
        return  # a resumed run: the first start's files describe the ledger
    folder.mkdir(parents=True, exist_ok=True)
    hydra_cfg = HydraConfig.get()
    OmegaConf.save(cfg, folder / "config.yaml")  # unresolved: ${oc.env:...} secrets stay references
    OmegaConf.save(OmegaConf.create({"hydra": hydra_cfg}), folder / "hydra.yaml")
    OmegaConf.save(hydra_cfg.overrides.task, folder / "overrides.yaml")


@cli_entry("ratchet")
def main() -> None:
    _run()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
@hydra_task("ratchet-diagram")
def _diagram(cfg: DictConfig) -> None:
    """The whole config resolved and the agent validated as a run validates it, then drawn."""
    agent = load_agent_config(_plain(cfg))
    print(mermaid(agent.machine, title=agent.name), end="")


@cli_entry("ratchet-diagram")
def diagram_main() -> None:
    """``ratchet-diagram agent=futures``: the machine as mermaid text; no run folder is made."""
    sys.argv += ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
                 "hydra/hydra_logging=disabled"]
    _diagram()
