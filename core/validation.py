"""Turn pydantic validation errors into readable lines naming key, value and what is allowed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

_MAX_VALUE_CHARS = 80


class InvalidKey(ValueError):
    """Raised by a model validator about one key below the model, so the message names that key."""

    def __init__(self, key: str, message: str):
        super().__init__(message)
        self.key = key


def _allowed(err: Mapping[str, Any]) -> str:
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return f"; allowed: {ctx['expected']}"
    return ""


def _value(value: Any) -> str:
    """The offending value, short: a mapping is a whole model, so its message must name the value."""
    if isinstance(value, Mapping):
        return ""
    text = repr(value)
    if len(text) > _MAX_VALUE_CHARS:
        text = text[: _MAX_VALUE_CHARS - 3] + "..."
    return f" (got {text})"


def _line(err: Mapping[str, Any], prefix: str) -> str:
    error = (err.get("ctx") or {}).get("error")
    key = error.key if isinstance(error, InvalidKey) else ""
    loc = ".".join(str(p) for p in (prefix, *err["loc"], key) if p != "")
    value = err.get("input")
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key{_value(value)}"
    if err["type"] == "missing":
        return f"{loc}: required key is missing"
    if err["type"] in ("value_error", "assertion_error"):  # our validators' messages name what is wrong
        message = str(error) if error is not None else err["msg"]
        return f"{loc}: {message}{'' if key else _value(value)}"
    return f"{loc}: {err['msg']}{_value(value)}{_allowed(err)}"


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    """One line per error, ``key: what is wrong (got value)``; several errors on indented lines."""
    lines = [_line(err, prefix) for err in exc.errors()]
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} invalid values:\n  " + "\n  ".join(lines)
