"""Seeded, deterministic training of one member, and batched inference from its bundle."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from components.ml.metrics import classification_metrics
from components.ml.models import MODEL_REGISTRY
from components.ml.optimizer import AdamW


class TrainingConfig(BaseModel):
    """How one member is trained. Defaults fit a 30-day, two-symbol 5m window in seconds."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    window: int = Field(32, ge=1)  # bars per input sequence
    width: int = Field(32, ge=4)  # hidden size of every member
    epochs: int = Field(6, ge=1)  # at most
    patience: int | None = Field(None, ge=1)  # stop after this many epochs without a better val log-loss
    batch_size: int = Field(256, ge=1)
    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(1e-4, ge=0)
    seed: int = 0
    max_samples: int | None = Field(12_000, ge=1)  # evenly spaced subsample of the fit rows
    val_fraction: float = Field(0.15, ge=0, lt=1)  # most recent rows; selects the best epoch
    threads: int = Field(1, ge=1)  # torch intra-op threads, training and inference: 1 never oversubscribes a sweep
    inference_batch: int = Field(1024, ge=1)  # rows per forward pass: larger batches only cost memory


@dataclass(frozen=True)
class ModelBundle:
    """A trained member with the standardisation it was trained under."""

    name: str
    module: nn.Module
    mean: np.ndarray  # (F,) fit on training rows only
    std: np.ndarray
    config: TrainingConfig

    @property
    def n_features(self) -> int:
        return len(self.mean)


def build_module(name: str, n_features: int, config: TrainingConfig) -> nn.Module:
    """A fresh, untrained member by registry name."""
    if name not in MODEL_REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODEL_REGISTRY)}")
    return MODEL_REGISTRY[name](n_features, config.window, width=config.width)


def train_model(
    name: str, X: np.ndarray, y: np.ndarray, config: TrainingConfig
) -> tuple[ModelBundle, dict[str, Any]]:
    """Train member ``name`` on windows ``X`` (n, window, F) and labels ``y`` in time order.

    The last ``val_fraction`` of rows is held out; the epoch with the lowest validation
    log-loss is kept, and training stops ``patience`` epochs after it. Same inputs and seed give
    bit-identical weights.
    """
    X, y = _check_inputs(X, y, config)
    n_val = int(round(len(y) * config.val_fraction))
    fit_X, fit_y = X[: len(y) - n_val], y[: len(y) - n_val]
    val_X, val_y = X[len(y) - n_val :], y[len(y) - n_val :]
    if config.max_samples is not None and len(fit_y) > config.max_samples:
        keep = np.linspace(0, len(fit_y) - 1, config.max_samples).round().astype(np.int64)
        fit_X, fit_y = fit_X[keep], fit_y[keep]
    mean, std = _feature_scale(fit_X)

    started = time.perf_counter()
    with _deterministic(config.seed, config.threads):
        module = build_module(name, X.shape[-1], config)
        bundle = ModelBundle(name, module, mean.astype(np.float32), std.astype(np.float32), config)
        xs = torch.from_numpy(standardise(bundle, fit_X))
        ys = torch.from_numpy(fit_y.astype(np.float32))
        opt = AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        order_rng = torch.Generator().manual_seed(config.seed)
        train_losses: list[float] = []
        val_losses: list[float] = []
        best: tuple[float, int, dict[str, torch.Tensor]] | None = None
        for epoch in range(config.epochs):
            module.train()
            train_losses.append(_epoch(module, opt, xs, ys, config.batch_size, order_rng))
            if n_val:
                val_loss = classification_metrics(predict_proba(bundle, val_X), val_y)["log_loss"]
                val_losses.append(val_loss)
                if best is None or val_loss < best[0]:
                    state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                    best = (val_loss, epoch, state)
                elif config.patience is not None and epoch - best[1] >= config.patience:
                    break
        if best is not None:
            module.load_state_dict(best[2])
        module.eval()

    metrics: dict[str, Any] = {
        "train_loss": train_losses,
        "val_loss": val_losses,
        "best_epoch": best[1] if best is not None else config.epochs - 1,
        "n_fit": int(len(fit_y)),
        "n_val": int(n_val),
        "seconds": time.perf_counter() - started,
    }
    if n_val:
        val_scores = classification_metrics(predict_proba(bundle, val_X), val_y)
        metrics.update({f"val_{k}": v for k, v in val_scores.items()})
    return bundle, metrics


def predict_proba(bundle: ModelBundle, X_windows: np.ndarray) -> np.ndarray:
    """P(label = 1) for each window (n, window, F), in large batches, as float64."""
    if len(X_windows) == 0:
        return np.zeros(0)
    xs = torch.from_numpy(standardise(bundle, X_windows))
    step = bundle.config.inference_batch
    bundle.module.eval()
    with _threads(bundle.config.threads), torch.inference_mode():
        logits = [bundle.module(xs[i : i + step]) for i in range(0, len(xs), step)]
    return torch.sigmoid(torch.cat(logits)).double().numpy()


def _epoch(
    module: nn.Module,
    opt: AdamW,
    xs: torch.Tensor,
    ys: torch.Tensor,
    batch_size: int,
    order_rng: torch.Generator,
) -> float:
    order = torch.randperm(len(ys), generator=order_rng)
    total = 0.0
    for i in range(0, len(ys), batch_size):
        batch = order[i : i + batch_size]
        opt.zero_grad()
        loss = nn.functional.binary_cross_entropy_with_logits(module(xs[batch]), ys[batch])
        loss.backward()
        nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        opt.step()
        total += float(loss.detach()) * len(batch)
    return total / len(ys)


def _feature_scale(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std (1 where flat) of each feature over every bar of every window (n, window, F),
    in float64, a window step at a time: never a float64 copy of ``X``."""
    steps = [X[:, t] for t in range(X.shape[1])]
    count = X.shape[0] * X.shape[1]
    mean = sum(step.sum(axis=0, dtype=np.float64) for step in steps) / count
    std = np.sqrt(sum(np.square(step - mean).sum(axis=0) for step in steps) / count)
    return mean, np.where(std > 1e-12, std, 1.0)


def standardise(bundle: ModelBundle, X: np.ndarray) -> np.ndarray:
    """Windows scaled by the member's training mean and std, as float32."""
    return ((X - bundle.mean) / bundle.std).astype(np.float32)


def _check_inputs(
    X: np.ndarray, y: np.ndarray, config: TrainingConfig
) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    if X.ndim != 3 or X.shape[1] != config.window:
        raise ValueError(f"X must be (n, {config.window}, F), got {X.shape}")
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
    if np.isnan(X).any() or np.isnan(y).any():
        raise ValueError("X and y must be free of NaN: drop warm-up and unresolved rows first")
    if len(y) < 2:
        raise ValueError("need at least two samples to train")
    return X, y


@contextlib.contextmanager
def _threads(threads: int) -> Iterator[None]:
    """Torch's intra-op threads pinned to ``threads`` (parallel runs on shared cores must not
    oversubscribe them), restored after."""
    previous = torch.get_num_threads()
    if previous != threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if previous != threads:
            torch.set_num_threads(previous)


@contextlib.contextmanager
def _deterministic(seed: int, threads: int) -> Iterator[None]:
    """Seed torch, force deterministic kernels and pin threads; restore all three after."""
    prev_det = torch.are_deterministic_algorithms_enabled()
    with torch.random.fork_rng(devices=[]), _threads(threads):
        torch.manual_seed(seed)
        _set_deterministic(True)
        try:
            yield
        finally:
            _set_deterministic(prev_det)


def _set_deterministic(mode: bool) -> None:
    """``torch.use_deterministic_algorithms`` without its side effect of importing torch's compiler
    (inductor, dynamo, sympy: ~1.4 s and ~70 MB per process) to set a flag only compiled code reads."""
    torch._C._set_deterministic_algorithms(mode)
