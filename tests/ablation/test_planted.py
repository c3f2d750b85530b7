"""The ablation end to end on planted loops (tests/ablation/planted.py), as ``ratchet-ablate`` runs it:
two Hydra multiruns (the arms, then the placebos) of the futures agent on real 2023 prices, the
comparisons, the table, and the ``learning_effect`` view over the runs.

A gate that sees the next bar must be found to help, against its absence and against a coin that
takes as many signals; a gate that does nothing must show no evidence either way.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.cli import main as ledger_main
from ledger.overrides import hydra_overrides
from ledger.report.ablation import ABLATION_PAGE, ablation_html, ablation_text, write_ablation_page
from machine.ablation.bootstrap import Bootstrap
from machine.ablation.runner import RESULT_FILE, plan_ablation, run_ablation
from tests.ablation.planted import planted_loops

CONF = Path(__file__).parent / "conf"
PLANTED = (f"hydra.searchpath=['file://{CONF.resolve()}']", "experiment=planted_futures",
           "market.start=2023-01-01", "market.end=2024-01-01", "hydra/launcher=basic")


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    out = tmp_path_factory.mktemp("planted") / "ablation"
    plan = plan_ablation(PLANTED, loops=["peeking", "no_op"], every="all", out=out, extra_loops=[planted_loops])
    said: list[str] = []
    result = run_ablation(plan, launcher=[], how=Bootstrap(resamples=500), say=said.append)
    return out, result, said


def comparison(result: dict, arm: str) -> dict:
    return next(c for c in result["comparisons"] if c["arm"] == arm)


def test_a_gate_that_sees_the_next_bar_helps(ablation):
    _, result, _ = ablation
    off = comparison(result, "without_peeking")
    assert off["verdict"] == "helps"
    assert off["effect"]["return"]["low"] > 0
    assert off["effect"]["trades"]["estimate"] < 0  # it helps while trading less ...


def test_it_beats_a_coin_that_takes_as_many_signals(ablation):
    _, result, said = ablation
    placebo = comparison(result, "placebo_peeking")
    assert placebo["verdict"] == "helps"  # ... and not because it trades less
    assert any(line.startswith("placebo for peeking: peek took ") for line in said)


def test_a_gate_that_does_nothing_shows_no_evidence_either_way(ablation):
    _, result, _ = ablation
    for arm in ("without_no_op", "placebo_no_op"):
        c = comparison(result, arm)
        assert c["verdict"] == "no evidence"
        assert all(c["effect"][m] == {"estimate": 0.0, "low": 0.0, "high": 0.0} for m in c["effect"])


def test_the_runs_are_hydra_multirun_jobs_told_their_arm_and_stretch(ablation):
    out, result, _ = ablation
    assert json.loads((out / RESULT_FILE).read_text()) == result
    for folder, arm in (("arms", "full"), ("arms", "without_peeking"), ("placebos", "placebo_no_op")):
        overrides = hydra_overrides(out / folder / "all" / arm)
        assert overrides is not None and f"+ablation={arm}" in overrides and "+stretch=all" in overrides
    assert (out / "conf" / "ablation" / "placebo_peeking.yaml").read_text().startswith("# @package _global_")


def test_the_table_has_a_row_per_comparison_in_the_terminal_and_on_the_page(ablation, tmp_path):
    _, result, _ = ablation
    text = ablation_text(result).splitlines()
    rows = [line for line in text if line.startswith(("peeking", "no_op"))]
    assert len(rows) == len(result["comparisons"]) == 4
    assert rows[0].split()[-1] == "helps" and rows[1].endswith("no evidence")
    assert "+0.00% [+0.00%, +0.00%]" in rows[1]
    assert text[1].startswith("full agent: return ")
    page = write_ablation_page(result, tmp_path)
    assert page.name == ABLATION_PAGE and page.read_text() == ablation_html(result)
    html = page.read_text()
    assert html.count("<tr>") == 1 + 4 and html.count(">helps</td>") == 2 and html.count(">no evidence</td>") == 2


def test_the_learning_effect_view_pairs_each_run_with_the_full_agent_and_agrees_with_the_table(ablation, capsys):
    out, result, _ = ablation
    assert ledger_main([str(out), "--view", "learning_effect", "--format", "json"]) == 0
    rows = {row["arm"]: row for row in json.loads(capsys.readouterr().out)}
    assert set(rows) == {"full", "without_peeking", "without_no_op", "placebo_peeking", "placebo_no_op"}
    assert rows["full"]["ablation"] == "full"  # the swept override, beside the view's own columns
    for arm, row in rows.items():
        assert row["agent"] == "futures" and row["window_start"] == "2023-01-01"
        assert row["full_return"] == pytest.approx(result["full"]["return"], rel=1e-9)
        assert row["return_effect"] == pytest.approx(row["full_return"] - row["return"], abs=1e-12)
        if arm != "full":
            c = comparison(result, arm)
            for metric in ("return", "sharpe", "max_drawdown", "trades"):
                assert row[f"{metric}_effect"] == pytest.approx(c["effect"][metric]["estimate"], rel=1e-6, abs=1e-9)
    assert rows["without_no_op"]["return_effect"] == 0
