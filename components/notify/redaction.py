"""Keep secrets out of every text a person or a file could see: errors, reprs, ledger rows, logs.

httpx's own INFO log line names the request URL, and a Discord webhook URL or a Telegram Bot API
URL *is* the secret, so the redacting filter sits on httpx's loggers as well as ours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from urllib.parse import quote

MASK = "***"
# A logger's filters see only records made by that logger, not its children: name each one.
_LOGGERS = ("httpx", "httpcore", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy",
            "ratchet.notify")


class Redactor:
    """Replaces each secret (and its URL-encoded forms) with ``***``."""

    def __init__(self, secrets: Iterable[str]):
        variants = set()
        for secret in secrets:
            if secret:
                variants |= {secret, quote(secret, safe=""), quote(secret)}
        self._secrets = sorted(variants, key=len, reverse=True)  # a URL before the token inside it

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secrets)"


class _RedactingFilter(logging.Filter):
    """Rewrites a record's message when it holds a registered secret; never drops a record."""

    def __init__(self) -> None:
        super().__init__("ratchet.notify.redaction")
        self._lock = threading.Lock()
        self._redact = Redactor(())
        self._secrets: set[str] = set()

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets |= {s for s in secrets if s}
            self._redact = Redactor(self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self._redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self._redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


# Logging is process-wide, so is its filter: secrets once registered stay masked in this process.
_FILTER = _RedactingFilter()
for _name in _LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)


def redact_logs(secrets: Iterable[str]) -> None:
    """Mask these secrets in every record httpx, httpcore and ratchet.notify log from now on."""
    _FILTER.add(secrets)
