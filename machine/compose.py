"""Compose the Hydra config tree from Python (tests, benchmarks, notebooks) as the CLI does."""

from __future__ import annotations

from typing import Any

from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from machine.config import RunConfig, load_run_config


def compose_dict(*overrides: str) -> dict[str, Any]:
    """The composed config as a plain dict, ``hydra`` key excluded."""
    with initialize_config_module("conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def compose_run(*overrides: str) -> RunConfig:
    """The composed config validated into a RunConfig (raises ConfigError)."""
    return load_run_config(compose_dict(*overrides))
