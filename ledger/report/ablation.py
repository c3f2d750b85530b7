"""The ablation's result (``ratchet-ablate``'s ``ablation.json``) as a table, in the terminal and as a
page: per learning loop, the full agent against the loop switched off and against its placebo.

Each difference is full agent minus arm, over the stretches' per-bar returns chained, with its
paired block-bootstrap interval; the verdict reads the interval of the metric it was asked on.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from ledger.cli import format_table
from ledger.report import fmt, markup
from ledger.report.tables import Table

ABLATION_PAGE = "ablation.html"
COLUMNS = ("loop", "against", "return", "Sharpe", "max drawdown", "trades", "verdict")


def _signed_pct(value: float) -> str:
    return f"{100 * value:+.2f}%"


_SIGNED = {"return": _signed_pct, "sharpe": lambda v: f"{v:+.3f}", "max_drawdown": _signed_pct,
           "trades": lambda v: f"{v:+.0f}"}


def effect_cell(metric: str, effect: dict[str, float]) -> str:
    """``+3.10% [-1.20%, +7.50%]``: the difference and its interval."""
    show = _SIGNED[metric]
    if any(fmt.missing(effect.get(k)) for k in ("estimate", "low", "high")):
        return "-"
    return f"{show(effect['estimate'])} [{show(effect['low'])}, {show(effect['high'])}]"


def rows(result: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(c["loop"], f"{'off' if c['kind'] == 'off' else 'placebo'}: {c['against']}",
             *(effect_cell(m, c["effect"][m]) for m in ("return", "sharpe", "max_drawdown", "trades")),
             c["verdict"]) for c in result["comparisons"]]


def headline(result: dict[str, Any]) -> list[str]:
    """What was compared, and how: the lines above the table."""
    full, boot = result["full"], result["bootstrap"]
    stretches = result["stretches"]
    span = stretches[0]["name"] if len(stretches) == 1 else f"{stretches[0]['name']} .. {stretches[-1]['name']}"
    level = f"{100 * boot['level']:.0f} %"
    return [
        f"{result['agent']} on {result['market']} ({result['timeframe']}), {len(stretches)} stretch(es) {span}, "
        f"{result['bars']:,} bars",
        f"full agent: return {fmt.pct(full['return'])}, Sharpe {fmt.ratio(full['sharpe'])}, max drawdown "
        f"{fmt.pct(full['max_drawdown'])}, {full['trades']:.0f} trades",
        f"each cell: full agent minus the arm [{level} interval, paired circular block bootstrap of the per-bar "
        f"returns: block {boot['block']} bars, {boot['resamples']} resamples, seed {boot['seed']}]; "
        f"verdict on {result['verdict_on'].replace('_', ' ')}",
    ]


def ablation_text(result: dict[str, Any]) -> str:
    """The table for the terminal."""
    table = format_table(COLUMNS, rows(result)).splitlines()[:-1]  # no row count
    notes = [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join([*headline(result), "", *table, *notes]) + "\n"


def ablation_table(result: dict[str, Any]) -> Table:
    return Table("ablation", "Does the learning help?", COLUMNS, rows(result), note=" ".join(headline(result)[2:]),
                 numeric=(False, False, True, True, True, True, False))


def ablation_html(result: dict[str, Any]) -> str:
    lines = headline(result)
    body = [f"<h1>Does the learning help? {escape(result['agent'])} on {escape(result['market'])}</h1>",
            f"<p class=\"meta\">{escape(lines[0])}. {escape(lines[1])}. Ablation folder "
            f"<code>{escape(result['folder'])}</code>.</p>",
            markup.table(ablation_table(result), scroll_after=1000)]
    body += [f"<p class=\"note\">{escape(n)}</p>" for n in result.get("notes", [])]
    return markup.page(f"ablation: {result['agent']}", body, with_plotly=False)


def write_ablation_page(result: dict[str, Any], folder: Path) -> Path:
    path = Path(folder) / ABLATION_PAGE
    path.write_text(ablation_html(result), encoding="utf-8")
    return path
