"""The promoted parameter sets in the run folder: versioned, hashed, with their history.

Layout (``RUN/params/``), mirroring the model registry (``RUN/models/``)::

    promoted_params.json   {"current": "v0002", "history": [entry, ...]}: which set is in force, and
                           every change with its bar close, kind (declared, promotion, rollback) and reason
    v0001.json             one file per version: {"version": ..., "params": {"signal.fast": 9, ...}};
                           written once, never changed; its sha256 is in the history

A rollback makes an earlier version current again (a history entry, no new file). The files are
written before the ledger row that records the change, so a resumed run finds every change its
ledger holds (and maybe one more, from the bar it died in), and reuses it instead of writing it twice.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from core.errors import ConfigError

Kind = Literal["declared", "promotion", "rollback"]
INDEX = "promoted_params.json"


class ParamsEntry(BaseModel):
    """One change of the set in force."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    file: str  # relative to the registry folder
    sha256: str  # of the version file's bytes
    at: int  # bar close (ms) the set took force at
    kind: Kind
    params: dict[str, Any]
    reason: str = ""


def canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


class ParamsRegistry:
    """``RUN/params``: the versions and the history of the set in force."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._index = self.root / INDEX
        self._history: list[ParamsEntry] = []
        if self._index.exists():
            raw = json.loads(self._index.read_text())
            self._history = [ParamsEntry(**e) for e in raw["history"]]

    def history(self) -> list[ParamsEntry]:
        return list(self._history)

    @property
    def current(self) -> ParamsEntry | None:
        return self._history[-1] if self._history else None

    def entry_at(self, at: int, kind: Kind) -> ParamsEntry | None:
        """The change of this kind recorded at bar close ``at`` (a resumed run finds it here)."""
        return next((e for e in self._history if e.at == at and e.kind == kind), None)

    def record(self, at: int, kind: Kind, params: Mapping[str, Any], reason: str) -> ParamsEntry:
        """Make ``params`` the set in force from ``at``: a new version file, or an earlier version's
        (a rollback, or a set seen before). The index is rewritten atomically after the file exists."""
        known = self.entry_at(at, kind)
        if known is not None:
            if canonical(known.params) != canonical(params):
                raise ConfigError(f"{self._index}: the {kind} at {at} holds other parameters than this run "
                                  "derives; the folder belongs to another run")
            return known
        text = canonical(params)
        same = next((e for e in self._history if canonical(e.params) == text), None)
        if same is not None:
            version, file, digest = same.version, same.file, same.sha256
        else:
            version = f"v{len({e.version for e in self._history}) + 1:04d}"
            file = f"{version}.json"
            self.root.mkdir(parents=True, exist_ok=True)
            data = json.dumps({"version": version, "params": dict(params)}, sort_keys=True, indent=1).encode()
            write_atomically(self.root / file, data)
            digest = hashlib.sha256(data).hexdigest()
        entry = ParamsEntry(version=version, file=file, sha256=digest, at=at, kind=kind, params=dict(params),
                            reason=reason)
        self._history.append(entry)
        write_atomically(self._index, json.dumps({"current": version, "history": [
            e.model_dump() for e in self._history]}, indent=1).encode())
        return entry

    def load(self, version: str) -> dict[str, Any]:
        """A version's parameters, after checking its file still has the recorded hash."""
        entry = next((e for e in self._history if e.version == version), None)
        if entry is None:
            raise KeyError(f"no parameter version {version!r} in {self._index}")
        path = self.root / entry.file
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != entry.sha256:
            raise ConfigError(f"{path}: sha256 {digest} does not match the registry's {entry.sha256}")
        params: dict[str, Any] = json.loads(path.read_text())["params"]
        return params


def write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
