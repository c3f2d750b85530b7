"""Shared fixtures: compose real configs with Hydra and replay bundled data into tmp run folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

from machine.compose import compose_run
from machine.engine import RunResult, run_replay

# `make test` (and so CI) is reproducible: the same examples on every run, no example database.
# Explore new examples locally with HYPOTHESIS_PROFILE=explore.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def replay(tmp_path: Path):
    """Replay a composed config into a fresh folder under tmp_path; returns the RunResult."""
    counter = iter(range(1000))

    def run(*overrides: str, run_dir: Path | None = None, **kwargs) -> RunResult:
        folder = run_dir or tmp_path / f"run{next(counter)}"
        return run_replay(compose_run(*overrides), folder, **kwargs)

    return run
