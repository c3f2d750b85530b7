"""Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for tests that open pages.

`playwright install` cannot download a browser here, so the system chromium is launched by path;
root needs --no-sandbox. Every page's console errors and uncaught exceptions are collected.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# Per plotly chart on a page: its id, how many traces it has, and how many points they hold.
PLOTLY_CHARTS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(el => ({
    id: el.id,
    rendered: el.querySelector('.plot-container') !== null,
    traces: (el.calcdata || []).length,
    points: (el.calcdata || []).map(trace => trace.filter(pt => pt.x !== undefined || pt.p !== undefined).length),
}))"""


@dataclass
class Browser:
    """A page plus the errors it logged."""

    page: object
    errors: list[str] = field(default_factory=list)


def chromium_path() -> str:
    path = shutil.which("chromium") or CHROMIUM
    if not Path(path).exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test installs it)")
    return path


@contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator[Browser]:
    """A fresh headless Chromium page that records console errors and page errors."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            seen = Browser(page)
            page.on("console", lambda msg: seen.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: seen.errors.append(str(exc)))
            yield seen
        finally:
            browser.close()
