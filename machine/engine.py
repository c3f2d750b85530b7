"""The replay engine: one process, one agent, bars in time order on a simulated clock.

Feed (bundled bars), Exchange (sim) and Clock (bar close times) are the parts that change
between replay, paper and live; the agent, its components and the ledger stay the same.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.exchange.sim import SimExchange
from components.market.loader import load_market
from core.component import build_component
from core.errors import ConfigError
from core.facts import AgentFacts
from core.market import MarketData
from ledger.writer import Ledger
from machine import operator
from machine.agent import Agent
from machine.config import RunConfig
from machine.recorder import Recorder


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    ledger_path: Path
    run_id: str
    bars: int
    seconds: float
    resumed_from_bar: int | None
    facts: AgentFacts | None = None  # the in-memory facts the guards read, as the run ended


def load_run_market(cfg: RunConfig) -> MarketData:
    m = cfg.market
    start, end = m.window_ms()
    return load_market(m.kind, list(m.symbols), m.timeframe, on_gap=m.on_gap, start_ms=start,
                       end_ms=end, data_dir=Path(m.data_dir) if m.data_dir else None)


def data_fingerprint(market: MarketData) -> str:
    h = hashlib.sha256()
    for symbol, data in sorted(market.symbols.items()):
        h.update(symbol.encode())
        for arr in (data.bars.ts, data.bars.open, data.bars.high, data.bars.low, data.bars.close):
            h.update(arr.tobytes())
    return h.hexdigest()[:16]


def build_agent(cfg: RunConfig, market: MarketData, exchange: SimExchange, recorder: Recorder,
                artifacts_dir: Path) -> Agent:
    where = "agent.components"
    components = {
        name: build_component(name, decl, f"{where}.{name}") for name, decl in cfg.agent.components.items()
    }
    return Agent(cfg.agent, components, market, exchange, recorder, artifacts_dir=artifacts_dir,
                 seed=cfg.seed)


def run_replay(cfg: RunConfig, run_dir: Path, *, config_dump: dict[str, Any] | None = None,
               market: MarketData | None = None, stop_after_bars: int | None = None) -> RunResult:
    """Replay the market through the agent, writing the ledger in ``run_dir``.

    A run folder whose ledger already holds bars of this run resumes after the last committed
    bar: the replay is deterministic, so the bars before it are recomputed in memory, unwritten.
    A run whose last bar is committed is complete and is not replayed again.
    ``stop_after_bars`` ends the loop early without finishing (used to simulate a crash).
    """
    started = time.perf_counter()
    run_dir.mkdir(parents=True, exist_ok=True)
    market = market if market is not None else load_run_market(cfg)
    ledger_path = run_dir / "ledger.duckdb"
    run_id = _run_id(run_dir)
    ledger = Ledger.open(ledger_path, run_id)
    try:
        config = _config_json(cfg, config_dump)
        last_ts = ledger.last_ts(cfg.agent.name) if cfg.resume else None
        if last_ts is not None:
            _check_same_config(ledger, cfg.agent.name, config, run_dir)
        recorder = Recorder(ledger, cfg.agent.name)
        exchange = SimExchange(cfg.exchange, market, cfg.starting_cash)
        agent = build_agent(cfg, market, exchange, recorder, run_dir)
        if last_ts is None:
            _record_start(recorder, cfg, market, config)
        ready = agent.prepare()
        ts = market.ts.tolist()
        tf = market.timeframe_ms
        resume_at = None
        if last_ts is not None:
            resume_at = next((i for i, t in enumerate(ts) if t + tf > last_ts), len(ts))
            recorder.muted = True
        if resume_at == len(ts):
            return RunResult(run_dir, ledger_path, run_id, 0, time.perf_counter() - started, resume_at,
                             agent.facts)
        n = len(ts) if stop_after_bars is None else min(len(ts), stop_after_bars)
        every = cfg.commit_every_bars
        taken = _recorded_commands(ledger, cfg.agent.name) if resume_at is not None else {}
        for i in range(n):
            if i == resume_at:
                recorder.muted = False
            now = ts[i] + tf
            for command in taken.get(now, []) if recorder.muted else operator.take(run_dir):
                agent.apply_command(now, command)
            last = i == len(ts) - 1
            agent.on_bar(i, exchange.process_bar(i), ready, last=last)
            if not last:  # the last bar's commit below marks the run complete
                recorder.commit_if(i % every == every - 1)
        recorder.commit_if(True)
    finally:
        ledger.close()
    return RunResult(run_dir, ledger_path, run_id, n, time.perf_counter() - started, resume_at,
                     agent.facts)


def _recorded_commands(ledger: Ledger, agent: str) -> dict[int, list[dict[str, str]]]:
    """Operator commands already in the ledger, by the bar close they were taken at."""
    rows = ledger.query("SELECT ts, after FROM adjustments WHERE kind = 'operator_command' AND agent = ? "
                        "ORDER BY ts, wall_ts", [agent])
    out: dict[int, list[dict[str, str]]] = {}
    for ts, after in rows:
        out.setdefault(ts, []).append(json.loads(after))
    return out


def _run_id(run_dir: Path) -> str:
    """Stable per run folder, so a resumed run appends under the same id."""
    return hashlib.sha1(str(run_dir.resolve()).encode()).hexdigest()[:12]


def _config_json(cfg: RunConfig, config_dump: dict[str, Any] | None) -> dict[str, Any]:
    """The config as the ledger stores it (JSON round trip, so comparisons are like for like)."""
    return json.loads(json.dumps(config_dump if config_dump is not None else cfg.model_dump(mode="json"),
                                 sort_keys=True, default=str))


def _first_difference(a: Any, b: Any, path: str = "") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}" if path else key)
    return f"{path or '<root>'}: {a!r} in the ledger, {b!r} now"


def _check_same_config(ledger: Ledger, agent: str, config: dict[str, Any], run_dir: Path) -> None:
    """Resuming under another config would splice two different runs into one ledger."""
    rows = ledger.query("SELECT config FROM runs WHERE agent = ?", [agent])
    stored = json.loads(rows[0][0]) if rows else None
    if stored is not None and stored != config:
        raise ConfigError(
            f"{run_dir} holds a run of another configuration ({_first_difference(stored, config)}); "
            "resume it with the same overrides, or choose a new hydra.run.dir")


def _record_start(recorder: Recorder, cfg: RunConfig, market: MarketData, config: dict[str, Any]) -> None:
    recorder.row("runs", {
        "agent": cfg.agent.name, "market": cfg.market.name, "exchange": "sim", "seed": cfg.seed,
        "config": config, "data_fingerprint": data_fingerprint(market)})
    for issue in market.issues:
        recorder.row("data_issues", {"ts": issue.ts, "symbol": issue.symbol, "kind": issue.kind,
                                     "detail": issue.detail})
