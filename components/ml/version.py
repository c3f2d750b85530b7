"""One ensemble version: trained members, their combiner and the window they learned from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from components.ml.ensemble import Ensemble
from components.ml.features import windows
from components.ml.training import ModelBundle, TrainingConfig, build_module, predict_proba

PAYLOAD_FORMAT = 2  # 2: the transformer's layers are models.EncoderLayer


@dataclass(frozen=True)
class EnsembleVersion:
    members: dict[str, ModelBundle]
    ensemble: Ensemble
    feature_names: tuple[str, ...]
    horizon: int  # label horizon in bars
    fee: float  # label threshold (round-trip fee as a log return)
    train_start: int  # open time (ms) of the first training sample
    train_end: int  # 'now' (ms) when it was trained: no bar closing later was seen
    metrics: dict[str, float] = field(default_factory=dict)
    version: str | None = None  # assigned by the registry

    @property
    def window(self) -> int:
        """Bars of history the widest member needs."""
        return max(b.config.window for b in self.members.values())

    def predict_members(self, features: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """(len(idx), M) member probabilities for rows ``idx`` of one symbol's features."""
        cols = [
            predict_proba(b, windows(features, idx, b.config.window))
            for b in (self.members[n] for n in self.ensemble.names)
        ]
        return np.stack(cols, axis=1) if cols else np.zeros((len(idx), 0))

    def predict(self, features: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return self.ensemble.combine(self.predict_members(features, idx))

    def with_version(self, version: str) -> EnsembleVersion:
        return dataclasses.replace(self, version=version)


def save_version(version: EnsembleVersion, path: Path) -> None:
    """torch.save of state_dicts, scalers, configs and combiner state (plain data only)."""
    payload: dict[str, Any] = {
        "format": PAYLOAD_FORMAT,
        "feature_names": list(version.feature_names),
        "horizon": version.horizon,
        "fee": version.fee,
        "train_start": version.train_start,
        "train_end": version.train_end,
        "metrics": dict(version.metrics),
        "ensemble": version.ensemble.state(),
        "members": {
            name: {
                "state_dict": b.module.state_dict(),
                "mean": torch.from_numpy(b.mean.copy()),
                "std": torch.from_numpy(b.std.copy()),
                "config": b.config.model_dump(),
            }
            for name, b in version.members.items()
        },
    }
    torch.save(payload, path)


def load_version(path: Path, version: str | None = None) -> EnsembleVersion:
    payload = torch.load(path, weights_only=True)
    if payload.get("format") != PAYLOAD_FORMAT:
        raise ValueError(f"{path}: model format {payload.get('format')!r}, but this build reads format "
                         f"{PAYLOAD_FORMAT}: the model was saved by another Ratchet version; start a fresh run folder")
    members = {}
    for name, m in payload["members"].items():
        config = TrainingConfig(**m["config"])
        mean = m["mean"].numpy()
        with torch.random.fork_rng(devices=[]):  # loading must not shift anyone's random stream
            module = build_module(name, len(mean), config)
        module.load_state_dict(m["state_dict"])
        module.eval()
        members[name] = ModelBundle(name, module, mean, m["std"].numpy(), config)
    return EnsembleVersion(
        members=members,
        ensemble=Ensemble.from_state(payload["ensemble"]),
        feature_names=tuple(payload["feature_names"]),
        horizon=int(payload["horizon"]),
        fee=float(payload["fee"]),
        train_start=int(payload["train_start"]),
        train_end=int(payload["train_end"]),
        metrics={k: float(v) for k, v in payload["metrics"].items()},
        version=version,
    )
