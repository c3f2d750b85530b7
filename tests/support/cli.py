"""Run ``ratchet`` as a user would, in a subprocess, and keep what it printed."""

from __future__ import annotations

import subprocess
import sys


def ratchet(*overrides: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", "from machine.cli import main; main()", *overrides],
                          capture_output=True, text=True)
