"""A live exchange's journal: its answers and the records in them, as JSON and back.

Each answer the engine records (``BarEvents.journal``, the ledger's ``exchange_replies``) carries what
the agent read of it (fills, closed trades, funding, refusals, a halt) and the account's state after it,
so a restarted run's fast-forward is answered exactly as the run was, without asking the exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from core.records import BarEvents, ClosedTrade, EntryOrder, ExitOrder, ExitReason, Fill, FundingPayment


def order_json(order: EntryOrder | ExitOrder) -> dict[str, Any]:
    kind = "entry" if isinstance(order, EntryOrder) else "exit"
    return {"kind": kind, **asdict(order)}


def order_from(data: Mapping[str, Any]) -> EntryOrder | ExitOrder:
    fields = {k: v for k, v in data.items() if k != "kind"}
    if data["kind"] == "entry":
        return EntryOrder(**fields)
    return ExitOrder(**(fields | {"reason": ExitReason(fields["reason"])}))


def events_json(events: BarEvents) -> dict[str, Any]:
    """What the agent reads of an answer, as JSON."""
    return {"fills": [asdict(f) for f in events.fills], "closed": [asdict(t) for t in events.closed],
            "funding": [asdict(p) for p in events.funding], "rejected": [list(r) for r in events.rejected],
            "halt": events.halt}


def events_from(data: Mapping[str, Any]) -> BarEvents:
    closed = [ClosedTrade(**(t | {"exit_reason": ExitReason(t["exit_reason"])})) for t in data["closed"]]
    return BarEvents(fills=[Fill(**f) for f in data["fills"]], closed=closed,
                     funding=[FundingPayment(**p) for p in data["funding"]],
                     rejected=[(str(a), str(b)) for a, b in data["rejected"]], halt=data["halt"])
