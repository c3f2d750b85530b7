"""The dashboard's two pages: static HTML that `static/dashboard.js` fills by polling the JSON
endpoints. What the script needs (which page, which run, how often) rides on #dashboard's data-*."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from ledger.report.markup import page
from ledger.views import VIEWS

REFRESH_MS = 5000


def _asset(path: str, token: str | None) -> str:
    """A script address; with a token, the token rides along (a script tag cannot send a header)."""
    return escape(path + (f"?{urlencode({'token': token})}" if token else ""))


def _table(key: str, columns: tuple[str, ...]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    return f"<div class=\"scroll\"><table id=\"{key}\"><thead><tr>{head}</tr></thead><tbody></tbody></table></div>"


def _settings(page_name: str, token: str | None, refresh_ms: int, run: str = "") -> str:
    return (f"<main id=\"dashboard\" data-page=\"{page_name}\" data-run=\"{escape(run)}\" "
            f"data-refresh=\"{refresh_ms}\"></main><script src=\"{_asset('/static/dashboard.js', token)}\"></script>")


def index_page(root: str, token: str | None = None, refresh_ms: int = REFRESH_MS) -> str:
    body = ["<h1>Ratchet runs</h1>",
            f"<p class=\"meta\">every run under <code>{escape(root)}</code>; read-only, refreshed every "
            f"{refresh_ms / 1000:g} s. <span id=\"status\"></span></p>",
            _table("runs", ("run", "agent", "market", "mode", "state", "equity", "last bar (UTC)",
                            "last heartbeat (UTC)")),
            _settings("index", token, refresh_ms)]
    return page("Ratchet runs", body, with_plotly=False)


def run_page(run: str, token: str | None = None, refresh_ms: int = REFRESH_MS) -> str:
    options = "".join(f"<option value=\"{escape(v.name)}\" title=\"{escape(v.doc)}\">{escape(v.name)}</option>"
                      for v in VIEWS)
    body = [f"<h1>{escape(run)}</h1>",
            "<p class=\"meta\"><a class=\"keep-token\" href=\"/\">all runs</a> · <span id=\"status\"></span></p>",
            "<p id=\"now\"></p>",
            "<h2>Equity</h2><div id=\"equity\" class=\"chart\"></div>",
            "<h2>Open positions</h2>",
            _table("positions", ("trade", "symbol", "side", "qty", "entry price", "entry (UTC)", "leverage", "mode",
                                 "state")),
            "<h2>Recent transitions</h2>", _table("transitions", ("time (UTC)", "from", "to", "trigger", "why")),
            "<h2>Recent adjustments</h2>", _table("adjustments", ("time (UTC)", "kind", "before", "after", "why")),
            f"<h2>Ledger view</h2><p><select id=\"view\">{options}</select> <span id=\"view-note\" "
            "class=\"note\"></span></p>",
            "<div class=\"scroll\"><table id=\"view-table\"><thead></thead><tbody></tbody></table></div>",
            _settings("run", token, refresh_ms, run)]
    plotly = f"<script src=\"{_asset('/static/plotly.js', token)}\"></script>"
    return page(f"Ratchet: {run}", body, with_plotly=False, head=plotly)
