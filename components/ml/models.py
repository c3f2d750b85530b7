"""The four ensemble members: small, pure ``nn.Module`` classifiers.

Each maps a window of standardised features (batch, window, F) to one logit per sample
(batch,): the log-odds that the forward return beats fees. Training lives in ``training.py``.
"""

from __future__ import annotations

import torch
from torch import nn


class AttentionMLP(nn.Module):
    """MLP over attention-pooled time steps, with a softmax gate that weighs features per sample."""

    def __init__(self, n_features: int, window: int, width: int = 32) -> None:
        super().__init__()
        self.feature_gate = nn.Linear(n_features, n_features)
        self.embed = nn.Sequential(nn.Linear(n_features, width), nn.GELU())
        self.time_score = nn.Linear(width, 1)
        self.head = nn.Sequential(nn.Linear(2 * width, width), nn.GELU(), nn.Linear(width, 1))

    def feature_importance(self, x: torch.Tensor) -> torch.Tensor:
        """Per-sample feature weights (batch, F), summing to 1, from the latest bar."""
        return torch.softmax(self.feature_gate(x[:, -1]), dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.feature_importance(x) * x.shape[-1]  # mean weight 1 keeps the input scale
        h = self.embed(x * gate[:, None, :])
        attn = torch.softmax(self.time_score(h), dim=1)
        pooled = (attn * h).sum(dim=1)
        return self.head(torch.cat([pooled, h[:, -1]], dim=-1)).squeeze(-1)


class LSTMClassifier(nn.Module):
    """One-layer LSTM; the last hidden state feeds a linear head."""

    def __init__(self, n_features: int, window: int, width: int = 32) -> None:
        super().__init__()
        self.lstm = nn.LSTM(n_features, width, batch_first=True)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1]).squeeze(-1)


class CNNClassifier(nn.Module):
    """Two 1-D convolutions over time, then mean- and last-step pooling into a linear head."""

    def __init__(self, n_features: int, window: int, width: int = 32, kernel: int = 5) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv1d(n_features, width, kernel, padding=kernel // 2),
            nn.GELU(),
            nn.Conv1d(width, width, kernel, padding=kernel // 2),
            nn.GELU(),
        )
        self.head = nn.Linear(2 * width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x.transpose(1, 2))
        return self.head(torch.cat([h.mean(dim=-1), h[..., -1]], dim=-1)).squeeze(-1)


class TransformerClassifier(nn.Module):
    """Transformer encoder (pre-norm) over the window; the last token feeds a linear head."""

    def __init__(
        self, n_features: int, window: int, width: int = 32, heads: int = 4, layers: int = 2
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.position = nn.Parameter(torch.zeros(1, window, width))
        layer = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=2 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.embed(x) + self.position[:, -x.shape[1] :])
        return self.head(self.norm(h[:, -1])).squeeze(-1)


MODEL_REGISTRY: dict[str, type[nn.Module]] = {
    "attention_mlp": AttentionMLP,
    "lstm": LSTMClassifier,
    "cnn": CNNClassifier,
    "transformer": TransformerClassifier,
}
