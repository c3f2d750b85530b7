"""``ratchet-ablate``'s own border: what it lists, and bad input as one line."""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path

import pytest

from machine.ablation.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        main(list(argv))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_each_loop_and_the_config_that_switches_it_off_and_runs_nothing(capsys, tmp_path):
    code, out, _ = run(capsys, "--list", "--out", str(tmp_path / "ablation"), "agent=futures")
    assert code == 0
    assert out.startswith("futures: 5 loop(s), 5 stretch(es) (y2022, y2023, y2024, y2025, y2026)")
    assert "kelly: fixed risk 0.30% in Kelly's place (placebo: random risk in kelly's place); " \
           "+ablation=without_kelly merges:" in out
    assert "closed_trades_at_least: 1000000000000" in out  # the guard that closes the breakers' transitions
    assert not (tmp_path / "ablation").exists()


@pytest.mark.parametrize(("argv", "says"), [
    (("--loops", "retraining", "agent=futures"), "ConfigError: --loops: retraining not declared by this agent; "
                                                 "it declares: kelly, exploration, regime_gating"),
    (("--resamples", "10", "agent=futures"), "ConfigError: --resamples 10: at least 100"),
    (("--stretch", "all", "agent=futures", "market.start=2024-05-01", "market.end=2024-01-01"),
     "ConfigError: market.start: 2024-05-01 is after market.end 2024-01-01"),
    (("agent=nope",), "ConfigError: In 'config': Could not find 'agent/nope'"),
])
def test_bad_input_ends_in_one_line_naming_what_is_wrong(capsys, argv, says):
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith(f"ratchet-ablate: {says}") and err.count("\n") == 1


def test_the_console_script_is_declared_and_installed():
    scripts = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ratchet-ablate"] == "machine.ablation.cli:main"
    assert shutil.which("ratchet-ablate", path=str(Path(sys.executable).parent)) is not None
