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


class EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer (self-attention, then a ReLU feed-forward; no dropout).

    Written out rather than ``nn.TransformerEncoderLayer``: on CPU, for 16-step windows, torch's
    fused attention kernels are slower than plain matmuls (benchmarks/README.md). With
    ``last_only`` only the last step is queried and fed forward, which is all a final layer
    whose last step feeds the head needs.
    """

    def __init__(self, width: int, heads: int, feedforward: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.in_proj = nn.Linear(width, 3 * width)  # query, key and value, stacked
        self.out_proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.linear1 = nn.Linear(width, feedforward)
        self.linear2 = nn.Linear(feedforward, width)
        nn.init.xavier_uniform_(self.in_proj.weight)  # as nn.MultiheadAttention initialises them
        nn.init.zeros_(self.in_proj.bias)
        nn.init.zeros_(self.out_proj.bias)

    def forward(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        batch, steps, width = x.shape
        head = width // self.heads
        h = self.norm1(x)
        if last_only:
            w, b = self.in_proj.weight, self.in_proj.bias
            q = nn.functional.linear(h[:, -1:], w[:width], b[:width]).view(batch, 1, self.heads, head).transpose(1, 2)
            k, v = nn.functional.linear(h, w[width:], b[width:]).view(batch, steps, 2, self.heads, head).permute(
                2, 0, 3, 1, 4)
            x = x[:, -1:]
        else:
            q, k, v = self.in_proj(h).view(batch, steps, 3, self.heads, head).permute(2, 0, 3, 1, 4)
        attention = torch.softmax((q * head**-0.5) @ k.transpose(-1, -2), dim=-1) @ v  # (batch, heads, q, head)
        x = x + self.out_proj(attention.transpose(1, 2).reshape(batch, x.shape[1], width))
        return x + self.linear2(torch.relu(self.linear1(self.norm2(x))))


class TransformerClassifier(nn.Module):
    """Transformer encoder (pre-norm) over the window; the last token feeds a linear head."""

    def __init__(
        self, n_features: int, window: int, width: int = 32, heads: int = 4, layers: int = 1
    ) -> None:
        super().__init__()
        self.embed = nn.Linear(n_features, width)
        self.position = nn.Parameter(torch.zeros(1, window, width))
        self.layers = nn.ModuleList(EncoderLayer(width, heads, 2 * width) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x) + self.position[:, -x.shape[1] :]
        for k, layer in enumerate(self.layers):
            h = layer(h, last_only=k == len(self.layers) - 1)
        return self.head(self.norm(h[:, -1])).squeeze(-1)


MODEL_REGISTRY: dict[str, type[nn.Module]] = {
    "attention_mlp": AttentionMLP,
    "lstm": LSTMClassifier,
    "cnn": CNNClassifier,
    "transformer": TransformerClassifier,
}
