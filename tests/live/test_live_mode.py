"""mode=live through the engine and the ratchet CLI: the opt-in, the keys (never shown anywhere), and a
live stretch of the futures agent whose ledger agrees with the exchange's own records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from components.exchange.client_ids import client_order_id
from core.errors import ConfigError
from ledger.writer import Ledger
from machine.compose import compose_run
from machine.engine import _run_id, run_replay
from machine.exchange_modes import LiveConfig, LiveMode
from tests.live.conftest import HOUR, T0, lockstep, rows
from tests.support.binance import FakeBinance, FakeClock
from tests.support.binance.account_routes import Venue
from tests.support.ledger_export import committed_bars

KEY, SECRET = "RK7Q2ZK9live4cc1recognisable", "RSx4m8p1LIVEsecret9recognisable"


@pytest.fixture
def keyed() -> Iterator[tuple[FakeBinance, Venue]]:
    with FakeBinance(FakeClock(T0)) as server:
        venue = Venue.install(server, api_key=KEY, secret=SECRET)
        lockstep(server, HOUR // 4)
        yield server, venue


def overrides(server: FakeBinance, *extra: str) -> tuple[str, ...]:
    return ("agent=futures", "market=perp_1h", "mode=live", "mode.confirm=true", f"exchange.base_url={server.base_url}",
            "mode.poll_seconds=0.001", "exchange.rate_limit_ms=1", *extra)


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", "from machine.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if not k.startswith("BINANCE_")} | env)


def test_a_live_stretch_of_the_futures_agent_agrees_with_the_exchanges_own_records(keyed, tmp_path, monkeypatch):
    server, venue = keyed
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    run_dir = tmp_path / "live"
    run_replay(compose_run(*overrides(server)), run_dir, stop_after_bars=70)
    account, run_id = venue.futures, _run_id(run_dir)

    ours = sorted((round(q, 9), round(p, 9), round(f, 9), s.upper())
                  for q, p, f, s in rows(run_dir, "SELECT qty, price, fee, side FROM fills"))
    theirs = sorted((round(t["qty"], 9), round(t["price"], 9), round(t["commission"], 9), t["side"])
                    for t in account.trades)
    assert ours == theirs and len(ours) >= 8
    sent = {o.client_id: o for o in account.orders.values()}
    refused = {r for (r,) in rows(run_dir, "SELECT json_extract_string(after, '$.order_id') FROM adjustments "
                                           "WHERE kind = 'order_rejected'")}
    for (order_id,) in rows(run_dir, "SELECT order_id FROM orders"):
        assert (client_order_id(run_id, order_id) in sent) != (order_id in refused), order_id
    charged = sorted((r["time"], round(r["income"], 9)) for r in account.income if r["incomeType"] == "FUNDING_FEE")
    assert sorted((t, round(a, 9)) for t, a in rows(run_dir, "SELECT ts, amount FROM funding")) == charged
    (cash, positions) = rows(run_dir, "SELECT cash, open_positions FROM equity ORDER BY ts DESC LIMIT 1")[0]
    assert cash == pytest.approx(account.wallet, abs=1e-6) and positions == len(account.positions)
    (mode, venue_text) = rows(run_dir, "SELECT mode, exchange FROM runs")[0]
    assert mode == "live" and venue_text.endswith("live orders") and "127.0.0.1" in venue_text


def test_live_refuses_to_start_without_the_confirmation_saying_what_live_means(keyed):
    server, _ = keyed
    proc = cli(*[o for o in overrides(server) if o != "mode.confirm=true"], env={})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "sends real orders to Binance" in err and "mode.confirm=true" in err and "testnet" in err


def test_live_refuses_to_start_without_keys_naming_the_variables_to_set(keyed, tmp_path):
    server, _ = keyed
    proc = cli(*overrides(server, f"hydra.run.dir={tmp_path / 'run'}"), env={"BINANCE_API_SECRET": SECRET})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "set BINANCE_API_KEY in the environment" in err and not (tmp_path / "run" / "ledger.duckdb").exists()


def test_wrong_keys_stop_live_at_start_with_a_clear_message_that_never_shows_them(keyed, tmp_path):
    server, _ = keyed
    wrong_key, wrong_secret = "RKwrongKEY31415recognisable", "RSwrongSECRET27182recognisable"
    proc = cli(*overrides(server, f"hydra.run.dir={tmp_path / 'run'}"),
               env={"BINANCE_API_KEY": wrong_key, "BINANCE_API_SECRET": wrong_secret})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err
    assert "authentication failed" in err and "Binance code -2015" in err and "BINANCE_API_KEY" in err
    assert len(err.strip().splitlines()) == 1
    for text in (wrong_key, wrong_secret):
        assert text not in out + err
    assert not (tmp_path / "run" / "ledger.duckdb").exists()


def test_an_api_key_and_secret_never_appear_in_any_output_file_ledger_or_saved_config(keyed, tmp_path):
    server, _ = keyed
    run_dir = tmp_path / "run"
    proc = cli(*overrides(server, f"hydra.run.dir={run_dir}"), env={"BINANCE_API_KEY": KEY,
                                                                   "BINANCE_API_SECRET": SECRET})
    deadline = time.monotonic() + 120
    while committed_bars(run_dir) < 6:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped on request" in out
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {"ledger.duckdb", "ledger.snapshot.duckdb", "config.yaml", "overrides.yaml"} <= {p.name for p in files}
    for secret in (KEY, SECRET):
        assert secret not in out and secret not in err
        for path in files:
            assert secret.encode() not in path.read_bytes(), path
    (config,) = rows(run_dir, "SELECT json_extract_string(config, '$.exchange.api_key') FROM runs")[0]
    assert config == "**********"
    assert "${oc.env:BINANCE_API_KEY,null}" in (run_dir / ".hydra" / "config.yaml").read_text()


def test_a_live_run_folder_without_an_exchange_journal_is_not_resumed_blind(keyed, tmp_path, monkeypatch):
    server, _ = keyed
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    cfg = compose_run(*overrides(server))
    run_dir = tmp_path / "live"
    run_dir.mkdir()
    with Ledger.open(run_dir / "ledger.duckdb", "r1") as ledger:  # bars committed, answers never journalled
        ledger.append("equity", {"ts": T0 + HOUR // 2, "agent": "futures", "equity": 10_000.0})
    mode = LiveMode(LiveConfig(confirm=True))
    market = mode.feed(cfg, run_dir, 3).history()
    with pytest.raises(ConfigError, match="no exchange journal .* cannot be resumed exactly"):
        mode.exchange(cfg, market)
    mode.close()


@pytest.mark.parametrize(("market", "host"), [("perp_1h", "https://demo-fapi.binance.com/fapi/v3/account"),
                                              ("spot_1h", "https://testnet.binance.vision/api/v3/account")])
def test_testnet_keys_go_to_binances_testnet_or_for_usdt_m_its_demo_trading(market, host, monkeypatch):
    monkeypatch.setenv("BINANCE_API_KEY", KEY)
    monkeypatch.setenv("BINANCE_API_SECRET", SECRET)
    agent = "futures" if market == "perp_1h" else "hybrid"
    cfg = compose_run(f"agent={agent}", f"market={market}", "mode=live", "mode.confirm=true", "exchange.testnet=true")
    mode = LiveMode(LiveConfig(confirm=True))
    exchange = mode.client(cfg).exchange
    api = "fapiPrivateV3" if market == "perp_1h" else "private"
    signed = exchange.sign("account", [api], "GET", {})  # built offline: nothing is sent
    assert signed["url"].startswith(host) and signed["headers"]["X-MBX-APIKEY"] == KEY
    mode.close()
