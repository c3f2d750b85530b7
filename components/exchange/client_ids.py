"""Client order ids: how a live order on Binance is tied to its ledger row, so no path can send it twice.

An order's client id is derived from the run and the ledger's order id, never drawn at random: a
restart computes the same id and asks the exchange for it (``origClientOrderId``) before sending
anything. Binance allows 36 characters of ``[.A-Z:/a-z0-9_-]``; an id that would not fit keeps the
run's prefix and hashes the rest, still deterministic. Protective orders (stop, take profit) carry
the trade's id and a version that grows with each amendment (a cancelled order's id is not reused).
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 36
ALLOWED = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
PROTECTION_TAGS = {"stop_loss": "s", "take_profit": "t"}


def run_prefix(run_id: str) -> str:
    """What every client id of one run starts with: ``rt`` and the run id."""
    prefix = f"rt{run_id[:12]}-"
    if not ALLOWED.match(prefix):
        raise ValueError(f"run id {run_id!r} cannot prefix a Binance client order id")
    return prefix


def client_order_id(run_id: str, order_id: str) -> str:
    """The client id of the ledger's order ``order_id`` in run ``run_id``."""
    return _fit(run_prefix(run_id), order_id)


def protection_id(run_id: str, trade_id: str, kind: str, version: int) -> str:
    """The client id of version ``version`` of a trade's stop (``stop_loss``) or target (``take_profit``)."""
    return _fit(run_prefix(run_id), f"{trade_id}.{PROTECTION_TAGS[kind]}{version}")


def is_ours(run_id: str, client_id: str) -> bool:
    return client_id.startswith(run_prefix(run_id))


def parse_protection(run_id: str, client_id: str) -> tuple[str, str, int] | None:
    """(trade id, kind, version) of a protective order's client id of this run; None for any other id
    (a hashed one included: it cannot be read back)."""
    if not is_ours(run_id, client_id):
        return None
    found = re.fullmatch(r"(.+)\.([st])(\d+)", client_id[len(run_prefix(run_id)):])
    if found is None:
        return None
    kinds = {tag: kind for kind, tag in PROTECTION_TAGS.items()}
    return found.group(1), kinds[found.group(2)], int(found.group(3))


def _fit(prefix: str, rest: str) -> str:
    candidate = prefix + rest
    if len(candidate) <= MAX_LENGTH and ALLOWED.match(candidate):
        return candidate
    return prefix + hashlib.sha1(rest.encode()).hexdigest()[:MAX_LENGTH - len(prefix)]
