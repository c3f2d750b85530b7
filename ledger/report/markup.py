"""The HTML around figures and tables: one page skeleton and style for the report, the comparison
page and the dashboard. Plotly's JavaScript is embedded once per page, never fetched."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from html import escape

import plotly.io as pio
from plotly.offline import get_plotlyjs

from ledger.report.charts import Chart
from ledger.report.tables import Link, Table

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1280px;
       padding: 0 24px 48px; color: #1f2328; }
h1 { font-size: 1.5rem; margin: 24px 0 4px; } h2 { font-size: 1.2rem; margin: 32px 0 8px;
  border-bottom: 1px solid #d0d7de; padding-bottom: 4px; } h3 { font-size: 1rem; margin: 20px 0 6px; }
nav a { margin-right: 12px; } .meta, .note { color: #57606a; font-size: 0.85rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 4px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
th { background: #f6f8fa; position: sticky; top: 0; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.scroll { max-height: 480px; overflow: auto; border: 1px solid #eaeef2; }
.chart { margin: 8px 0 4px; } code { background: #f6f8fa; padding: 1px 4px; }
"""


@cache
def plotly_js() -> str:
    """plotly.js, minified, from the installed plotly package (offline: no CDN)."""
    return get_plotlyjs()


def page(title: str, body: Iterable[str], *, with_plotly: bool = True, head: str = "") -> str:
    script = f"<script>{plotly_js()}</script>" if with_plotly else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<link rel=\"icon\" href=\"data:,\">"  # no favicon request (it would need the dashboard's token)
            f"<style>{STYLE}</style>{script}{head}</head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n")


def _cell(value: str | Link, numeric: bool) -> str:
    text = (f"<a href=\"{escape(value.href)}\">{escape(value.text)}</a>" if isinstance(value, Link)
            else escape(value))
    return f"<td class=\"num\">{text}</td>" if numeric else f"<td>{text}</td>"


def table(t: Table, *, scroll_after: int = 25) -> str:
    numeric = list(t.numeric) or [False] * len(t.columns)
    head = "".join(f"<th>{escape(c)}</th>" for c in t.columns)
    rows = "".join("<tr>" + "".join(_cell(c, n) for c, n in zip(row, numeric, strict=True)) + "</tr>\n"
                   for row in t.rows)
    grid = f"<table id=\"table-{escape(t.key)}\"><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>"
    if len(t.rows) > scroll_after:
        grid = f"<div class=\"scroll\">{grid}</div>"
    empty = "" if t.rows else "<p class=\"note\">none</p>"
    note = f"<p class=\"note\">{escape(t.note)}</p>" if t.note else ""
    return f"<h3>{escape(t.title)}</h3>{grid if t.rows else empty}{note}"


def chart(c: Chart) -> str:
    div = pio.to_html(c.figure, full_html=False, include_plotlyjs=False, div_id=f"chart-{c.key}",
                      config={"displaylogo": False, "responsive": True})
    note = f"<p class=\"note\">{escape(c.note)}</p>" if c.note else ""
    return f"<h3>{escape(c.title)}</h3><div class=\"chart\">{div}</div>{note}"


def absent(title: str, why: str) -> str:
    """A chart left out because the run has nothing for it, and why."""
    return f"<h3>{escape(title)}</h3><p class=\"note\">{escape(why)}</p>"
