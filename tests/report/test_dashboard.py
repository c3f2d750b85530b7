"""`ratchet-dashboard` over a runs folder holding a real replay: served by uvicorn on a free
loopback port, opened in headless Chromium, token enforced, and read while another process (an
agent) holds a ledger and publishes snapshots."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from ledger.cli import connect_sweep
from ledger.dashboard.app import create_app
from ledger.dashboard.cli import main as dashboard_main
from tests.support.browser import PLOTLY_CHARTS, browser_page

TOKEN = "s3cret-token"
REPO_ROOT = Path(__file__).resolve().parents[2]
REFRESH_MS = 300


@contextmanager
def serving(runs: Path, token: str | None = TOKEN) -> Iterator[str]:
    """The dashboard app on a free loopback port, in a thread; yields its base address."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(runs, token, refresh_ms=REFRESH_MS), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:  # uvicorn's own readiness flag
        assert thread.is_alive() and time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


def _scalars(ledger: Path, sql: str) -> tuple:
    con = connect_sweep([ledger])
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


@pytest.fixture(scope="module")
def dashboard(runs_root, futures_run) -> Iterator[str]:
    with serving(runs_root) as base:
        yield base


def test_the_index_lists_every_run_with_its_agent_mode_state_and_equity(dashboard, futures_run, tmp_path):
    state, equity, heartbeat = _scalars(futures_run.ledger_path, """
        SELECT arg_max(state, ts), arg_max(equity, ts),
            (SELECT strftime(make_timestamp(max(ts) * 1000), '%Y-%m-%d %H:%M') FROM notifications
             WHERE kind = 'heartbeat')
        FROM equity""")
    with browser_page() as browser:
        browser.page.goto(f"{dashboard}/?token={TOKEN}")
        browser.page.wait_for_selector("#runs tbody tr td a")
        row = browser.page.locator("#runs tbody tr").first.locator("td").all_inner_texts()
        browser.page.screenshot(path=str(tmp_path / "index.png"))
        errors = browser.errors
    assert errors == []
    assert row[:5] == ["futures", "futures", "perp_1h", "replay", state]
    assert row[5] == f"{equity:,.2f}"
    assert row[6].startswith("2023-04-01")  # the last bar's close of a quarter ending 2023-04-01
    assert row[7] == (heartbeat or "-")  # the agent's clock at its last heartbeat row, if any
    assert (tmp_path / "index.png").stat().st_size > 10_000


def test_a_run_page_draws_its_equity_and_shows_transitions_adjustments_and_any_view(dashboard, futures_run,
                                                                                     tmp_path):
    with browser_page() as browser:
        browser.page.goto(f"{dashboard}/?token={TOKEN}")
        browser.page.click("#runs tbody a")
        browser.page.wait_for_selector("#equity .plot-container")
        browser.page.wait_for_selector("#transitions tbody tr td")
        charts = browser.page.evaluate(PLOTLY_CHARTS)
        transitions = browser.page.locator("#transitions tbody tr").count()
        adjustments = browser.page.locator("#adjustments tbody tr").count()
        positions = browser.page.locator("#positions tbody").inner_text()
        browser.page.select_option("#view", "kelly")
        loaded = "/^kelly: (the first )?[0-9]/.test(document.getElementById('view-note').textContent)"
        browser.page.wait_for_function(loaded)
        view_header = browser.page.locator("#view-table thead th").all_inner_texts()
        view_rows = browser.page.locator("#view-table tbody tr").count()
        browser.page.screenshot(path=str(tmp_path / "run.png"), full_page=True)
        url, errors = browser.page.url, browser.errors
    assert errors == []
    assert url == f"{dashboard}/runs/futures?token={TOKEN}"
    assert [c["id"] for c in charts] == ["equity"] and charts[0]["points"][0] > 100
    assert transitions == adjustments == 20
    assert positions.strip() == "none"  # every trade of a finished replay is closed
    (kelly_rows,) = _scalars(futures_run.ledger_path, "SELECT count(*) FROM kelly")
    assert view_header[:4] == ["ts", "agent", "kind", "p"] and view_rows == kelly_rows > 0


def test_every_request_needs_the_token_when_one_is_set(dashboard):
    paths = ["/", "/runs/futures", "/api/runs", "/api/runs/futures/live", "/api/runs/futures/views/stats",
             "/static/plotly.js", "/static/dashboard.js"]
    with httpx.Client(base_url=dashboard) as client:
        for path in paths:
            assert client.get(path).status_code == 401, path
            assert client.get(path, params={"token": "wrong"}).status_code == 401, path
            assert client.get(path, headers={"X-Ratchet-Token": TOKEN[:-1]}).status_code == 401, path
            assert client.get(path, params={"token": TOKEN}).status_code == 200, path
        assert client.get("/api/runs", headers={"X-Ratchet-Token": TOKEN}).status_code == 200
        assert client.get("/api/runs", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_runs_outside_the_folder_and_unknown_views_are_not_found(dashboard):
    with httpx.Client(base_url=dashboard, headers={"X-Ratchet-Token": TOKEN}) as client:
        outside = client.get("/api/runs/..%2F..%2F..%2Fetc/live")
        assert outside.status_code == 404 and "no run" in outside.json()["error"]
        unknown = client.get("/api/runs/futures/views/nope")
        assert unknown.status_code == 404 and unknown.json()["error"].startswith("unknown view 'nope'; known: stats")


def test_without_a_token_the_dashboard_is_open_on_loopback(futures_run, runs_root):
    with serving(runs_root, token=None) as base:
        runs = httpx.get(f"{base}/api/runs").json()["runs"]
    assert [r["run"] for r in runs] == ["futures"]


# An agent that holds a run's ledger open for writing: "publish" publishes a snapshot, "mark EQUITY"
# appends an equity mark and a heartbeat one hour after the last mark, commits and publishes; each
# answers "ok".
HOLDING_AGENT = """
import sys
from ledger.writer import Ledger

ledger = Ledger.open(sys.argv[1], sys.argv[2])
print("holding", flush=True)
for line in sys.stdin:
    words = line.split()
    if words[0] == "mark":
        ts, state = ledger.query("SELECT max(ts), arg_max(state, ts) FROM equity")[0]
        ledger.append("equity", {"ts": ts + 3_600_000, "agent": "futures", "equity": float(words[1]),
                                 "cash": float(words[1]), "unrealized": 0.0, "open_positions": 0, "state": state})
        ledger.append("notifications", {"ts": ts + 3_600_000, "agent": "futures", "channel": "ledger",
                                        "kind": "heartbeat", "message": "HEARTBEAT", "delivered": True})
        ledger.commit()
    ledger.publish_snapshot()
    print("ok", flush=True)
ledger.close()
"""


@contextmanager
def holding_agent(ledger: Path, run_id: str) -> Iterator[subprocess.Popen]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    agent = subprocess.Popen([sys.executable, "-c", HOLDING_AGENT, str(ledger), run_id], cwd=REPO_ROOT, env=env,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert agent.stdout.readline().strip() == "holding"
        yield agent
    finally:
        agent.stdin.close()
        agent.wait(timeout=60)
        agent.stdout.close()


def _tell(agent: subprocess.Popen, line: str) -> None:
    agent.stdin.write(line + "\n")
    agent.stdin.flush()
    assert agent.stdout.readline().strip() == "ok"


def test_a_ledger_held_by_a_running_agent_is_read_from_its_snapshot_and_the_page_follows_it(futures_run,
                                                                                           tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(futures_run.run_dir, runs / "live", ignore=shutil.ignore_patterns("report.html"))
    ledger = runs / "live" / "ledger.duckdb"
    with serving(runs) as base, holding_agent(ledger, futures_run.run_id) as agent:
        with httpx.Client(base_url=base, headers={"X-Ratchet-Token": TOKEN}) as client:
            before = client.get("/api/runs/live/live")
            assert before.status_code == 503 and "published no snapshot" in before.json()["error"]
            _tell(agent, "publish")
            live = client.get("/api/runs/live/live").json()
            assert "in use by a running agent; reading its snapshot" in live["notice"]
            assert live["equity"] == pytest.approx(futures_run.facts.equity)
        with browser_page() as browser:
            browser.page.goto(f"{base}/runs/live?token={TOKEN}")
            browser.page.wait_for_function("document.getElementById('now').textContent.includes('equity')")
            _tell(agent, "mark 12345.67")  # the agent writes on; the page is not reloaded
            browser.page.wait_for_function("document.getElementById('now').textContent.includes('12,345.67')")
            status = browser.page.locator("#status").inner_text()
            browser.page.goto(f"{base}/?token={TOKEN}")
            browser.page.wait_for_selector("#runs tbody tr td a")
            row = browser.page.locator("#runs tbody tr").first.locator("td").all_inner_texts()
            errors = browser.errors
    assert errors == []
    assert "reading its snapshot" in status
    assert row[0] == "live" and row[5] == "12,345.67" and row[6] == row[7] == "2023-04-01 01:00"


def test_the_command_refuses_a_missing_runs_folder_in_one_line(tmp_path, capsys):
    assert dashboard_main(["--runs", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err == f"ratchet-dashboard: runs folder {tmp_path / 'nowhere'} does not exist\n"
