"""The weekly parameter optimiser: propose, canary, promote, roll back (DESIGN invariant 4).

``space``      the declared search space (``agent.optimise``), checked against the agent's components
``objective``  what a set of parameters earned over a stretch of bars, net of fees, as one number
``backtest``   a muted agent on a simulated exchange: a trial on a past window, or a shadow of the live agent
``study``      an Optuna study (seeded TPE) over a window, on a storage several workers may share
``canary``     two shadows on the same bars (challenger and champion) and the verdict between them
``promotion``  the promoted parameter sets: versioned, hashed files in the run folder, with history
``job``        the schedule on the agent's clock that ties them together (replay, paper, live)
``cli``        ``ratchet-optimise``: one study over any window, for users
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from machine.agent import Agent
    from machine.config import RunConfig


def attach(cfg: RunConfig, run_dir: Path, agent: Agent) -> None:
    """Schedule the optimiser on the agent's clock when its ``optimise`` block is declared and enabled
    (Optuna is imported only then: a replay that does not optimise does not carry it)."""
    if cfg.agent.optimise is not None and cfg.agent.optimise.enabled:
        from machine.optimise.job import ParameterJob

        agent.schedule(ParameterJob(cfg, run_dir, agent))
