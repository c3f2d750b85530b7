"""The modes that talk to Binance through ccxt: paper (live bars, simulated fills) and live (real orders).

Picked by ``mode=paper`` or ``mode=live`` (``conf/mode/*.yaml``); a replay never imports this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb
from pydantic import BaseModel, ConfigDict, Field

from components.clocks import ExchangeClock
from components.exchange.account import BinanceAccount
from components.exchange.ccxt_client import ApiKeys, BinanceClient, connect
from components.exchange.connection import api_keys_missing
from components.exchange.live import LiveExchange, LiveSettings
from components.exchange.sim import SimExchange
from components.market.polling_feed import PollingFeed
from core.errors import AuthenticationFailed, ConfigError
from core.market import MarketData
from core.protocols import Clock, Exchange, Feed
from machine.modes import Mode
from machine.run_folder import LEDGER_FILE

if TYPE_CHECKING:
    from machine.config import RunConfig


class PaperConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    poll_seconds: float = Field(default=5.0, gt=0.0)  # longest sleep between looks at the exchange's clock


class PaperMode(Mode):
    """Live Binance bars through ccxt, simulated fills on them, the exchange's server time. No keys."""

    name = "paper"
    Config = PaperConfig
    config: PaperConfig
    commit_every_bar = True

    def __init__(self, config: BaseModel) -> None:
        super().__init__(config)
        self._client: BinanceClient | None = None

    def client(self, cfg: RunConfig) -> BinanceClient:
        if self._client is None:
            self._client = connect(cfg.market.kind, cfg.exchange)
        return self._client

    def feed(self, cfg: RunConfig, run_dir: Path, warmup_bars: int) -> Feed:
        m = cfg.market
        return PollingFeed(self.client(cfg), m.kind, list(m.symbols), m.timeframe, on_gap=m.on_gap,
                           store_dir=run_dir / "market", warmup_bars=warmup_bars)

    def exchange(self, cfg: RunConfig, market: MarketData) -> Exchange:
        return SimExchange(cfg.exchange, market, cfg.starting_cash)

    def clock(self, cfg: RunConfig) -> Clock:
        return ExchangeClock(self.client(cfg).server_time, self.config.poll_seconds)

    def venue(self, cfg: RunConfig) -> str:
        return f"{self.client(cfg).venue}, simulated fills"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


LIVE_MEANS = ("mode=live sends real orders to Binance, with the money in the account behind "
              "BINANCE_API_KEY (exchange.testnet=true: Binance's testnet, play money). The agent trades "
              "unattended until stopped, its stops stay on Binance when it stops. Try it in mode=paper and on "
              "the testnet first; to go on, add mode.confirm=true")


class LiveConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    confirm: bool = False  # the opt-in: live refuses to start without it
    poll_seconds: float = Field(default=5.0, gt=0.0)  # longest sleep between looks at the exchange's clock
    reconcile_every_bars: int = Field(default=12, ge=1)  # open orders against the agent's view (and at start)
    working_type: Literal["CONTRACT_PRICE", "MARK_PRICE"] = "CONTRACT_PRICE"  # what USDT-M stops trigger on
    spot_stop_limit_gap: float = Field(default=0.005, gt=0.0, lt=0.5)  # a spot stop-limit's limit beyond its stop
    balance_tolerance: float = Field(default=0.01, ge=0.0)  # USDT: smaller differences are rounding


class LiveMode(PaperMode):
    """Real orders on Binance (or its testnet) through ccxt with the user's keys; bars and clock as paper.

    Opt-in: refused without ``mode.confirm=true`` and without both keys in the environment. A run folder
    holding a live run resumes it: its journal of the exchange's answers (``exchange_replies``) is read
    before the engine opens the ledger, and answers the fast-forward through the bars the ledger holds.
    """

    name = "live"
    Config = LiveConfig
    config: LiveConfig

    def __init__(self, config: BaseModel) -> None:
        super().__init__(config)
        if not self.config.confirm:
            raise ConfigError(LIVE_MEANS)
        self._account: BinanceAccount | None = None
        self._run_dir: Path | None = None
        self._journal: tuple[list[dict[str, Any]], int | None] = ([], None)

    def client(self, cfg: RunConfig) -> BinanceClient:
        if self._client is None:
            exchange = cfg.exchange
            missing = api_keys_missing(exchange)
            if missing or exchange.api_key is None or exchange.api_secret is None:
                raise ConfigError(f"live trading needs Binance API keys: set {' and '.join(missing)} in the "
                                  "environment (exchange.api_key and exchange.api_secret read them; never put keys "
                                  "in a file or on the command line). Testnet keys go with exchange.testnet=true")
            keys = ApiKeys(exchange.api_key.get_secret_value(), exchange.api_secret.get_secret_value())
            self._client = connect(cfg.market.kind, exchange, keys=keys)
        return self._client

    def account(self, cfg: RunConfig) -> BinanceAccount:
        if self._account is None:
            self._account = BinanceAccount(self.client(cfg))
        return self._account

    def feed(self, cfg: RunConfig, run_dir: Path, warmup_bars: int) -> Feed:
        """The keys are checked before anything is fetched; a resumed run's journal is read before the engine
        opens the ledger."""
        try:
            self.account(cfg).check_keys()
        except AuthenticationFailed as exc:
            raise AuthenticationFailed(f"live: {exc}. Check BINANCE_API_KEY and BINANCE_API_SECRET (testnet keys "
                                       "need exchange.testnet=true, and the key needs trading permission)") from None
        self._run_dir = run_dir
        self._journal = exchange_journal(run_dir / LEDGER_FILE, cfg.agent.name)
        return super().feed(cfg, run_dir, warmup_bars)

    def exchange(self, cfg: RunConfig, market: MarketData) -> Exchange:
        from machine.engine import _run_id  # the ledger's run id: client order ids derive from it

        if self._run_dir is None:
            raise ConfigError("live: the feed is built first (it checks the keys and reads the run's journal)")
        c = self.config
        settings = LiveSettings(c.reconcile_every_bars, c.working_type, c.spot_stop_limit_gap, c.balance_tolerance)
        exchange = LiveExchange(self.account(cfg), market, run_id=_run_id(self._run_dir), settings=settings)
        replies, last_ts = self._journal
        if last_ts is not None:
            if not replies:  # every live bar journals its answer: without them the agent's past is unknown
                raise ConfigError(f"run folder {self._run_dir} holds a live run whose ledger has no exchange journal "
                                  "(table exchange_replies), so it cannot be resumed exactly; start a new run in a "
                                  "new hydra.run.dir (its positions are found on Binance and adopted)")
            exchange.resume(replies, last_ts)
        return exchange

    def venue(self, cfg: RunConfig) -> str:
        testnet = ", testnet" if cfg.exchange.testnet and cfg.exchange.base_url is None else ""
        return f"{self.client(cfg).venue}{testnet}, live orders"


def exchange_journal(ledger_path: Path, agent: str) -> tuple[list[dict[str, Any]], int | None]:
    """A live run's journal (its exchange's answers, oldest first) and the last bar close its ledger holds."""
    if not ledger_path.exists():
        return [], None
    con = duckdb.connect(str(ledger_path), read_only=True)
    try:
        tables = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        if "equity" not in tables:
            return [], None
        last = con.execute("SELECT max(ts) FROM equity WHERE agent = ?", [agent]).fetchone()[0]
        rows = [] if "exchange_replies" not in tables else con.execute(
            "SELECT bar_ts, call, reply FROM exchange_replies WHERE agent = ? ORDER BY wall_ts", [agent]).fetchall()
    finally:
        con.close()
    return [{"bar_ts": bar_ts, "call": call, "reply": json.loads(reply)} for bar_ts, call, reply in rows], last
