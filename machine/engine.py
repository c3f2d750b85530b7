"""The engine: one process, one agent, bars in time order from a Feed, orders to an Exchange.

The mode (``conf/mode``) builds the Feed, Exchange and Clock; the engine knows only their
protocols. Replay's feed knows every bar at start and its clock never waits; paper and live
feeds grow as the exchange's clock passes each bar close, and the loop waits for them.

A run folder whose ledger holds bars of this run resumes after the last committed bar: the run
is deterministic, so the bars before it are recomputed in memory, unwritten.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow

from components.market.timeframes import timeframe_ms
from core.component import Component, build_component
from core.facts import AgentFacts
from core.market import MarketData
from core.protocols import Exchange, Feed
from ledger.writer import Ledger
from machine import operator, optimise
from machine.agent import Agent
from machine.config import RunConfig
from machine.modes import Mode, build_mode
from machine.notices import Notices
from machine.recorder import Recorder
from machine.run_folder import LEDGER_FILE, claim


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    ledger_path: Path
    run_id: str
    bars: int
    seconds: float
    resumed_from_bar: int | None
    facts: AgentFacts | None = None  # the in-memory facts the guards read, as the run ended
    stopped: bool = False  # a stop was requested (signal) before the feed ended


class _GivenMarket:
    """A feed over a prepared market (tests perturb bars, benchmarks reuse one load)."""

    live = False

    def __init__(self, market: MarketData) -> None:
        self._market = market

    def history(self) -> MarketData:
        return self._market

    def poll(self, market: MarketData, now: int) -> MarketData:
        return market


def data_fingerprint(market: MarketData, bars: int | None = None) -> str:
    """A hash of the bars a run decides on (the first ``bars`` of them, or all)."""
    h = hashlib.sha256()
    for symbol, data in sorted(market.symbols.items()):
        h.update(symbol.encode())
        b = data.bars
        for arr in (b.ts, b.open, b.high, b.low, b.close):
            h.update(arr[:bars].tobytes())
    return h.hexdigest()[:16]


def build_components(cfg: RunConfig) -> dict[str, Component]:
    where = "agent.components"
    return {name: build_component(name, decl, f"{where}.{name}") for name, decl in cfg.agent.components.items()}


def warmup_bars(cfg: RunConfig, components: dict[str, Component], timeframe_ms: int) -> int:
    """History needed before the first decision: declared, or the most any used component needs."""
    if cfg.market.warmup_bars is not None:
        return cfg.market.warmup_bars
    used = {c for spec in cfg.agent.machine.states.values() for c in spec.components}
    return max((components[c].warmup_bars(timeframe_ms) for c in used), default=0)


def load_run_market(cfg: RunConfig, run_dir: Path | None = None) -> MarketData:
    """The bars a run of ``cfg`` starts with (warm-up history included), as its mode's feed has them."""
    return _feed(build_mode(cfg.mode), cfg, run_dir or Path("."), build_components(cfg)).history()


def build_agent(cfg: RunConfig, market: MarketData, exchange: Exchange, recorder: Recorder,
                artifacts_dir: Path) -> Agent:
    return Agent(cfg.agent, build_components(cfg), market, exchange, recorder, artifacts_dir=artifacts_dir,
                 seed=cfg.seed)


def run_replay(cfg: RunConfig, run_dir: Path, *, config_dump: dict[str, Any] | None = None,
               market: MarketData | None = None, stop_after_bars: int | None = None,
               stopping: Callable[[], bool] = lambda: False,
               on_claimed: Callable[[], None] | None = None,
               progress: Callable[[int, int], None] | None = None) -> RunResult:
    """Run the agent over its mode's feed, writing the ledger in ``run_dir``.

    ``market`` replaces the mode's feed with fixed bars. ``stop_after_bars`` ends the loop after
    that many trading bars without finishing (a crash, for tests); ``stopping`` is polled after
    each bar (a signal asked to stop: finish the bar, commit, return). ``on_claimed`` runs once
    the folder is claimed, before the first bar (the CLI saves the Hydra config then).
    ``progress(done, total)`` hears of the replay's bars as they pass (a terminal progress bar).
    """
    started = time.perf_counter()
    # Arrow buffers (the market's parquet, every ledger commit) from the system allocator: pyarrow's
    # default pool keeps freed ones, ~45 MiB of a hybrid replay's peak RSS (benchmarks/README.md)
    pyarrow.set_memory_pool(pyarrow.system_memory_pool())
    mode = build_mode(cfg.mode)
    components = build_components(cfg)
    config = _config_json(cfg, config_dump)
    claimed = claim(run_dir, cfg.agent.name, config, resume=cfg.resume)
    feed: Feed = _GivenMarket(market) if market is not None else _feed(mode, cfg, run_dir, components)
    market = feed.history()
    fingerprint = data_fingerprint(market, market.trade_from if feed.live else None)
    claimed.check_data(fingerprint)
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger_path = run_dir / LEDGER_FILE
    run_id = _run_id(run_dir)
    with Ledger.open(ledger_path, run_id) as ledger:  # an exception drops uncommitted rows, as a crash would
        if on_claimed is not None:
            on_claimed()
        recorder = Recorder(ledger, cfg.agent.name)
        recorder.notices = notices = Notices(cfg.notify, mode=mode.name, agent=cfg.agent.name,
                                             market=cfg.market.name, machine=cfg.agent.machine)
        exchange = mode.exchange(cfg, market)
        learning = mode.learning()
        agent = Agent(cfg.agent, components, market, exchange, recorder, artifacts_dir=run_dir, seed=cfg.seed,
                      learning=learning)
        optimise.attach(cfg, run_dir, agent)  # the weekly parameter optimiser, when the agent declares one
        if claimed.fresh:
            _record_start(recorder, cfg, mode, market, config, fingerprint)
        if mode.commit_every_bar and recorder.commit():
            ledger.publish_snapshot()
        loop = _Loop(cfg, mode, feed, agent, exchange, recorder, ledger, run_dir, market, claimed.last_ts)
        try:
            if not loop.complete:
                loop.run(stop_after_bars, stopping, progress)
        finally:
            learning.close()
            mode.close()
            for row in notices.close():
                recorder.row("notifications", row)
        recorder.commit()  # a clean end: everything is durable (an exception drops what is pending)
    return RunResult(run_dir, ledger_path, run_id, loop.bars, time.perf_counter() - started, loop.resume_at,
                     agent.facts, loop.stopped)


def _feed(mode: Mode, cfg: RunConfig, run_dir: Path, components: dict[str, Component]) -> Feed:
    return mode.feed(cfg, run_dir, warmup_bars(cfg, components, timeframe_ms(cfg.market.timeframe)))


class _Loop:
    """The bar loop: fast-forward what the ledger holds, step the rest, wait for more if live."""

    def __init__(self, cfg: RunConfig, mode: Mode, feed: Feed, agent: Agent, exchange: Any,
                 recorder: Recorder, ledger: Ledger, run_dir: Path, market: MarketData,
                 last_ts: int | None) -> None:
        self.cfg, self.mode, self.feed, self.agent, self.exchange = cfg, mode, feed, agent, exchange
        self.recorder, self.ledger, self.run_dir, self.market = recorder, ledger, run_dir, market
        self.clock = mode.clock(cfg)
        self.ready = agent.prepare()
        self.tf = market.timeframe_ms
        self.bars = 0
        self._uncommitted_since = (0, time.monotonic())
        self._looked_at = -1.0  # wall clock of the last look for operator commands
        self.stopped = False
        self.resume_at: int | None = None
        self.taken: dict[int, list[dict[str, str]]] = {}
        if last_ts is not None:
            ts = market.ts.tolist()
            self.resume_at = next((i for i, t in enumerate(ts) if t + self.tf > last_ts), len(ts))
            self.taken = _recorded_commands(ledger, cfg.agent.name)
            recorder.muted = True
        self.complete = not feed.live and self.resume_at == len(market)

    def run(self, stop_after_bars: int | None, stopping: Callable[[], bool],
            progress: Callable[[int, int], None] | None = None) -> None:
        i = self.market.trade_from
        limit = None if stop_after_bars is None else i + stop_after_bars
        while True:
            while i < len(self.market):
                quiet_until = self._quiet_until(i, limit)
                if quiet_until > i:
                    self._pass(i, quiet_until)
                    i = quiet_until
                else:
                    self._step(i)
                    i += 1
                if progress is not None and not self.feed.live:
                    progress(i - self.market.trade_from, len(self.market) - self.market.trade_from)
                if (limit is not None and i >= limit) or stopping():
                    self.stopped = limit is None
                    return
            if not self.feed.live:
                return
            if not self._wait_for_bar(stopping):
                self.stopped = True
                return

    def _quiet_until(self, i: int, limit: int | None) -> int:
        """Replay steps over bars in which nothing can happen (``Agent.quiet_until``); never over the
        last bar, a bar with a recorded operator command, the resume point, or the stop point.
        Paper and live look at every bar: each is worth a look at the control folder."""
        if self.feed.live or not self.cfg.skip_quiet_bars:
            return i
        end = len(self.market) - 1  # the last bar closes what is open
        if limit is not None:
            end = min(end, limit)
        if self.resume_at is not None and i < self.resume_at:
            end = min(end, self.resume_at)
        if self.recorder.muted and self.taken:
            end = min(end, next((self.agent.bar_closing_at(t) for t in sorted(self.taken)
                                 if self.agent.bar_closing_at(t) >= i), end))
        due = self.recorder.notices.next_due()
        if due is None:
            return i
        end = min(end, self.agent.bar_closing_at(due))
        return min(self.agent.quiet_until(i, self.ready), end) if end > i else i

    def _pass(self, i: int, j: int) -> None:
        if self.resume_at is not None and i >= self.resume_at:
            self.recorder.muted = False
        self.agent.pass_quiet(i, j)
        self.bars += j - i
        if self._commit_due():
            self._commit_batch()

    def _step(self, i: int) -> None:
        recorder, agent = self.recorder, self.agent
        if i == self.resume_at:
            recorder.muted = False
        now = int(self.market.ts[i]) + self.tf
        commands = self.taken.get(now, []) if recorder.muted else self._commands()
        for command in commands:
            agent.apply_command(now, command)
        last = not self.feed.live and i == len(self.market) - 1
        agent.on_bar(i, self.exchange.process_bar(i), self.ready, last=last)
        for row in recorder.notices.after_bar(now, muted=recorder.muted, status=lambda: agent.status(i)):
            recorder.row("notifications", row)
        self.bars += 1
        if self.mode.commit_every_bar:  # paper, live: every bar durable, and readable by others, before the next
            self._commit_and_publish()
        elif commands or (not last and self._commit_due()):  # replay batches; the last bar's commit ends the run
            self._commit_batch()
        answered = self.exchange.dispatch()  # the bar's orders are in the ledger before the exchange hears of them
        if answered:
            agent.record_events(answered)
            if self.mode.commit_every_bar:
                self._commit_and_publish()

    def _commit_and_publish(self) -> None:
        if self.recorder.commit():
            self.ledger.publish_snapshot()

    def _commands(self) -> list[dict[str, str]]:
        """Operator commands sent since the last look. Paper and live look at every bar; a replay, whose
        bars pass in microseconds, every quarter second of wall time (its commands' bars are any bar)."""
        if not self.feed.live:
            now = time.monotonic()
            if now - self._looked_at < 0.25:
                return []
            self._looked_at = now
        return operator.take(self.run_dir)

    def _commit_batch(self) -> None:
        self.recorder.commit()
        self._uncommitted_since = (self.bars, time.monotonic())

    def _commit_due(self) -> bool:
        """Replay commits every ``commit_every_bars`` bars or ``commit_every_seconds``, whichever comes first:
        it is deterministic, so a killed replay resumes exactly from its last commit."""
        bars, since = self._uncommitted_since
        return (self.bars - bars >= self.cfg.commit_every_bars
                or time.monotonic() - since >= self.cfg.commit_every_seconds)

    def _wait_for_bar(self, stopping: Callable[[], bool]) -> bool:
        """Wait until the bar after the last known one has closed, then take it (and any missed)."""
        next_close = int(self.market.ts[-1]) + 2 * self.tf
        while True:
            if not self.clock.wait_until(next_close, stopping):
                return False
            grown = self.feed.poll(self.market, self.clock.now())
            if len(grown) > len(self.market):
                self.market = grown
                self.agent.extend(grown)
                self.exchange.extend(grown)
                return True
            next_close += min(self.tf, 1_000)  # closed but not served yet: ask again shortly


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


def _record_start(recorder: Recorder, cfg: RunConfig, mode: Mode, market: MarketData, config: dict[str, Any],
                  fingerprint: str) -> None:
    agent = cfg.agent.name
    recorder.row("runs", {"agent": agent, "market": cfg.market.name, "mode": mode.name,
                          "exchange": mode.venue(cfg), "seed": cfg.seed, "config": config,
                          "data_fingerprint": fingerprint})
    for state, spec in cfg.agent.machine.states.items():
        for tag in spec.tags:
            recorder.row("state_tags", {"agent": agent, "state": state, "tag": tag})
    for issue in market.issues:
        recorder.row("data_issues", {"ts": issue.ts, "symbol": issue.symbol, "kind": issue.kind,
                                     "detail": issue.detail})


