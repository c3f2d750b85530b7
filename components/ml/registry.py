"""Model registry in the run folder: every version kept, with hash, window, metrics and status.

Layout: ``root/index.json`` (the records, rewritten atomically) and ``root/<version>/model.pt``.
Status moves are a table; every move carries a reason.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from components.ml.version import EnsembleVersion, load_version, save_version

Status = Literal["candidate", "champion", "retired", "rejected"]

# (from, to) -> what the move means. A retired champion may come back: promotion is reversible.
STATUS_MOVES: dict[tuple[str, str], str] = {
    ("candidate", "champion"): "promoted",
    ("candidate", "rejected"): "rejected challenger",
    ("champion", "retired"): "replaced by a new champion",
    ("retired", "champion"): "rolled back",
}


class ModelRecord(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    path: str  # relative to the registry root
    sha256: str  # of the model file's bytes
    train_start: int  # ms, first training sample's open time
    train_end: int  # ms, the 'now' the version was trained at
    metrics: dict[str, float]
    status: Status
    reason: str = ""
    live_from: int | None = None  # bar close (ms) at which the agent acted on the verdict


class ModelRegistry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self._index = self.root / "index.json"
        self._records: list[ModelRecord] = []
        if self._index.exists():
            raw = json.loads(self._index.read_text())
            self._records = [ModelRecord(**r) for r in raw["records"]]

    def records(self) -> list[ModelRecord]:
        return list(self._records)

    def record(self, version: str) -> ModelRecord:
        for r in self._records:
            if r.version == version:
                return r
        raise KeyError(f"no model version {version!r} in {self._index}")

    def champion(self) -> ModelRecord | None:
        return next((r for r in self._records if r.status == "champion"), None)

    def save(self, version_bundle: EnsembleVersion, reason: str = "trained") -> ModelRecord:
        """Write a new version as a candidate and return its record."""
        version = f"v{len(self._records) + 1:04d}"
        folder = self.root / version
        folder.mkdir()
        path = folder / "model.pt"
        save_version(version_bundle, path)
        record = ModelRecord(
            version=version,
            path=str(path.relative_to(self.root)),
            sha256=_sha256(path),
            train_start=version_bundle.train_start,
            train_end=version_bundle.train_end,
            metrics=dict(version_bundle.metrics),
            status="candidate",
            reason=reason,
        )
        self._records.append(record)
        self._write()
        return record

    def load(self, version: str) -> EnsembleVersion:
        """The stored version, after checking its file still has the recorded hash."""
        record = self.record(version)
        path = self.root / record.path
        digest = _sha256(path)
        if digest != record.sha256:
            raise ValueError(f"{path}: sha256 {digest} does not match the registry's {record.sha256}")
        return load_version(path, version)

    def promote(self, version: str, reason: str = "beat the champion on held-out data",
                gate: Mapping[str, float] | None = None) -> ModelRecord:
        """Make ``version`` the champion; the previous champion is kept as 'retired'. The gate's
        evidence is kept in its metrics as ``gate_<key>`` (a resumed run reads its verdicts there)."""
        self._check_move(version, "champion")
        current = self.champion()
        if current is not None:
            self._set(current.version, "retired", f"replaced by {version}")
        record = self._set(version, "champion", reason, gate)
        self._write()  # one write: the index never shows two champions or none
        return record

    def reject(self, version: str, reason: str = "did not beat the champion",
               gate: Mapping[str, float] | None = None) -> ModelRecord:
        """Keep ``version`` as a rejected challenger, with the gate's evidence as in ``promote``."""
        record = self._set(version, "rejected", reason, gate)
        self._write()
        return record

    def mark_live_from(self, version: str, ts: int) -> ModelRecord:
        """Record the bar the verdict on ``version`` took effect, so a resumed run swaps it in there too."""
        i = next(i for i, r in enumerate(self._records) if r.version == version)
        self._records[i] = self._records[i].model_copy(update={"live_from": ts})
        self._write()
        return self._records[i]

    def _check_move(self, version: str, status: Status) -> None:
        current = self.record(version).status
        if (current, status) not in STATUS_MOVES:
            raise ValueError(f"model {version}: cannot move from {current!r} to {status!r}")

    def _set(self, version: str, status: Status, reason: str,
             gate: Mapping[str, float] | None = None) -> ModelRecord:
        self._check_move(version, status)
        i = next(i for i, r in enumerate(self._records) if r.version == version)
        update: dict[str, object] = {"status": status, "reason": reason}
        if gate:
            update["metrics"] = {**self._records[i].metrics, **{f"gate_{k}": float(v) for k, v in gate.items()}}
        self._records[i] = self._records[i].model_copy(update=update)
        return self._records[i]

    def _write(self) -> None:
        tmp = self._index.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"records": [r.model_dump() for r in self._records]}, indent=1))
        os.replace(tmp, self._index)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
