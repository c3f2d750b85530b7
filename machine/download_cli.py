"""``ratchet-download``: fetch what a market config declares from Binance into ``market.data_dir``.

It composes the same Hydra config as ``ratchet`` and takes the same overrides; no run folder is
made. With ``market.start`` it also fetches the warm-up bars a run of that config loads before
the start, so ``ratchet <same overrides> market.data_dir=...`` replays as on bundled data.
Errors print one line naming the value and exit 2; Ctrl-C keeps what was stored (exit 130).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from hydra import compose, initialize_config_module
from hydra.errors import HydraException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException
from pydantic import ValidationError

from components.exchange.ccxt_client import RetryNote, connect
from components.market.download import DownloadOptions, DownloadRequest, download
from components.market.progress import Progress
from components.market.timeframes import iso_utc, timeframe_ms
from core.errors import ConfigError, ExchangeUnavailable, RatchetError
from core.validation import format_validation_error
from machine.cli_errors import INTERRUPTED, USER_ERROR, cli_entry, describe, resolve_config
from machine.config import ExchangeConfig, MarketConfig, load_run_config

PROG = "ratchet-download"
USAGE = """usage: ratchet-download [OVERRIDE ...]

Downloads Binance candles (and, for perpetuals, mark-price candles and funding rates) for the
market config into market.data_dir, in the layout `ratchet market.data_dir=...` replays.
A second call fetches only what is missing after the last stored bar.

  ratchet-download market=perp_1h market.start=2024-01-01 market.end=2024-03-01 market.data_dir=~/ratchet-data
  ratchet-download market=spot_1h 'market.symbols=[SOL/USDT]' market.timeframe=15m \\
      market.start=2024-01-01 market.data_dir=~/ratchet-data      # no market.end: up to the last closed bar

  exchange.base_url=URL     another host for every Binance API URL (a mirror, a proxy)
  exchange.testnet=true     Binance's testnet
  ++exchange.retries=N      tries after a network error, timeout, 5xx, 429 or 418 (default 5)
  ++download.checkpoint_s=S store progress at least every S seconds (default 10)

With market.start set, the warm-up history the run needs before it is fetched too: what the
composed agent's components need (pass the run's agent=...), or market.warmup_bars=N."""


def run(overrides: list[str], *, out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    """The command with these overrides; returns its exit status (0 done, 2 refused or failed)."""
    if any(arg in ("-h", "--help") for arg in overrides):
        print(USAGE, file=out)
        return 0
    try:
        with initialize_config_module("conf", version_base="1.3"):
            cfg = compose("config", overrides=overrides)
        market, exchange, options = _sections(cfg)
        warmup, why = _warmup(cfg, market)
        request = _request(market, options, warmup)
        with connect(market.kind, exchange, on_retry=_retry_note(err)) as client:
            reports = download(request, client, progress=Progress(out))
    except (RatchetError, HydraException, OmegaConfBaseException) as exc:
        print(f"{PROG}: {_one_line(describe(exc))}", file=err)
        return USER_ERROR
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; what was stored is kept, run the same command to resume", file=err)
        return INTERRUPTED
    if warmup:
        print(f"warm-up: {warmup} {market.timeframe} bars before market.start for {why}, from "
              f"{iso_utc(request.start_ms or 0)}", file=out)
    elif why:
        print(f"warm-up: none fetched before market.start ({why}); name the run's agent= or set "
              "market.warmup_bars=N to fetch it", file=out)
    for report in reports:
        print(report.describe(), file=out)
        for issue in report.issues:
            print(f"  {issue.kind}: {issue.detail}", file=out)
    return 0


@cli_entry(PROG)
def main() -> None:
    sys.exit(run(sys.argv[1:]))


def _sections(cfg: DictConfig) -> tuple[MarketConfig, ExchangeConfig, DownloadOptions]:
    """The market, exchange and download sections, validated; the rest of the config is not needed."""
    download_section = resolve_config(cfg.download) if "download" in cfg else {}
    try:
        return (MarketConfig.model_validate(resolve_config(cfg.market)),
                ExchangeConfig.model_validate(resolve_config(cfg.exchange)),
                DownloadOptions.model_validate(download_section))
    except ValidationError as exc:
        title = str(exc.title).lower()
        prefix = "market" if "market" in title else "exchange" if "exchange" in title else "download"
        raise ConfigError(format_validation_error(exc, prefix)) from None


def _warmup(cfg: DictConfig, market: MarketConfig) -> tuple[int, str]:
    """Bars before market.start a run of this config loads (so the download replays as the bundle
    would): ``market.warmup_bars``, else what the composed agent's components need; and why."""
    if market.start is None:
        return 0, ""
    if market.warmup_bars is not None:
        return market.warmup_bars, "market.warmup_bars"
    from machine.engine import build_components, warmup_bars

    data = resolve_config(cfg)
    data.pop("download", None)
    try:
        run_cfg = load_run_config(data)
    except ConfigError as exc:
        return 0, _one_line(str(exc)).lstrip(": ")
    components = build_components(run_cfg)
    return warmup_bars(run_cfg, components, timeframe_ms(market.timeframe)), f"agent {run_cfg.agent.name}"


def _request(market: MarketConfig, options: DownloadOptions, warmup: int) -> DownloadRequest:
    if market.data_dir is None:
        raise ConfigError("market.data_dir is required: the folder to download into, e.g. "
                          "market.data_dir=~/ratchet-data")
    start, end = market.window_ms()
    if start is not None:
        start -= warmup * timeframe_ms(market.timeframe)
    return DownloadRequest(market.kind, market.symbols, market.timeframe, start, end, market.on_gap,
                           Path(market.data_dir).expanduser(), options.checkpoint_s)


def _retry_note(err: TextIO) -> RetryNote:
    """Say why a download pauses, on a terminal only (piped output stays one line per outcome)."""

    def note(failure: ExchangeUnavailable, retry: int, wait_s: float) -> None:
        if err.isatty():
            print(f"{PROG}: {failure}; retry {retry} in {wait_s:.3g} s", file=err, flush=True)

    return note


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())
