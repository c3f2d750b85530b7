"""Turns what an agent and its exchange did into ledger rows (one place for the row shapes).

On resume the recorder is muted for the bars the ledger already holds, so a deterministic
fast-forward rebuilds memory without writing a row twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.records import (
    BarEvents,
    ClosedTrade,
    EntryOrder,
    ExitOrder,
    Fill,
    FundingPayment,
    OrderUpdate,
    Reconciliation,
)
from ledger.writer import Ledger

if TYPE_CHECKING:
    from machine.notices import Notices

# Adjustment kinds that describe the market rather than change what the agent does: no alert, and
# not what a heartbeat reports as the last learning adjustment.
OBSERVATIONS = frozenset({"regime_change"})


def _side(side: int) -> str:
    return "buy" if side > 0 else "sell"


class Recorder:
    def __init__(self, ledger: Ledger, agent: str):
        self.ledger = ledger
        self.agent = agent
        self.muted = False
        self._marks = _EquityMarks()
        self.notices: Notices | None = None  # alerts follow from the rows recorded (machine/notices.py)

    def _append(self, table: str, row: dict[str, Any]) -> None:
        if not self.muted:
            self.ledger.append(table, row)

    def entry_order(self, ts: int, o: EntryOrder) -> None:
        self._append("orders", {
            "ts": ts, "agent": self.agent, "order_id": o.order_id, "symbol": o.symbol,
            "side": _side(o.side), "qty": o.qty, "order_type": "market", "intent": "entry",
            "leverage": o.leverage, "mode": o.mode, "state": o.state, "reason": o.reason})

    def exit_order(self, ts: int, o: ExitOrder, side: int, qty: float, state: str) -> None:
        self._append("orders", {
            "ts": ts, "agent": self.agent, "order_id": o.order_id, "symbol": o.symbol,
            "side": _side(-side), "qty": qty, "order_type": "market", "intent": "exit",
            "leverage": None, "mode": None, "state": state, "reason": str(o.reason)})

    def fill(self, f: Fill) -> None:
        self._append("fills", {
            "ts": f.ts, "agent": self.agent, "order_id": f.order_id, "trade_id": f.trade_id,
            "symbol": f.symbol, "side": _side(f.side), "qty": f.qty, "price": f.price, "fee": f.fee,
            "reason": f.reason})

    def trade(self, t: ClosedTrade) -> None:
        self._append("trades", {
            "trade_id": t.trade_id, "agent": self.agent, "symbol": t.symbol,
            "side": "long" if t.side > 0 else "short", "entry_ts": t.entry_ts, "exit_ts": t.exit_ts,
            "entry_price": t.entry_price, "exit_price": t.exit_price, "qty": t.qty,
            "leverage": t.leverage, "fees": t.fees, "funding": t.funding, "pnl": t.pnl, "mode": t.mode,
            "state": t.state, "exit_reason": str(t.exit_reason), "risk_fraction": t.risk_fraction})

    def funding(self, p: FundingPayment) -> None:
        self._append("funding", {
            "ts": p.ts, "agent": self.agent, "trade_id": p.trade_id, "symbol": p.symbol,
            "rate": p.rate, "mark_price": p.mark_price, "position_qty": p.position_qty,
            "amount": p.amount})

    def equity(self, ts: int, equity: float, cash: float, unrealized: float, open_positions: int,
               state: str) -> None:
        """One bar's equity mark: gathered column by column, written with the next commit."""
        if not self.muted:
            self._marks.add(ts, equity, cash, unrealized, open_positions, state)

    def equity_marks(self, closes: np.ndarray, equity: np.ndarray, cash: float, unrealized: np.ndarray,
                     open_positions: int, state: str) -> None:
        """The equity marks of a stretch of quiet bars."""
        if not self.muted:
            self._marks.extend(closes, equity, cash, unrealized, open_positions, state)

    def transition(self, ts: int, source: str, dest: str, trigger: str, reason: str,
                   evidence: dict[str, Any]) -> None:
        row = {"ts": ts, "agent": self.agent, "source": source, "dest": dest, "trigger": trigger,
               "reason": reason, "evidence": evidence}
        self._append("transitions", row)
        if self.notices is not None:
            self.notices.transition(row, muted=self.muted)

    def adjustment(self, ts: int, kind: str, before: Any, after: Any, reason: str,
                   evidence: dict[str, Any]) -> None:
        row = {"ts": ts, "agent": self.agent, "kind": kind, "before": before, "after": after,
               "reason": reason, "evidence": evidence}
        self._append("adjustments", row)
        if self.notices is not None and kind not in OBSERVATIONS:
            self.notices.adjustment(row, muted=self.muted)

    def exchange_events(self, ts: int, events: BarEvents) -> None:
        """What a live exchange answered besides fills, trades, funding and refusals: each order's lifecycle,
        each reconciliation (with a ``reconciliation`` adjustment, which alerts), each reply it could not
        use (an ``exchange_errors`` adjustment), and the journal a resumed run is answered from. Written
        at ``ts``, the close of the bar the answer belongs to."""
        for update in events.order_updates:
            self.order_update(update)
        for difference in events.reconciliations:
            self.reconciliation(difference)
        for error in events.errors:
            self.adjustment(ts, "exchange_errors", None, {"error": error}, error, {})
        if events.journal is not None:
            journal = events.journal
            self._append("exchange_replies", {"ts": ts, "agent": self.agent, "bar_ts": journal["bar_ts"],
                                              "call": journal["call"], "reply": journal["reply"]})

    def order_update(self, u: OrderUpdate) -> None:
        self._append("order_updates", {
            "ts": u.ts, "agent": self.agent, "order_id": u.order_id, "client_order_id": u.client_order_id,
            "exchange_order_id": u.exchange_order_id, "symbol": u.symbol, "kind": u.kind, "status": u.status,
            "side": _side(u.side) if u.side else None, "qty": u.qty, "filled_qty": u.filled_qty, "price": u.price,
            "reason": u.reason})

    def reconciliation(self, r: Reconciliation) -> None:
        """One difference with both sides, and the alert it deserves (an ``adjustments`` row of that kind)."""
        self._append("reconciliation", {
            "ts": r.ts, "agent": self.agent, "symbol": r.symbol, "item": r.item, "agent_view": r.ours,
            "exchange_view": r.exchange, "action": r.action, "reason": r.reason})
        self.adjustment(r.ts, "reconciliation", r.ours, r.exchange,
                        f"{r.symbol or 'balance'}: {r.action}, {r.reason}", {"item": r.item, "action": r.action})

    def row(self, table: str, row: dict[str, Any]) -> None:
        """Any other table (models, decisions, predictions, ...); the caller gives the columns."""
        self._append(table, row)

    def commit(self) -> bool:
        """Make every row so far durable; False while muted (nothing was written)."""
        if self.muted:
            return False
        self._marks.flush_to(self.ledger, self.agent)
        self.ledger.commit()
        return True


class _EquityMarks:
    """Equity marks, one per bar, gathered as columns: a replay writes one per bar, so they go to
    the ledger as columns, not as rows one by one."""

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self.ts: list[int] = []
        self.equity: list[float] = []
        self.cash: list[float] = []
        self.unrealized: list[float] = []
        self.open_positions: list[int] = []
        self.state: list[str] = []

    def add(self, ts: int, equity: float, cash: float, unrealized: float, open_positions: int, state: str) -> None:
        self.ts.append(ts)
        self.equity.append(equity)
        self.cash.append(cash)
        self.unrealized.append(unrealized)
        self.open_positions.append(open_positions)
        self.state.append(state)

    def extend(self, ts: np.ndarray, equity: np.ndarray, cash: float, unrealized: np.ndarray,
               open_positions: int, state: str) -> None:
        n = len(ts)
        self.ts.extend(ts.tolist())
        self.equity.extend(equity.tolist())
        self.cash.extend([cash] * n)
        self.unrealized.extend(unrealized.tolist())
        self.open_positions.extend([open_positions] * n)
        self.state.extend([state] * n)

    def flush_to(self, ledger: Ledger, agent: str) -> None:
        if not self.ts:
            return
        ledger.append_columns("equity", {
            "ts": np.array(self.ts, dtype=np.int64), "agent": agent, "equity": np.array(self.equity),
            "cash": np.array(self.cash), "unrealized": np.array(self.unrealized),
            "open_positions": np.array(self.open_positions, dtype=np.int32), "state": self.state}, len(self.ts))
        self._clear()

