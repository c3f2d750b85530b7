"""A loopback Binance REST exchange for tests: real HTTP, Binance's formats, bundled real candles.

    FakeClock    the exchange clock (set, advance, or run at a multiple of wall time)
    FakeBinance  the server: route table, faults, request log (server.py, market_routes.py)
    Faults       5xx, timeouts, 429/418 with Retry-After, held requests, gaps, late candles
"""

from tests.support.binance.clock import FakeClock
from tests.support.binance.faults import Faults
from tests.support.binance.server import FakeBinance, LoggedRequest, Reply, Request, binance_error

__all__ = ["FakeBinance", "FakeClock", "Faults", "LoggedRequest", "Reply", "Request", "binance_error"]
