"""Hydra entry points: ``ratchet`` (replay a run) and ``ratchet-diagram`` (print the machine)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from core.errors import ConfigError, RatchetError
from core.validation import format_validation_error
from machine.builder import mermaid
from machine.config import load_run_config
from machine.spec import MachineSpec

CONFIG_PATH = "pkg://conf"


def _plain(cfg: DictConfig) -> dict[str, Any]:
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    data.pop("hydra", None)
    return data  # type: ignore[return-value]


def _fail(exc: RatchetError) -> None:
    print(f"ratchet: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(2)


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _run(cfg: DictConfig) -> None:
    from machine.engine import run_replay
    from machine.report import render, summarize, write_summary

    try:
        data = _plain(cfg)
        run_cfg = load_run_config(data)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        result = run_replay(run_cfg, run_dir, config_dump=data)
        summary = summarize(result.ledger_path)
        summary["bars"] = result.bars
        summary["seconds"] = round(result.seconds, 2)
        write_summary(summary, run_dir)
        resumed = f", resumed after bar {result.resumed_from_bar}" if result.resumed_from_bar else ""
        print(f"replayed {result.bars} bars in {result.seconds:.1f}s{resumed}")
        print(render(summary, run_dir))
    except RatchetError as exc:
        _fail(exc)


def main() -> None:
    _run()


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="config")
def _diagram(cfg: DictConfig) -> None:
    from pydantic import ValidationError

    agent = cfg.agent
    try:
        spec = MachineSpec.model_validate(OmegaConf.to_container(agent.machine, resolve=True))
    except ValidationError as exc:
        _fail(ConfigError(format_validation_error(exc, "agent.machine")))
        return
    print(mermaid(spec, title=str(agent.name)), end="")


def diagram_main() -> None:
    """``ratchet-diagram agent=futures``: the machine as mermaid text; no run folder is made."""
    sys.argv += ["hydra.run.dir=.", "hydra.output_subdir=null", "hydra/job_logging=disabled",
                 "hydra/hydra_logging=disabled"]
    _diagram()
