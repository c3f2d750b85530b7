"""Shared fixtures: compose real configs with Hydra, replay bundled data into tmp run folders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from machine.config import RunConfig, load_run_config


def compose_dict(*overrides: str) -> dict[str, Any]:
    with initialize_config_module("conf", version_base="1.3"):
        cfg = compose("config", overrides=list(overrides))
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    return data  # type: ignore[return-value]


def compose_run(*overrides: str) -> RunConfig:
    return load_run_config(compose_dict(*overrides))


@pytest.fixture
def run_config() -> Callable[..., RunConfig]:
    return compose_run
