"""Turns what an agent and its exchange did into ledger rows (one place for the row shapes).

On resume the recorder is muted for the bars the ledger already holds, so a deterministic
fast-forward rebuilds memory without writing a row twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.records import ClosedTrade, EntryOrder, ExitOrder, Fill, FundingPayment
from ledger.writer import Ledger

if TYPE_CHECKING:
    from machine.notices import Notices

# Rows that only describe the market or score models, not decisions: like equity marks they ride
# along with the next commit (at most ``commit_every_bars`` later), and a resumed run recomputes them.
OBSERVATIONS = frozenset({"regime_change"})  # adjustment kinds
OBSERVATION_TABLES = frozenset({"equity", "predictions"})


def _side(side: int) -> str:
    return "buy" if side > 0 else "sell"


class Recorder:
    def __init__(self, ledger: Ledger, agent: str):
        self.ledger = ledger
        self.agent = agent
        self.muted = False
        self.events = 0  # rows since the last commit that must be durable at this bar
        self.notices: Notices | None = None  # alerts follow from the rows recorded (machine/notices.py)

    def _append(self, table: str, row: dict[str, Any], *, event: bool = True) -> None:
        if self.muted:
            return
        self.ledger.append(table, row)
        self.events += event

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
            "open_positions": open_positions, "state": state}, event=False)  # an observation

    def transition(self, ts: int, source: str, dest: str, trigger: str, reason: str,
                   evidence: dict[str, Any]) -> None:
        row = {"ts": ts, "agent": self.agent, "source": source, "dest": dest, "trigger": trigger,
               "reason": reason, "evidence": evidence}
        self._append("transitions", row)
        if self.notices is not None and not self.muted:
            self.notices.transition(row)

    def adjustment(self, ts: int, kind: str, before: Any, after: Any, reason: str,
                   evidence: dict[str, Any]) -> None:
        row = {"ts": ts, "agent": self.agent, "kind": kind, "before": before, "after": after,
               "reason": reason, "evidence": evidence}
        observation = kind in OBSERVATIONS
        self._append("adjustments", row, event=not observation)
        if self.notices is not None and not self.muted and not observation:
            self.notices.adjustment(row)

    def row(self, table: str, row: dict[str, Any]) -> None:
        """Any other table (models, decisions, predictions, ...); the caller gives the columns."""
        self._append(table, row, event=table not in OBSERVATION_TABLES)

    def commit_if(self, due: bool) -> bool:
        """Commit when rows that must be durable are pending, or when ``due``; True if it did."""
        if self.muted or not (self.events or due):
            return False
        self.ledger.commit()
        self.events = 0
        return True
