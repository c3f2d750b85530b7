"""Every agent's machine, rendered from its declaration, is snapshot-tested: any change shows as a diff."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from machine.builder import mermaid
from machine.compose import compose_dict
from machine.spec import MachineSpec

AGENTS = sorted(p.stem for p in (Path(__file__).parents[2] / "conf" / "agent").glob("*.yaml"))


@pytest.mark.parametrize("agent", AGENTS)
def test_state_diagram(agent, snapshot):
    spec = MachineSpec.model_validate(compose_dict(f"agent={agent}")["agent"]["machine"])
    assert mermaid(spec, title=agent) == snapshot


def test_ratchet_diagram_prints_the_same_text_as_the_snapshot_source():
    out = subprocess.run([sys.executable, "-c", "from machine.cli import diagram_main; diagram_main()",
                          "agent=futures"], capture_output=True, text=True, check=True)
    spec = MachineSpec.model_validate(compose_dict("agent=futures")["agent"]["machine"])
    assert out.stdout == mermaid(spec, title="futures")
    assert "conservative --> kelly_active: earn_kelly [closed_trades_at_least(10) & kelly_edge_positive]" in out.stdout
