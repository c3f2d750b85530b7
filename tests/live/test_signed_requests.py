"""The loopback Binance checks signed requests as Binance does; client order ids fit Binance's rules."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode

import httpx
import pytest

from components.exchange.client_ids import ALLOWED, client_order_id, is_ours, parse_protection, protection_id
from tests.live.driver import API_KEY, API_SECRET


def sign(params: dict, secret: str = API_SECRET) -> str:
    query = urlencode(params)
    return f"{query}&signature={hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()}"


def now_ms() -> int:
    return int(time.time() * 1000)


def answer(response: httpx.Response) -> tuple[int, int | None]:
    body = response.json()
    return response.status_code, body.get("code") if isinstance(body, dict) else None


@pytest.mark.parametrize(("headers", "query", "expected"), [
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms()}), (200, None)),
    ({}, lambda: sign({"timestamp": now_ms()}), (401, -2014)),
    ({"X-MBX-APIKEY": "an-unknown-key"}, lambda: sign({"timestamp": now_ms()}), (401, -2015)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms()}, "a-wrong-secret"), (400, -1022)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms()}).replace("timestamp=", "timestamp=1"),
     (400, -1022)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: urlencode({"timestamp": now_ms()}), (400, -1102)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms() - 6_000}), (400, -1021)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms() - 6_000, "recvWindow": 10_000}), (200, None)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms() + 5_000}), (400, -1021)),
    ({"X-MBX-APIKEY": API_KEY}, lambda: sign({"timestamp": now_ms(), "recvWindow": 70_000}), (400, -1131)),
], ids=["signed", "no key", "unknown key", "wrong secret", "altered after signing", "unsigned", "stale",
        "stale within a wider window", "from the future", "window too wide"])
def test_a_signed_request_is_checked_as_binance_checks_it(loopback, headers, query, expected):
    response = httpx.get(f"{loopback.base_url}/fapi/v3/account?{query()}", headers=headers)
    assert answer(response) == expected


def test_a_signature_covers_the_query_string_and_the_body_together(loopback):
    query = "symbol=BTCUSDT"
    body = urlencode({"leverage": 3, "timestamp": now_ms()})
    signature = hmac.new(API_SECRET.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    url = f"{loopback.base_url}/fapi/v1/leverage?{query}"
    headers = {"X-MBX-APIKEY": API_KEY, "Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=f"{body}&signature={signature}", headers=headers).status_code == 200
    assert loopback.venue.futures.leverage["BTCUSDT"] == 3
    altered = body.replace("leverage=3", "leverage=4")
    assert answer(httpx.post(url, content=f"{altered}&signature={signature}", headers=headers)) == (400, -1022)


def test_a_client_order_id_is_derived_from_the_run_and_the_order_fits_binance_and_reads_back():
    run = "3f2a9c1b0d4e"
    order = client_order_id(run, "futures-000012")
    assert order == "rt3f2a9c1b0d4e-futures-000012" and order == client_order_id(run, "futures-000012")
    assert client_order_id("0000000000aa", "futures-000012") != order  # another run never clashes
    stops = [protection_id(run, "futures-000012", "stop_loss", v) for v in (1, 2, 999)]
    assert len(set(stops)) == 3 and all(ALLOWED.match(s) for s in [order, *stops])
    assert parse_protection(run, stops[2]) == ("futures-000012", "stop_loss", 999)
    assert parse_protection(run, order) is None and parse_protection("0000000000aa", stops[0]) is None
    long_name = client_order_id(run, "an-agent-with-a-very-long-name-000012")
    assert len(long_name) == 36 and ALLOWED.match(long_name) and is_ours(run, long_name)
    assert long_name == client_order_id(run, "an-agent-with-a-very-long-name-000012")
    assert client_order_id(run, "bad id with spaces!") != client_order_id(run, "bad id with spaces?")
