"""Long work shows one redrawn line on a terminal and nothing when its output is not a TTY."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# As the engine would drive it: the bars of the bundled BTC/USDT 1h history, one call per bar.
DRIVE = """
import sys
import pyarrow.parquet as pq
from components.market.catalog import BUNDLED_DATA_DIR
from machine.progress import StepProgress

bars = pq.read_metadata(BUNDLED_DATA_DIR / "binance_spot_BTC-USDT_1h.parquet").num_rows
with StepProgress("replay ema_cross") as progress:
    for done in range(bars + 1):
        progress(done, bars)
print(f"replayed {bars} bars")
"""


def _under_a_terminal(code: str) -> tuple[int, str]:
    """Run code with stdout and stderr on a pseudo-terminal; everything it wrote, as the terminal got it."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, cwd=REPO)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(), b"".join(chunks).decode()


def test_on_a_terminal_the_bar_redraws_one_line_per_percent_and_clears_it_at_the_end():
    code, shown = _under_a_terminal(DRIVE)

    bars = int(shown.rsplit("replayed ", 1)[1].split()[0])
    draws = shown.replace("\r\n", "\n").split("\r")  # a terminal ends lines with \r\n
    assert code == 0
    assert draws[1].startswith("replay ema_cross [") and "0%" in draws[1]
    assert any(f"100% {bars}/~{bars}" in d for d in draws)
    assert len([d for d in draws if d.startswith("replay ema_cross [")]) == 101  # 0 %, 1 %, ..., 100 %
    assert draws[-2].strip() == "" and draws[-1].startswith("replayed")  # the line was blanked before the summary


def test_when_output_is_not_a_terminal_nothing_is_drawn():
    done = subprocess.run([sys.executable, "-c", DRIVE], capture_output=True, text=True, cwd=REPO)

    assert done.returncode == 0
    assert done.stderr == ""
    assert done.stdout.startswith("replayed ") and "\r" not in done.stdout
