"""Turns what an agent and its exchange did into ledger rows (one place for the row shapes).

On resume the recorder is muted for the bars the ledger already holds, so a deterministic
fast-forward rebuilds memory without writing a row twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from core.records import ClosedTrade, EntryOrder, ExitOrder, Fill, FundingPayment
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
        self._append("equity", {
            "ts": ts, "agent": self.agent, "equity": equity, "cash": cash, "unrealized": unrealized,
            "open_positions": open_positions, "state": state})

    def equity_marks(self, closes: np.ndarray, equity: np.ndarray, cash: float, unrealized: np.ndarray,
                     open_positions: int, state: str) -> None:
        """The equity marks of a stretch of quiet bars, column by column."""
        if not self.muted:
            self.ledger.append_columns("equity", {
                "ts": closes, "agent": self.agent, "equity": equity, "cash": cash, "unrealized": unrealized,
                "open_positions": open_positions, "state": state}, len(closes))

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

    def row(self, table: str, row: dict[str, Any]) -> None:
        """Any other table (models, decisions, predictions, ...); the caller gives the columns."""
        self._append(table, row)

    def commit(self) -> bool:
        """Make every row so far durable; False while muted (nothing was written)."""
        if self.muted:
            return False
        self.ledger.commit()
        return True
