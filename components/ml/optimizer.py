"""AdamW for the members' training, without importing ``torch.optim``.

``torch.optim`` imports torch's compiler (``torch._dynamo``) on first use: about 1 s and 70 MB
of every process that trains. This is the same update as ``torch.optim.AdamW``'s single-tensor
path (the one CPU tensors take), operation for operation, so the weights come out bit-identical
(``tests/ml/test_ml_optimizer.py`` holds it to that).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


class AdamW:
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019) over a fixed list of parameters."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.weight_decay, self.betas, self.eps = lr, weight_decay, betas, eps
        self.exp_avg = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p, memory_format=torch.preserve_format) for p in self.params]
        self.steps = [0] * len(self.params)  # per parameter: one without a gradient is not stepped

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        for k, p in enumerate(self.params):
            if p.grad is None:
                continue
            grad = p.grad
            self.steps[k] += 1
            p.mul_(1 - self.lr * self.weight_decay)
            self.exp_avg[k].lerp_(grad, 1 - beta1)
            self.exp_avg_sq[k].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            step_size = self.lr / (1 - beta1 ** self.steps[k])
            denom = (self.exp_avg_sq[k].sqrt() / (1 - beta2 ** self.steps[k]) ** 0.5).add_(self.eps)
            p.addcdiv_(self.exp_avg[k], denom, value=-step_size)
