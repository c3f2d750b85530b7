"""Delivery that never blocks trading: ``submit`` returns at once, a worker thread per channel sends.

Each channel has its own queue, token bucket and thread, so a failing Discord never delays
Telegram. A worker retries 5xx replies, timeouts and network errors with doubling waits, honours a
429's ``retry_after``, and gives up after ``retry.attempts``. Every (message, channel) pair ends as
exactly one ``Outcome`` (a ``notifications`` row), handed to ``on_outcome`` on whichever thread
settled it and kept for ``drain()``, which the engine calls on its own thread to write the rows.

Without a channel (``notify=none``) every message is one row on the ``ledger`` channel, delivered.
In a replay without ``notify.in_replay`` nothing is sent and each channel's row says why.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from components.notify.channels import Channel, build_channels
from components.notify.collapse import Collapser
from components.notify.config import Mode, NotifyConfig, RetryConfig
from components.notify.messages import Alert, Heartbeat, Message, MessageKind, split_text
from components.notify.redaction import Redactor, redact_logs
from components.notify.throttle import TokenBucket

log = logging.getLogger("ratchet.notify")

LEDGER_CHANNEL = "ledger"  # the row's channel when no chat channel is configured
NOT_SENT_IN_REPLAY = "not sent: replay (set notify.in_replay=true to send)"
COLLAPSED = "not sent: a repeat within notify.collapse_minutes, counted in the next summary"
CLOSED = "not sent: the notifier was closed"
_ABORTED = "not delivered before close"


@dataclass(frozen=True)
class Outcome:
    """What became of one message on one channel; ``row()`` is its ``notifications`` row."""

    ts: int  # the agent's clock when the message was raised
    agent: str
    channel: str
    kind: str
    message: str
    delivered: bool
    error: str | None

    def row(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Ticket:
    id: int
    message: Message
    channel: str


class Dispatcher:
    """Queues messages for every channel and reports each one's outcome. Thread-safe."""

    def __init__(self, channels: Sequence[Channel], *, send: bool = True, retry: RetryConfig | None = None,
                 timeout_s: float = 10.0, queue_limit: int = 1000, collapse_ms: int = 3_600_000,
                 on_outcome: Callable[[Outcome], None] | None = None):
        self._channel_names = tuple(c.name for c in channels)
        if len(set(self._channel_names)) != len(self._channel_names):
            raise ValueError(f"each channel may be given once, got {list(self._channel_names)}")
        self._send = send
        self._on_outcome = on_outcome
        self._redact = Redactor(s for c in channels for s in c.secrets)
        self._lock = threading.Lock()
        self._outcomes: deque[Outcome] = deque()
        self._pending: dict[int, _Ticket] = {}
        self._ids = itertools.count()
        self._closed = False
        self._abort = threading.Event()
        live = send and bool(channels)
        self._collapser = Collapser(collapse_ms) if live and collapse_ms > 0 else None
        self._workers: dict[str, _ChannelWorker] = {}
        if live:
            redact_logs(s for c in channels for s in c.secrets)
            for channel in channels:
                self._workers[channel.name] = _ChannelWorker(
                    channel, retry or RetryConfig(), timeout_s, queue_limit, self._abort, self._settle)

    @classmethod
    def from_config(cls, config: NotifyConfig, mode: Mode,
                    on_outcome: Callable[[Outcome], None] | None = None) -> Dispatcher:
        """The dispatcher ``notify`` declares for a run in ``mode`` (replay, paper or live)."""
        return cls(build_channels(config), send=config.sends_in(mode), retry=config.retry,
                   timeout_s=config.timeout_s, queue_limit=config.queue_limit, collapse_ms=config.collapse_ms,
                   on_outcome=on_outcome)

    # --- the trading thread's side ------------------------------------------------------------
    def submit(self, item: Heartbeat | Alert | Message) -> None:
        """Queue a heartbeat or an alert for every channel; returns at once, never raises for delivery."""
        message = item if isinstance(item, Message) else item.message()
        with self._lock:
            settled = self._admit(message)
        self._publish(settled)

    def tick(self, now: int) -> None:
        """Send the summaries of collapse windows that ended by ``now`` (the agent's clock); O(1) otherwise."""
        if self._collapser is None:
            return
        with self._lock:
            if self._closed:
                return
            settled = self._enqueue_all(self._collapser.due(now))
        self._publish(settled)

    def drain(self) -> list[Outcome]:
        """The outcomes settled since the last drain, oldest first."""
        out = []
        while self._outcomes:
            out.append(self._outcomes.popleft())
        return out

    def close(self, timeout: float = 10.0) -> list[Outcome]:
        """Send what can go within ``timeout`` seconds, report the rest as not delivered; drain.

        Pending collapse summaries go out first. A request still in flight at the deadline is
        reported now; its thread ends within ``timeout_s`` and its late reply changes nothing.
        """
        deadline = time.monotonic() + timeout
        with self._lock:
            already = self._closed
            self._closed = True
            settled = [] if already or self._collapser is None else self._enqueue_all(self._collapser.flush())
        self._publish(settled)
        for worker in self._workers.values():
            worker.finish()
        for worker in self._workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        self._abort.set()
        for worker in self._workers.values():
            worker.wake()
        with self._lock:
            left = sorted(self._pending.values(), key=lambda t: t.id)
            self._pending.clear()
        self._publish([self._outcome(t.message, t.channel, False, f"{_ABORTED} ({timeout:g} s)") for t in left])
        return self.drain()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("sending" if self._workers else "recording")
        return f"Dispatcher(channels={list(self._channel_names) or [LEDGER_CHANNEL]}, {state})"

    # --- internals (callers hold the lock) ------------------------------------------------------
    def _admit(self, message: Message) -> list[Outcome]:
        if not self._channel_names:
            return [self._outcome(message, LEDGER_CHANNEL, True, None)]
        if self._closed:
            return self._everywhere(message, False, CLOSED)
        if not self._send:
            return self._everywhere(message, False, NOT_SENT_IN_REPLAY)
        settled = []
        if self._collapser is not None:
            settled += self._enqueue_all(self._collapser.due(message.ts))
            if message.kind is not MessageKind.HEARTBEAT and not self._collapser.admit(message):
                return settled + self._everywhere(message, False, COLLAPSED)
        return settled + self._enqueue_all([message])

    def _enqueue_all(self, messages: list[Message]) -> list[Outcome]:
        refused = []
        for message in messages:
            for name, worker in self._workers.items():
                ticket = _Ticket(next(self._ids), message, name)
                self._pending[ticket.id] = ticket
                if not worker.offer(ticket):
                    del self._pending[ticket.id]
                    refused.append(self._outcome(message, name, False,
                                                 f"not sent: {name} queue full ({worker.queue_limit} waiting)"))
        return refused

    def _everywhere(self, message: Message, delivered: bool, error: str | None) -> list[Outcome]:
        return [self._outcome(message, name, delivered, error) for name in self._channel_names]

    def _outcome(self, message: Message, channel: str, delivered: bool, error: str | None) -> Outcome:
        return Outcome(message.ts, message.agent, channel, message.kind.value, self._redact(message.text),
                       delivered, None if error is None else self._redact(error))

    # --- settling (any thread, lock not held) ---------------------------------------------------
    def _settle(self, ticket: _Ticket, delivered: bool, error: str | None) -> None:
        """A worker's verdict; ignored when close() already reported the ticket."""
        with self._lock:
            if self._pending.pop(ticket.id, None) is None:
                return
        self._publish([self._outcome(ticket.message, ticket.channel, delivered, error)])

    def _publish(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self._outcomes.append(outcome)
            if not outcome.delivered and outcome.error not in (NOT_SENT_IN_REPLAY, COLLAPSED):
                log.warning("%s %s not delivered to %s: %s", outcome.agent, outcome.kind, outcome.channel,
                            outcome.error)
            if self._on_outcome is not None:
                try:
                    self._on_outcome(outcome)
                except Exception:  # noqa: BLE001 - a faulty callback must not stop delivery
                    log.exception("notify: the on_outcome callback failed")


class _ChannelWorker:
    """One channel's queue and thread: rate-limited, retried, abandoned when the dispatcher aborts."""

    def __init__(self, channel: Channel, retry: RetryConfig, timeout_s: float, queue_limit: int,
                 abort: threading.Event, settle: Callable[[_Ticket, bool, str | None], None]):
        self.channel = channel
        self.queue_limit = queue_limit
        self._retry = retry
        self._timeout_s = timeout_s
        self._abort = abort
        self._settle = settle
        self._bucket = TokenBucket(channel.per_minute, channel.burst)
        self._queue: deque[_Ticket] = deque()
        self._ready = threading.Condition()
        self._finishing = False
        self._thread = threading.Thread(target=self._run, name=f"notify-{channel.name}", daemon=True)
        self._thread.start()

    def offer(self, ticket: _Ticket) -> bool:
        with self._ready:
            if len(self._queue) >= self.queue_limit:
                return False
            self._queue.append(ticket)
            self._ready.notify()
        return True

    def finish(self) -> None:
        """Send what is queued, then stop."""
        with self._ready:
            self._finishing = True
            self._ready.notify()

    def wake(self) -> None:
        with self._ready:
            self._ready.notify()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _next(self) -> _Ticket | None:
        with self._ready:
            while not self._queue and not self._finishing and not self._abort.is_set():
                self._ready.wait()
            if self._abort.is_set() or not self._queue:
                return None
            return self._queue.popleft()

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout_s, follow_redirects=False) as client:
            while (ticket := self._next()) is not None:
                try:
                    delivered, error = self._deliver(client, ticket.message.text)
                except Exception as exc:  # noqa: BLE001 - a worker outlives any one message
                    delivered, error = False, self.channel.redact(f"{type(exc).__name__}: {exc}")
                self._settle(ticket, delivered, error)

    def _deliver(self, client: httpx.Client, text: str) -> tuple[bool, str | None]:
        parts = split_text(text, self.channel.max_length)
        for n, part in enumerate(parts, 1):
            error = self._post(client, part)
            if error is not None:
                return False, error if len(parts) == 1 else f"part {n}/{len(parts)}: {error}"
        return True, None

    def _post(self, client: httpx.Client, part: str) -> str | None:
        """Post one part within the rate limit and the retry budget; None when it went through."""
        retry = self._retry
        for attempt in range(1, retry.attempts + 1):
            if self._pause(self._bucket.reserve()):
                return _ABORTED
            reply = self.channel.post(client, part)
            if reply.sent:
                return None
            if not reply.retryable:
                return reply.error
            if attempt == retry.attempts:
                return f"{reply.error} (gave up after {attempt} attempts)"
            wait = retry.backoff(attempt) if reply.retry_after is None else reply.retry_after
            if reply.retry_after is not None and wait > retry.retry_after_max_s:
                return f"{reply.error} (asked to wait {wait:g} s, over retry.retry_after_max_s)"
            if self._pause(wait):
                return _ABORTED
        raise AssertionError("unreachable: the loop returns on its last attempt")

    def _pause(self, seconds: float) -> bool:
        """Wait, unless the dispatcher aborts first (then True)."""
        return self._abort.wait(seconds) if seconds > 0 else self._abort.is_set()
