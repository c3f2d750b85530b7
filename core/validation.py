"""Turn pydantic validation errors into one readable message naming key, value and what is allowed."""

from __future__ import annotations

from pydantic import ValidationError


def _allowed(err: dict) -> str:
    ctx = err.get("ctx") or {}
    if "expected" in ctx:
        return f"; allowed: {ctx['expected']}"
    return ""


def format_validation_error(exc: ValidationError, prefix: str = "") -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        value = err.get("input")
        if err["type"] == "extra_forbidden":
            lines.append(f"{loc}: unknown key (value {value!r})")
        elif err["type"] == "missing":
            lines.append(f"{loc}: required key is missing")
        else:
            lines.append(f"{loc}: {err['msg']} (got {value!r}){_allowed(err)}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
